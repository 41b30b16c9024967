"""The admin's bulk photo upload pages (the browser test drives the same flow in Chromium)."""

from __future__ import annotations

import pytest

from subjects.models import Photo, PhotoUpload
from tests.factories import PhotoUploadFactory, SubjectFactory
from tests.subjects.zips import astronaut_jpeg, hopper_png, other_jpeg, uploaded, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_inline(settings):
    """These tests are about what the store job does, not the queue (test_photo_upload_queue),
    so it runs in the test's thread, right after the confirmation."""
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False


PAGE = "/admin/subjects/subject/bulk-upload/"


@pytest.fixture
def team(tenant_a):
    return {
        "mei": SubjectFactory(company=tenant_a.company, name="陳美玲", job_number="E-0042"),
        "lin": SubjectFactory(company=tenant_a.company, name="林志明", job_number="E-0043"),
    }


def test_the_subjects_list_links_to_the_bulk_upload(admin_client_for, tenant_a):
    page = admin_client_for(tenant_a.admin).get("/admin/subjects/subject/").content.decode()
    assert f'href="{PAGE}"' in page


def test_upload_preview_confirm_and_progress(admin_client_for, tenant_a, team, django_capture_on_commit_callbacks):
    client = admin_client_for(tenant_a.admin)
    assert client.get(PAGE).status_code == 200
    archive = uploaded(zip_bytes({"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png(), "E-9.jpg": other_jpeg()}))
    response = client.post(PAGE, {"archive": archive})
    assert response.status_code == 302
    upload = PhotoUpload.objects.for_company(tenant_a.company).get()
    assert response["Location"] == f"{PAGE}{upload.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "陳美玲" in page and "林志明" in page
    assert "No subject of your company has this job number." in page
    assert "Store 2 photos" in page
    assert not Photo.objects.for_company(tenant_a.company).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"{PAGE}{upload.pk}/confirm/").status_code == 302
    assert Photo.objects.for_company(tenant_a.company).count() == 2
    progress = client.get(f"{PAGE}{upload.pk}/progress/").json()
    assert progress["state"] == "stored"
    assert progress["counts"]["stored"] == 2
    assert [file["status"] for file in progress["files"]] == ["stored", "stored", "job_number_unknown"]
    assert 'id="bulk-progress"' in client.get(f"{PAGE}{upload.pk}/").content.decode()


def test_a_bad_archive_is_a_form_error(admin_client_for, tenant_a):
    response = admin_client_for(tenant_a.admin).post(PAGE, {"archive": uploaded(b"not a zip")})
    assert response.status_code == 200
    assert "The file is not a ZIP archive, or it is damaged." in response.content.decode()


def test_viewers_see_but_do_not_upload_or_confirm(admin_client_for, tenant_a, team):
    upload = PhotoUploadFactory(company=tenant_a.company)
    client = admin_client_for(tenant_a.viewer)
    assert client.get(PAGE).status_code == 200
    assert client.post(PAGE, {"archive": uploaded(zip_bytes({"E-0042.jpg": astronaut_jpeg()}))}).status_code == 403
    assert client.post(f"{PAGE}{upload.pk}/confirm/").status_code == 403


def test_another_companys_upload_is_not_found(admin_client_for, tenant_a, tenant_b):
    theirs = PhotoUploadFactory(company=tenant_b.company)
    client = admin_client_for(tenant_a.admin)
    for url in [f"{PAGE}{theirs.pk}/", f"{PAGE}{theirs.pk}/progress/"]:
        assert client.get(url).status_code == 404
    for url in [f"{PAGE}{theirs.pk}/confirm/", f"{PAGE}{theirs.pk}/delete/"]:
        assert client.post(url).status_code == 404


def test_the_progress_says_it_is_done_in_the_admins_language(
    admin_client_for, tenant_a, team, django_capture_on_commit_callbacks
):
    admin = tenant_a.admin
    admin.language = "zh-hant"
    admin.save(update_fields=["language"])
    client = admin_client_for(admin)
    archive = uploaded(zip_bytes({"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png(), "E-9.jpg": other_jpeg()}))
    client.post(PAGE, {"archive": archive})
    upload = PhotoUpload.objects.for_company(tenant_a.company).get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{PAGE}{upload.pk}/confirm/")
    progress = client.get(f"{PAGE}{upload.pk}/progress/").json()
    counts = progress["counts"]
    assert (counts["stored"], counts["pending"], counts["refused"]) == (2, 0, 1)  # enrolled: nothing left to follow
    assert progress["working"] is False
    assert (progress["done"], progress["total"]) == (2, 2)
    assert progress["phase"] == (
        f"完成：已儲存 2 張照片，略過 1 個檔案（人臉：{counts['ok']} 張可用，{counts['rejected']} 張未通過）"
    )
