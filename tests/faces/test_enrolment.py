"""Enrolment end to end on real faces: a photo saved through the API or the admin is enrolled
by a job after commit (ok, or rejected with its reason), duplicates are refused or flagged,
a company re-enrols all its photos as one job, and each company's index answers with its
own subjects only."""

from __future__ import annotations

from functools import cache

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import faces
from accounts.models import Job, JobState
from subjects import face_index
from subjects.domain_signals import photo_enrolled
from subjects.models import Photo, PhotoStatus
from tests.faces import portraits
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_inline(settings):
    settings.JOBS_INLINE = True  # enrolment jobs run right after the request commits


@cache
def astronaut_jpeg() -> bytes:
    return portraits.jpeg(portraits.astronaut())


@cache
def hopper_jpeg() -> bytes:
    return portraits.jpeg(portraits.grace_hopper())


def upload(client, subject, data: bytes, capture):
    with capture(execute=True):
        response = client.post(f"/api/v1/subjects/{subject.pk}/photos", {"image": SimpleUploadedFile("p.jpg", data)})
    return response


def enrolled(company, name: str, data: bytes, capture):
    """A subject of `company` with one photo enrolled through the service path."""
    from subjects import services

    subject = SubjectFactory(company=company, name=name)
    with capture(execute=True):
        photo = services.photo_add(
            company=company, actor=None, subject=subject, upload=SimpleUploadedFile("p.jpg", data)
        )
    photo.refresh_from_db()
    return subject, photo


def embedding_of(data: bytes):
    return faces.snapshot_face(faces.load_image(data)).embedding


def test_a_photo_uploaded_through_the_api_is_enrolled(api, tenant_a, django_capture_on_commit_callbacks):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    response = upload(client, subject, astronaut_jpeg(), django_capture_on_commit_callbacks)
    assert response.status_code == 201
    photo = client.get(f"/api/v1/photos/{response.json()['id']}").json()
    assert photo["status"] == "ok" and photo["reason"] == "" and photo["reason_message"] == ""
    assert photo["embedding_model"] == faces.MODEL
    assert set(photo["face_box"]) == {"left", "top", "right", "bottom"}
    assert 0 < photo["quality"] <= 1
    assert photo["possible_duplicate_of"] is None
    stored = Photo.objects.for_company(tenant_a.company).get(pk=photo["id"])
    assert len(stored.embedding) == 4 * faces.EMBEDDING_DIM
    listed = client.get(f"/api/v1/subjects/{subject.pk}").json()
    assert listed["usable_photos"] == 1


def test_a_photo_without_a_face_is_rejected_with_its_reason_in_words(api, tenant_a, django_capture_on_commit_callbacks):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    response = upload(client, subject, portraits.jpeg(portraits.landscape()), django_capture_on_commit_callbacks)
    photo = client.get(f"/api/v1/photos/{response.json()['id']}").json()
    assert photo["status"] == "rejected" and photo["reason"] == "no_face"
    assert photo["reason_message"] == "No face was found in the photo."
    assert Photo.objects.for_company(tenant_a.company).get(pk=photo["id"]).embedding is None
    chinese = client.get(f"/api/v1/photos/{photo['id']}", HTTP_ACCEPT_LANGUAGE="zh-hant").json()
    assert chinese["reason_message"] == "照片中找不到人臉。"
    assert client.get("/api/v1/subjects", {"photo_status": "unusable"}).json()["results"][0]["id"] == subject.pk


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (lambda: portraits.side_by_side(), "multiple_faces"),
        (lambda: portraits.tiny_face(), "face_too_small"),
        (lambda: portraits.blurred(portraits.grace_hopper()), "too_blurry"),
    ],
    ids=["two people", "tiny face", "blurred"],
)
def test_each_quality_problem_rejects_the_photo(api, tenant_a, django_capture_on_commit_callbacks, image, reason):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    response = upload(client, subject, portraits.jpeg(image()), django_capture_on_commit_callbacks)
    photo = Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    assert (photo.status, photo.reason) == (PhotoStatus.REJECTED, reason)
    assert photo.face_box is not None and photo.embedding is None


def test_a_photo_added_in_the_admin_is_enrolled_and_shown_with_its_status(
    client, tenant_a, django_capture_on_commit_callbacks
):
    client.force_login(tenant_a.admin)
    data = {
        "consents-TOTAL_FORMS": "1",
        "consents-INITIAL_FORMS": "0",
        "consents-MIN_NUM_FORMS": "0",
        "consents-MAX_NUM_FORMS": "1000",
        "consents-0-consent_method": "paper",
        "photos-TOTAL_FORMS": "2",
        "photos-INITIAL_FORMS": "0",
        "photos-MIN_NUM_FORMS": "0",
        "photos-MAX_NUM_FORMS": "5",
        "subject_type": "employee",
        "name": "Grace",
        "job_number": "E7",
        "email": "",
        "phone": "",
        "photos-0-upload": SimpleUploadedFile("grace.jpg", hopper_jpeg()),
        "photos-1-upload": SimpleUploadedFile("sky.jpg", portraits.jpeg(portraits.landscape())),
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/admin/subjects/subject/add/", data).status_code == 302
    photos = Photo.objects.for_company(tenant_a.company).order_by("pk")
    assert [(p.status, p.reason) for p in photos] == [("ok", ""), ("rejected", "no_face")]
    page = client.get(f"/admin/subjects/subject/{photos[0].subject_id}/change/").content.decode()
    assert "No face was found in the photo." in page
    listing = client.get("/admin/subjects/photo/", {"problem": "no_face"}).content.decode()
    assert "No face was found in the photo." in listing and "Grace" in listing
    subjects = client.get("/admin/subjects/subject/", {"photos": "unusable"}).content.decode()
    assert "Grace" not in subjects  # she has a usable photo


def test_enrolment_is_announced_with_photo_enrolled(tenant_a, django_capture_on_commit_callbacks):
    heard = []

    def listen(sender, *, company, ids, subject_ids, **kwargs):
        photo = Photo.objects.for_company(company).get(pk=ids[0])
        heard.append((company.pk, list(ids), list(subject_ids), photo.status))

    photo_enrolled.connect(listen)
    try:
        subject, photo = enrolled(tenant_a.company, "Eileen", astronaut_jpeg(), django_capture_on_commit_callbacks)
    finally:
        photo_enrolled.disconnect(listen)
    assert heard == [(tenant_a.company.pk, [photo.pk], [subject.pk], "ok")]


def test_the_same_image_twice_for_one_subject_is_refused(api, tenant_a, django_capture_on_commit_callbacks):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    assert upload(client, subject, astronaut_jpeg(), django_capture_on_commit_callbacks).status_code == 201
    again = upload(client, subject, astronaut_jpeg(), django_capture_on_commit_callbacks)
    assert again.status_code == 409 and again.json()["error"]["code"] == "photo_duplicate"
    other = SubjectFactory(company=tenant_a.company)  # another subject may have it (and is flagged)
    assert upload(client, other, astronaut_jpeg(), django_capture_on_commit_callbacks).status_code == 201


def test_a_face_of_another_subject_is_enrolled_but_flagged(client, api, tenant_a, django_capture_on_commit_callbacks):
    first, _ = enrolled(tenant_a.company, "Eileen", astronaut_jpeg(), django_capture_on_commit_callbacks)
    flipped = portraits.jpeg(portraits.flipped(portraits.astronaut()))
    _, photo = enrolled(tenant_a.company, "Eileen again", flipped, django_capture_on_commit_callbacks)
    assert photo.status == PhotoStatus.OK
    assert photo.duplicate_of_id == first.pk and photo.duplicate_distance < 0.3
    _, grace = enrolled(tenant_a.company, "Grace", hopper_jpeg(), django_capture_on_commit_callbacks)
    assert grace.duplicate_of_id is None
    answer = api(tenant_a.admin).get(f"/api/v1/photos/{photo.pk}").json()
    assert answer["possible_duplicate_of"] == first.pk
    client.force_login(tenant_a.admin)
    listing = client.get("/admin/subjects/photo/", {"problem": "duplicate"}).content.decode()
    assert "Eileen again" in listing and "Grace" not in listing


def test_the_index_identifies_and_searches_within_the_company_only(
    tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    eileen_a, _ = enrolled(tenant_a.company, "Eileen A", astronaut_jpeg(), capture)
    eileen_b, _ = enrolled(tenant_b.company, "Eileen B", astronaut_jpeg(), capture)
    grace_b, _ = enrolled(tenant_b.company, "Grace B", hopper_jpeg(), capture)
    eileen = embedding_of(portraits.jpeg(portraits.greyscale(portraits.astronaut())))
    grace = embedding_of(portraits.jpeg(portraits.rescaled(portraits.grace_hopper(), 0.5)))

    assert face_index.identify(tenant_a.company, eileen).subject_id == eileen_a.pk
    assert face_index.identify(tenant_b.company, eileen).subject_id == eileen_b.pk
    assert face_index.identify(tenant_b.company, grace).subject_id == grace_b.pk
    assert face_index.identify(tenant_a.company, grace) is None  # a stranger in company A
    assert [m.subject_id for m in face_index.search(tenant_a.company, grace)] == [eileen_a.pk]
    assert [m.subject_id for m in face_index.search(tenant_b.company, grace)] == [grace_b.pk, eileen_b.pk]
    match = face_index.verify(tenant_b.company, grace_b.pk, grace)
    assert match.subject_id == grace_b.pk and match.distance < tenant_b.company.face_match_threshold


def test_the_index_follows_deletions_archiving_and_the_threshold(api, tenant_a, django_capture_on_commit_callbacks):
    from subjects import services

    subject, photo = enrolled(tenant_a.company, "Eileen", astronaut_jpeg(), django_capture_on_commit_callbacks)
    query = embedding_of(portraits.jpeg(portraits.blurred(portraits.astronaut(), 2)))
    match = face_index.identify(tenant_a.company, query)
    assert match.subject_id == subject.pk and match.distance > 0.25
    owner = api(tenant_a.owner)
    assert owner.patch("/api/v1/company", {"face_match_threshold": 0.25}, format="json").status_code == 200
    tenant_a.company.refresh_from_db()
    assert face_index.identify(tenant_a.company, query) is None
    assert owner.patch("/api/v1/company", {"face_match_threshold": 0.1}, format="json").status_code == 400
    tenant_a.company.face_match_threshold = 0.55
    services.subject_archive(company=tenant_a.company, actor=None, subject=subject)
    assert face_index.identify(tenant_a.company, query) is None
    services.subject_archive(company=tenant_a.company, actor=None, subject=subject, archived=False)
    assert face_index.identify(tenant_a.company, query).subject_id == subject.pk
    services.photo_delete(company=tenant_a.company, actor=None, photo=photo)
    assert face_index.identify(tenant_a.company, query) is None


def test_an_index_is_checked_for_changes_at_most_once_per_interval(
    settings, monkeypatch, tenant_a, django_capture_on_commit_callbacks
):
    settings.FACE_INDEX_RECHECK_SECONDS = 1
    clock = [1000.0]
    monkeypatch.setattr(face_index.time, "monotonic", lambda: clock[0])
    query = embedding_of(astronaut_jpeg())
    assert face_index.identify(tenant_a.company, query) is None  # built, empty
    subject, _ = enrolled(tenant_a.company, "Eileen", astronaut_jpeg(), django_capture_on_commit_callbacks)
    assert face_index.identify(tenant_a.company, query) is None  # within the second: not re-read
    clock[0] += 1.0
    assert face_index.identify(tenant_a.company, query).subject_id == subject.pk


def test_a_company_re_enrols_all_its_photos_as_one_job(api, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    _, eileen_photo = enrolled(tenant_a.company, "Eileen", astronaut_jpeg(), capture)
    _, sky = enrolled(tenant_a.company, "Sky", portraits.jpeg(portraits.landscape()), capture)
    _, other = enrolled(tenant_b.company, "Other", hopper_jpeg(), capture)
    before = Photo.objects.for_company(tenant_b.company).get(pk=other.pk).enrolled_at
    Photo.objects.for_company(tenant_a.company).filter(pk=eileen_photo.pk).update(  # tenant: test setup
        embedding_model="an-older-model", status="pending"
    )
    with capture(execute=True):
        response = api(tenant_a.admin).post("/api/v1/photos/reenrol")
    assert response.status_code == 202
    job = Job.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    assert (job.state, job.done, job.total, job.failed) == (JobState.DONE, 2, 2, 0)
    photos = {p.pk: p for p in Photo.objects.for_company(tenant_a.company)}
    assert (photos[eileen_photo.pk].status, photos[eileen_photo.pk].embedding_model) == ("ok", faces.MODEL)
    assert photos[sky.pk].reason == "no_face"
    assert Photo.objects.for_company(tenant_b.company).get(pk=other.pk).enrolled_at == before


def test_starting_a_re_enrolment_twice_starts_one_job(api, client, tenant_a):
    client_api = api(tenant_a.admin)
    first = client_api.post("/api/v1/photos/reenrol")  # queued: jobs start after commit
    assert first.status_code == 202
    second = client_api.post("/api/v1/photos/reenrol")
    assert second.status_code == 409 and second.json()["error"]["code"] == "job_already_queued"
    client.force_login(tenant_a.admin)
    response = client.post("/admin/subjects/photo/reenrol/", follow=True)
    assert "already under way" in response.content.decode()
    assert Job.objects.for_company(tenant_a.company).count() == 1
    assert api(tenant_a.viewer).post("/api/v1/photos/reenrol").status_code == 403


def test_the_admin_button_starts_a_re_enrolment_with_progress(client, tenant_a, django_capture_on_commit_callbacks):
    enrolled(tenant_a.company, "Eileen", astronaut_jpeg(), django_capture_on_commit_callbacks)
    client.force_login(tenant_a.admin)
    assert "Re-enrol all photos" in client.get("/admin/subjects/photo/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/subjects/photo/reenrol/")
    job = Job.objects.for_company(tenant_a.company).get()
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/job/{job.pk}/change/"
    assert (job.state, job.done, job.total) == (JobState.DONE, 1, 1)
    assert "1 / 1" in client.get("/admin/accounts/job/").content.decode()


def test_a_process_keeps_the_indexes_of_the_companies_searched_last_within_its_budget(
    settings, tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    eileen_a, _ = enrolled(tenant_a.company, "Eileen A", astronaut_jpeg(), capture)
    grace_b, _ = enrolled(tenant_b.company, "Grace B", hopper_jpeg(), capture)
    eileen = embedding_of(astronaut_jpeg())
    grace = embedding_of(hopper_jpeg())
    a, b = tenant_a.company.pk, tenant_b.company.pk

    # Room for both: both stay, the one searched last at the end.
    face_index.identify(tenant_a.company, eileen)
    face_index.identify(tenant_b.company, grace)
    assert face_index.cached_companies() == [a, b]
    face_index.identify(tenant_a.company, eileen)
    assert face_index.cached_companies() == [b, a]

    # A budget smaller than one index (about 1 KB here): only the index in use is kept, and
    # a dropped company's next search rebuilds it from the database, with the same answer.
    settings.FACE_INDEX_CACHE_MB = 0.001
    assert face_index.identify(tenant_b.company, grace).subject_id == grace_b.pk
    assert face_index.cached_companies() == [b]
    assert face_index.identify(tenant_a.company, eileen).subject_id == eileen_a.pk
    assert face_index.cached_companies() == [a]
