"""Withdrawing consent deletes the subject's biometric data at once: photos with their
embeddings, their events' snapshots and unknown-person links (files after commit), and the
gallery change log tells the boxes in the same transaction. Deleting a subject leaves none
of their face pictures behind either. Company B's data is never touched."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import transaction

import faces
from accounts.models import AuditLog
from events.models import Event, UnknownPerson, UnknownSnapshot
from kangaroo.errors import CONSENT_NOT_IN_FORCE
from kangaroo.media import MediaKind, media_save
from subjects import services
from subjects.domain_signals import announce_photos_enrolled
from subjects.models import Consent, GalleryChange, Photo, PhotoStatus
from subjects.selectors import usable_photos
from tests.devices.test_gallery_feed import sync
from tests.events.conftest import event
from tests.factories import PhotoFactory, SubjectFactory, UnknownPersonFactory, UnknownSnapshotFactory
from tests.images import jpeg_bytes, snapshot
from tests.subjects.test_photos import files_in
from tests.test_media import post_events

pytestmark = pytest.mark.django_db


def enrol(tenant, subject, seed=0) -> Photo:
    """A photo of `subject` the face engine enrolled (ok, with an embedding), its files
    stored where the media owner keeps them, announced like an enrolment."""
    company = tenant.company
    vector = np.random.default_rng(seed).random(128, dtype=np.float32)
    photo = PhotoFactory(
        company=company,
        subject=subject,
        image=media_save(kind=MediaKind.PHOTO, company_id=company.pk, content=jpeg_bytes()),
        thumbnail=media_save(kind=MediaKind.THUMBNAIL, company_id=company.pk, content=jpeg_bytes()),
        status=PhotoStatus.OK,
        embedding=vector.astype("<f4").tobytes(),
        embedding_model=faces.MODEL,
    )
    with transaction.atomic():
        announce_photos_enrolled(company=company, photos=[(photo.pk, subject.pk)])
    return photo


def with_biometrics(tenant, door, name="林志明"):
    """A subject with two enrolled photos, two events with snapshots, and an unknown person
    who kept a copy of one of those snapshots (a stranger sighting later known to be them)."""
    subject = SubjectFactory(company=tenant.company, name=name)
    for seed in range(2):
        enrol(tenant, subject, seed=seed)
    seen = post_events(
        door,
        [
            event(f"{tenant.company.slug}-in", door.entrance, subject, snapshot=snapshot()),
            event(f"{tenant.company.slug}-out", door.exit, subject, snapshot=snapshot()),
        ],
    )
    person = UnknownPersonFactory(company=tenant.company)
    copy = UnknownSnapshotFactory(
        company=tenant.company,
        person=person,
        event_id=seen[0],
        image=media_save(kind=MediaKind.SNAPSHOT, company_id=tenant.company.pk, content=jpeg_bytes()),
    )
    Event.objects.for_company(tenant.company).filter(pk=seen[1]).update(unknown_person=person)
    return subject, seen, person, copy


def company_files(media_root, company) -> list[str]:
    return sorted(path.as_posix() for path in files_in(media_root) if path.parts[1] == str(company.pk))


def test_withdrawing_deletes_photos_snapshots_and_unknown_person_links_at_once(
    api, tenants, door_a, door_b, media_root, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject, seen, person, copy = with_biometrics(a, door_a)
    stranger = post_events(door_a, [event("a-stranger", door_a.entrance, snapshot=snapshot())])[0]
    stranger_file = Event.objects.for_company(a.company).get(pk=stranger).snapshot.name
    with_biometrics(b, door_b)
    theirs = company_files(media_root, b.company)
    assert len(company_files(media_root, a.company)) == 2 * 2 + 2 + 1 + 1  # photos+thumbs, snapshots, copy, stranger

    with django_capture_on_commit_callbacks(execute=True):
        response = api(a.admin).post(f"/api/v1/subjects/{subject.pk}/consents/withdraw")
    assert response.status_code == 200, response.json()
    assert response.json()["withdrawn_at"] is not None and response.json()["withdrawn_by"] == a.admin.username
    assert response.json()["in_force"] is False

    # Company A: only the stranger's snapshot is left; company B keeps everything.
    assert company_files(media_root, a.company) == [stranger_file]
    assert company_files(media_root, b.company) == theirs
    assert not Photo.objects.for_company(a.company).filter(subject=subject).exists()
    events = Event.objects.for_company(a.company).filter(pk__in=seen).order_by("pk")
    assert [(e.subject_id, e.snapshot.name, e.unknown_person_id) for e in events] == [
        (subject.pk, "", None),
        (subject.pk, "", None),
    ]
    assert not UnknownSnapshot.objects.for_company(a.company).filter(pk=copy.pk).exists()
    assert not UnknownPerson.objects.for_company(a.company).filter(pk=person.pk).exists()  # nothing left of them
    assert Event.objects.for_company(a.company).get(pk=stranger).snapshot.name == stranger_file
    # The consent stays in the history, withdrawn; the withdrawal is audited.
    consent = Consent.objects.for_company(a.company).get(subject=subject)
    assert consent.withdrawn_by == a.admin and not consent.in_force
    entry = AuditLog.objects.for_company(a.company).get(action="consent.withdraw")
    assert entry.changes == {"subject": subject.pk, "photos_deleted": 2}
    assert Photo.objects.for_company(b.company).count() == 2
    assert Consent.objects.for_company(b.company).get().in_force


def test_the_gallery_log_tells_the_boxes_in_the_same_transaction(tenants, door_a):
    a, b = tenants
    subject, *_ = with_biometrics(a, door_a)
    box = door_a.box_client()
    held, cursor, _ = sync(box)
    assert len(held[subject.pk]["faces"]) == 2
    b_rows = GalleryChange.objects.for_company(b.company).count()

    services.consent_withdraw(company=a.company, actor=a.admin, subject=subject)

    latest = GalleryChange.objects.for_company(a.company).order_by("-sequence").first()
    assert (latest.subject_ref, latest.op, latest.reason) == (subject.pk, "delete", "consent_withdrawn")
    assert not usable_photos(a.company.pk).filter(subject=subject).exists()
    held, _, _ = sync(box, after=cursor)
    assert held.get(subject.pk, {"faces": []})["faces"] == []
    assert GalleryChange.objects.for_company(b.company).count() == b_rows


def test_a_withdrawal_that_rolls_back_keeps_every_row_and_file(
    tenant_a, door_a, media_root, django_capture_on_commit_callbacks
):
    subject, seen, _person, _copy = with_biometrics(tenant_a, door_a)
    before = files_in(media_root)
    sequence = GalleryChange.objects.for_company(tenant_a.company).count()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.consent_withdraw(company=tenant_a.company, actor=tenant_a.admin, subject=subject)
        raise RuntimeError("something after the withdrawal fails")
    assert files_in(media_root) == before
    assert Photo.objects.for_company(tenant_a.company).filter(subject=subject).count() == 2
    assert all(e.snapshot for e in Event.objects.for_company(tenant_a.company).filter(pk__in=seen))
    assert Consent.objects.for_company(tenant_a.company).get().in_force
    assert GalleryChange.objects.for_company(tenant_a.company).count() == sequence


def test_a_photo_taken_before_a_withdrawal_is_never_matched(tenant_a):
    # However it outlived the withdrawal (here: a row written behind the services' back).
    subject = SubjectFactory(company=tenant_a.company)
    services.consent_withdraw(company=tenant_a.company, actor=None, subject=subject)
    photo = enrol(tenant_a, subject)
    Photo.objects.for_company(tenant_a.company).filter(pk=photo.pk).update(
        created_at=Consent.objects.for_company(tenant_a.company).get().withdrawn_at
    )
    assert not usable_photos(tenant_a.company.pk).filter(pk=photo.pk).exists()
    # A photo added with a new consent is matched again.
    services.consent_record(company=tenant_a.company, actor=None, subject=subject, method="paper", policy_version=1)
    later = enrol(tenant_a, subject, seed=5)
    assert list(usable_photos(tenant_a.company.pk).filter(subject=subject)) == [later]


def test_withdrawing_without_a_consent_in_force_answers_409_and_other_companies_get_404(api, tenants):
    a, b = tenants
    never = SubjectFactory(company=a.company, consent=False)
    response = api(a.admin).post(f"/api/v1/subjects/{never.pk}/consents/withdraw")
    assert (response.status_code, response.json()["error"]["code"]) == (409, CONSENT_NOT_IN_FORCE.code)
    ours = SubjectFactory(company=a.company)
    assert api(b.owner).post(f"/api/v1/subjects/{ours.pk}/consents/withdraw").status_code == 404
    assert api(a.viewer).post(f"/api/v1/subjects/{ours.pk}/consents/withdraw").status_code == 403
    assert Consent.objects.for_company(a.company).get(subject=ours).in_force


def test_the_admin_asks_then_withdraws(
    admin_client_for, tenants, door_a, media_root, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject, *_ = with_biometrics(a, door_a)
    client = admin_client_for(a.admin)
    url = f"/admin/subjects/subject/{subject.pk}/consent/withdraw/"
    page = client.get(url)
    assert page.status_code == 200 and "2 photos" in page.content.decode()
    assert Photo.objects.for_company(a.company).filter(subject=subject).count() == 2  # asking changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url)
    assert done.status_code == 302
    assert not Photo.objects.for_company(a.company).filter(subject=subject).exists()
    assert not Consent.objects.for_company(a.company).get(subject=subject).in_force
    # Another company's admin gets 404; a viewer may not.
    assert admin_client_for(b.admin).get(url).status_code == 404
    other = SubjectFactory(company=a.company)
    assert admin_client_for(a.viewer).post(f"/admin/subjects/subject/{other.pk}/consent/withdraw/").status_code == 403


def test_deleting_a_subject_leaves_no_picture_of_their_face(
    api, tenants, door_a, door_b, media_root, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject, seen, _person, _copy = with_biometrics(a, door_a)
    assert (
        api(a.admin)
        .post(
            f"/api/v1/subjects/{subject.pk}/consents/upload",
            {"method": "paper", "policy_version": "1", "evidence": _form()},
        )
        .status_code
        == 201
    )
    with_biometrics(b, door_b)
    theirs = company_files(media_root, b.company)

    with django_capture_on_commit_callbacks(execute=True):
        assert api(a.admin).delete(f"/api/v1/subjects/{subject.pk}").status_code == 204

    # Photos, thumbnails, event snapshots, the unknown person's copy and the signed form: all gone.
    assert company_files(media_root, a.company) == []
    assert company_files(media_root, b.company) == theirs
    assert not UnknownSnapshot.objects.for_company(a.company).exists()
    assert all(not e.snapshot for e in Event.objects.for_company(a.company).filter(pk__in=seen))


def _form():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("form.jpg", jpeg_bytes((200, 300)))
