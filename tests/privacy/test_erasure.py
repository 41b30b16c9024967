"""Erasure: a subject goes with every piece of their biometric data (photos and embeddings,
consents and signed forms, snapshots, unknown-person links; files after commit; the boxes
told through the gallery change log), their events stay anonymous for attendance totals,
and the erasure is audited with who and why. Another company's subject answers 404."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from accounts.models import AuditLog
from events.models import Event, EventCorrection, UnknownPerson, UnknownSnapshot
from subjects import services
from subjects.models import Consent, GalleryChange, Photo, Subject
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes
from tests.subjects.test_consent_withdrawal import company_files, with_biometrics

pytestmark = pytest.mark.django_db


def signed_form(api, tenant, subject):
    form = SimpleUploadedFile("form.jpg", jpeg_bytes((200, 300)))
    response = api(tenant.admin).post(
        f"/api/v1/subjects/{subject.pk}/consents/upload", {"method": "paper", "policy_version": "1", "evidence": form}
    )
    assert response.status_code == 201, response.json()


def test_erasing_deletes_every_biometric_and_keeps_anonymous_events(
    api, tenants, door_a, door_b, media_root, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject, seen, person, _copy = with_biometrics(a, door_a)
    signed_form(api, a, subject)
    EventCorrection.objects.create(
        company=a.company, event_id=seen[0], kind="reassigned", original_kind="stranger",
        original_subject_name="", subject=subject, subject_name=subject.name,
    )  # fmt: skip
    subject = services.subject_update(company=a.company, actor=a.admin, subject=subject, name="林志明 Lin")
    with_biometrics(b, door_b)
    theirs = company_files(media_root, b.company)
    sequence = GalleryChange.objects.for_company(a.company).order_by("-sequence").first().sequence

    with django_capture_on_commit_callbacks(execute=True):
        response = api(a.admin).post(
            f"/api/v1/subjects/{subject.pk}/erase", {"reason": "Her written request"}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "subject": subject.pk, "photos_deleted": 2, "consents_deleted": 2, "events_anonymised": 2,
    }  # fmt: skip

    # No file of company A is left (photos, thumbnails, snapshots, the copy, the signed form).
    assert company_files(media_root, a.company) == []
    assert company_files(media_root, b.company) == theirs
    assert not Subject.objects.for_company(a.company).filter(pk=subject.pk).exists()
    assert not Photo.objects.for_company(a.company).exists()
    assert not Consent.objects.for_company(a.company).exists()
    assert not UnknownSnapshot.objects.for_company(a.company).exists()
    assert not UnknownPerson.objects.for_company(a.company).filter(pk=person.pk).exists()
    # The events stay, naming nobody, for the attendance totals.
    events = list(Event.objects.for_company(a.company).filter(pk__in=seen))
    assert len(events) == 2
    for event in events:
        assert (event.kind, event.subject_id, event.subject_name, event.subject_job_number) == (
            "recognized", None, "", "",
        )  # fmt: skip
        assert not event.snapshot and event.unknown_person_id is None
        assert event.is_anonymous and event.who == "Erased person"
    assert EventCorrection.objects.for_company(a.company).get().subject_name == ""
    # The boxes are told in the same transaction: a tombstone.
    latest = GalleryChange.objects.for_company(a.company).order_by("-sequence").first()
    assert latest.sequence > sequence and (latest.subject_ref, latest.op) == (subject.pk, "delete")
    # Audited with who and why; the log no longer says who the person was.
    entry = AuditLog.objects.for_company(a.company).get(action="subject.erase")
    assert (entry.actor, entry.object_id, entry.object_repr) == (
        a.admin,
        str(subject.pk),
        f"Erased person #{subject.pk}",
    )
    assert entry.changes["reason"] == "Her written request"
    about = AuditLog.objects.for_company(a.company).filter(object_id=str(subject.pk), action__startswith="subject.")
    assert {e.action for e in about} >= {"subject.update", "subject.delete", "subject.erase"}
    for e in about:
        assert subject.name not in e.object_repr and "name" not in e.changes and "job_number" not in e.changes
    # Company B keeps everything.
    assert Photo.objects.for_company(b.company).count() == 2
    assert Event.objects.for_company(b.company).exclude(subject_name="").count() == 2


def test_the_reason_is_required_and_nothing_is_erased_without_it(api, tenants):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    for body in ({}, {"reason": "   "}):
        response = api(a.owner).post(f"/api/v1/subjects/{subject.pk}/erase", body, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error" and "reason" in response.json()["error"]["fields"]
    response = api(a.owner).post(f"/api/v1/subjects/{subject.pk}/erase", {"reason": "x", "force": True}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "unknown_fields")
    assert Subject.objects.for_company(a.company).filter(pk=subject.pk).exists()
    assert not AuditLog.objects.for_company(a.company).filter(action="subject.erase").exists()


def test_another_company_and_viewers_cannot_erase(api, tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    assert api(b.owner).post(f"/api/v1/subjects/{subject.pk}/erase", {"reason": "r"}, format="json").status_code == 404
    assert api(a.owner).post("/api/v1/subjects/999999/erase", {"reason": "r"}, format="json").status_code == 404
    assert api(a.viewer).post(f"/api/v1/subjects/{subject.pk}/erase", {"reason": "r"}, format="json").status_code == 403
    assert Subject.objects.for_company(a.company).filter(pk=subject.pk).exists()


def test_an_erasure_that_rolls_back_keeps_every_row_and_file(
    tenant_a, door_a, media_root, django_capture_on_commit_callbacks
):
    from privacy.erasure import subject_erase
    from tests.subjects.test_photos import files_in

    subject, seen, _person, _copy = with_biometrics(tenant_a, door_a)
    before = files_in(media_root)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        subject_erase(company=tenant_a.company, actor=tenant_a.admin, subject=subject, reason="asked")
        raise RuntimeError("something after the erasure fails")
    assert files_in(media_root) == before
    assert Event.objects.for_company(tenant_a.company).filter(pk__in=seen, subject_name=subject.name).count() == 2


def test_the_admin_asks_for_the_reason_then_erases(
    admin_client_for, tenants, door_a, media_root, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject, *_ = with_biometrics(a, door_a)
    client = admin_client_for(a.admin)
    change = client.get(f"/admin/subjects/subject/{subject.pk}/change/").content.decode()
    url = f"/admin/subjects/subject/{subject.pk}/erase/"
    assert url in change
    page = client.get(url)
    assert page.status_code == 200 and "2 photo(s)" in page.content.decode()
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 200 and Subject.objects.for_company(a.company).filter(pk=subject.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"reason": "Left the company and asked"})
    assert done.status_code == 302
    assert not Subject.objects.for_company(a.company).filter(pk=subject.pk).exists()
    assert AuditLog.objects.for_company(a.company).get(action="subject.erase").changes["reason"] == (
        "Left the company and asked"
    )
    # The event list shows an erased person.
    events = client.get("/admin/events/event/").content.decode()
    assert "Erased person" in events
    # Another company's admin gets 404; a viewer may not.
    other = SubjectFactory(company=a.company)
    assert admin_client_for(b.admin).get(f"/admin/subjects/subject/{other.pk}/erase/").status_code == 404
    assert (
        admin_client_for(a.viewer).post(f"/admin/subjects/subject/{other.pk}/erase/", {"reason": "r"}).status_code
        == 403
    )


def test_a_company_api_key_can_neither_erase_nor_export(tenant_a):
    # A person's rights are exercised by people who answer for it, never by a system's key.
    from tests.integrations.test_api_keys import key_client, new_key

    subject = SubjectFactory(company=tenant_a.company)
    _, key = new_key(tenant_a, ["subjects:read", "subjects:write"])
    client = key_client(key)
    erase = client.post(f"/api/v1/subjects/{subject.pk}/erase", {"reason": "r"}, format="json")
    assert (erase.status_code, erase.json()["error"]["code"]) == (403, "api_key_scope_missing")
    export = client.get(f"/api/v1/subjects/{subject.pk}/access-export")
    assert (export.status_code, export.json()["error"]["code"]) == (403, "api_key_scope_missing")
    assert Subject.objects.for_company(tenant_a.company).filter(pk=subject.pk).exists()
