"""Bulk photo upload over the API: upload (multipart) → preview, confirm → job, progress."""

from __future__ import annotations

import pytest
from django.utils import translation

from subjects.models import Photo, PhotoUpload
from tests.factories import PhotoFactory, PhotoUploadFactory, SubjectFactory
from tests.subjects.zips import astronaut_jpeg, hopper_png, other_jpeg, uploaded, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_inline(settings):
    """These tests are about what the store job does, not the queue (test_photo_upload_queue),
    so it runs in the test's thread, right after the confirmation."""
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False


@pytest.fixture(autouse=True)
def _english_afterwards():
    yield
    translation.deactivate()


@pytest.fixture
def team(tenant_a):
    return {
        "mei": SubjectFactory(company=tenant_a.company, name="陳美玲", job_number="E-0042"),
        "lin": SubjectFactory(company=tenant_a.company, name="林志明", job_number="E-0043"),
    }


def post_archive(client, files: dict[str, bytes], **headers):
    return client.post("/api/v1/photo-uploads", {"archive": uploaded(zip_bytes(files))}, format="multipart", **headers)


def test_an_upload_answers_its_preview_and_stores_no_photo(api, tenant_a, team):
    response = post_archive(
        api(tenant_a.admin), {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png(), "E-7777.jpg": other_jpeg()}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "preview"
    assert body["file_name"] == "photos.zip"
    assert body["created_by"] == "a-admin"
    assert body["job"] is None
    assert body["progress"] == {
        "files": 3, "matched": 2, "refused": 1, "stored": 0, "pending": 0, "ok": 0, "rejected": 0, "done": 0,
    }  # fmt: skip
    files = {file["name"]: file for file in body["files"]}
    assert files["E-0042.jpg"] | {"message": ""} == {
        "name": "E-0042.jpg", "job_number": "E-0042", "subject": team["mei"].pk, "subject_name": "陳美玲",
        "status": "matched", "reason": "", "message": "", "photo": None, "photo_status": None, "photo_reason": "",
    }  # fmt: skip
    assert files["E-7777.jpg"]["status"] == "job_number_unknown"
    assert files["E-7777.jpg"]["message"] == "No subject of your company has this job number."
    assert not Photo.objects.for_company(tenant_a.company).exists()


def test_the_preview_speaks_the_callers_language(api, tenant_a, team):
    response = post_archive(api(tenant_a.admin), {"E-7777.jpg": other_jpeg()}, HTTP_ACCEPT_LANGUAGE="zh-Hant")
    with translation.override("zh-hant"):
        from kangaroo import errors

        expected = str(errors.JOB_NUMBER_UNKNOWN.message)
    assert response.json()["files"][0]["message"] == expected
    assert expected != "No subject of your company has this job number."


def test_confirm_queues_the_job_and_the_upload_shows_how_it_went(
    api, tenant_a, team, django_capture_on_commit_callbacks
):
    client = api(tenant_a.admin)
    created = post_archive(client, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()}).json()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/photo-uploads/{created['id']}/confirm")
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]["id"]
    body = client.get(f"/api/v1/photo-uploads/{created['id']}").json()
    assert body["state"] == "stored"
    assert body["progress"]["stored"] == 2
    assert body["progress"]["pending"] + body["progress"]["done"] == 2
    assert [file["status"] for file in body["files"]] == ["stored", "stored"]
    photos = list(Photo.objects.for_company(tenant_a.company).order_by("pk").values_list("pk", "status"))
    assert [(file["photo"], file["photo_status"]) for file in body["files"]] == photos
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert (job["kind"], job["state"], job["done"], job["total"]) == ("photos.bulk_upload", "done", 2, 2)
    again = client.post(f"/api/v1/photo-uploads/{created['id']}/confirm")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "photo_upload_confirmed"


def test_the_list_shows_the_companys_uploads_without_their_files(api, tenant_a, tenant_b, team):
    mine = PhotoUploadFactory(company=tenant_a.company)
    PhotoUploadFactory(company=tenant_b.company)
    body = api(tenant_a.viewer).get("/api/v1/photo-uploads").json()
    assert [row["id"] for row in body["results"]] == [mine.pk]
    assert "files" not in body["results"][0]


def test_another_companys_upload_is_not_found(api, tenant_a, tenant_b):
    theirs = PhotoUploadFactory(company=tenant_b.company)
    client = api(tenant_a.admin)
    for method, url in [
        ("get", f"/api/v1/photo-uploads/{theirs.pk}"),
        ("post", f"/api/v1/photo-uploads/{theirs.pk}/confirm"),
        ("delete", f"/api/v1/photo-uploads/{theirs.pk}"),
    ]:
        assert getattr(client, method)(url).status_code == 404
    assert PhotoUpload.objects.for_company(tenant_b.company).filter(state="preview").exists()


def test_viewers_read_but_do_not_upload(api, tenant_a, team):
    response = post_archive(api(tenant_a.viewer), {"E-0042.jpg": astronaut_jpeg()})
    assert response.status_code == 403
    assert not PhotoUpload.objects.for_company(tenant_a.company).exists()


@pytest.mark.parametrize(
    "data, code, status",
    [
        (b"just some text", "zip_invalid", 400),
        (zip_bytes({"readme.txt": b"hello"}), "zip_empty", 400),
    ],
)
def test_an_unusable_archive_answers_its_code(api, tenant_a, data, code, status, media_root):
    response = api(tenant_a.admin).post("/api/v1/photo-uploads", {"archive": uploaded(data)}, format="multipart")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not media_root.exists() or not any(media_root.rglob("*.zip"))


def test_a_body_larger_than_an_archive_may_be_is_refused_before_it_is_read(api, tenant_a, settings):
    settings.PHOTO_ZIP_MAX_BYTES = 1000
    response = api(tenant_a.admin).post(
        "/api/v1/photo-uploads", {"archive": uploaded(b"x" * (2 * 2**20))}, format="multipart"
    )
    assert response.status_code == 413
    assert response.json()["error"] == response.json()["error"] | {"code": "zip_too_large", "limit": 1000}


def test_the_upload_is_multipart_only_with_known_parts(api, tenant_a):
    client = api(tenant_a.admin)
    as_json = client.post("/api/v1/photo-uploads", {"archive": "x"}, format="json")
    assert as_json.status_code == 415
    extra = client.post(
        "/api/v1/photo-uploads",
        {"archive": uploaded(zip_bytes({"E-1.jpg": other_jpeg()})), "note": "x"},
        format="multipart",
    )
    assert extra.json()["error"]["code"] == "unknown_fields"
    missing = client.post("/api/v1/photo-uploads", {}, format="multipart")
    assert missing.status_code == 400
    assert list(missing.json()["error"]["fields"]) == ["archive"]


def test_deleting_a_preview_drops_it(api, tenant_a, team, django_capture_on_commit_callbacks, media_root):
    client = api(tenant_a.admin)
    created = post_archive(client, {"E-0042.jpg": astronaut_jpeg()}).json()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/v1/photo-uploads/{created['id']}").status_code == 204
    assert not PhotoUpload.objects.for_company(tenant_a.company).exists()
    assert not any(media_root.rglob("*.zip"))


def test_the_list_costs_the_same_queries_for_2_or_20_uploads(api, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api(tenant_a.viewer)

    def count_for(total):
        for _ in range(total - PhotoUpload.objects.for_company(tenant_a.company).count()):
            photo = PhotoFactory(company=tenant_a.company)
            entry = {"index": 0, "name": "E-1.jpg", "job_number": "E-1", "subject": photo.subject_id,
                     "subject_name": "x", "status": "stored", "reason": "", "photo": photo.pk}  # fmt: skip
            PhotoUploadFactory(company=tenant_a.company, state="stored", entries=[entry])
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/v1/photo-uploads").json()
        assert all(row["progress"]["stored"] == 1 for row in body["results"])
        return len(queries)

    # user (+company), count, page of uploads (+uploader, job), the page's photo statuses
    few, many = count_for(2), count_for(20)
    assert few == many == 4
