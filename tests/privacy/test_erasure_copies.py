"""Erasure reaches the copies of a person's data kept outside their subject: the webhook
delivery log's bodies (and a receiver's answer quoting them), the audit entries of
corrections of their events, the records of bulk photo uploads, and the arrival e-mails'
record of a host. In the erasure's transaction; another company's copies stay as they were.
Withdrawing consent takes the links to the deleted pictures out of the log."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from accounts.models import AuditLog
from events.corrections import event_correct
from events.models import Event
from integrations.models import DeliveryStatus, VisitorArrival, WebhookDelivery
from integrations.services import webhook_endpoint_create
from privacy.erasure import subject_erase
from subjects import services
from subjects.models import PhotoUpload, Subject, SubjectType
from tests.events.conftest import event
from tests.factories import SubjectFactory
from tests.images import snapshot
from tests.subjects.test_consent_withdrawal import enrol
from tests.test_media import post_events

pytestmark = pytest.mark.django_db

TYPES = ["event.recognized", "event.corrected", "subject.created", "subject.updated", "subject.deleted"]


@pytest.fixture(autouse=True)
def _webhooks_to_loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.JOBS_INLINE = True


def person_with_messages(tenant, door, hooks, capture, name):
    """A person created through the API's service, with a photo and two passes, each
    announced to the company's endpoint (and delivered to the receiver)."""
    with capture(execute=True):
        webhook_endpoint_create(company=tenant.company, actor=tenant.owner, url=hooks.url, event_types=TYPES)
    with capture(execute=True):
        subject = services.subject_create(
            company=tenant.company,
            actor=tenant.admin,
            name=name,
            job_number=f"{tenant.company.slug}-0042",
            email=f"{tenant.company.slug}.lin@example.com",
            phone="+886 912 345 678",
        )
    enrol(tenant, subject)
    with capture(execute=True):
        seen = post_events(
            door,
            [
                event(f"{tenant.company.slug}-in", door.entrance, subject, snapshot=snapshot()),
                event(f"{tenant.company.slug}-out", door.exit, subject, snapshot=snapshot()),
            ],
        )
    return subject, seen


def with_links_as_logged_before(company) -> None:
    """Webhook messages no longer carry image links, but a log written before they stopped
    holds some: the scrub must still take out those of deleted pictures."""
    for row in WebhookDelivery.objects.for_company(company).filter(event_type="event.recognized"):
        message = json.loads(row.body)
        message["data"]["snapshot_url"] = f"/api/v1/events/{message['data']['id']}/snapshot"
        message["data"]["subject"]["photo_url"] = "/api/v1/photos/1/thumbnail"
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        WebhookDelivery.objects.for_company(company).filter(pk=row.pk).update(body=body)


def bodies(company) -> dict[int, dict]:
    return {row.pk: json.loads(row.body) for row in WebhookDelivery.objects.for_company(company).order_by("pk")}


def mentions(company, *texts) -> list[int]:
    return [
        row.pk
        for row in WebhookDelivery.objects.for_company(company)
        if any(text in row.body or text in row.response_excerpt for text in texts)
    ]


def test_erasure_scrubs_the_person_from_the_delivery_log_of_their_company_only(
    tenants,
    door_a,
    door_b,
    receiver,
    django_capture_on_commit_callbacks,
):
    a, b = tenants
    subject, seen = person_with_messages(a, door_a, receiver, django_capture_on_commit_callbacks, "林志明 Lin")
    other = SubjectFactory(company=a.company, name="Someone Else", job_number="a-0099")
    with django_capture_on_commit_callbacks(execute=True):
        other_seen = post_events(door_a, [event("a-other", door_a.entrance, other, snapshot=snapshot())])
    theirs, _ = person_with_messages(b, door_b, receiver, django_capture_on_commit_callbacks, "林志明 Lin")
    b_before = bodies(b.company)
    identifying = ("林志明", "a-0042", "a.lin@example.com", "+886 912 345 678")
    before = bodies(a.company)
    assert len(mentions(a.company, *identifying)) == 3  # subject.created and two events
    assert all(row.status == DeliveryStatus.DELIVERED for row in WebhookDelivery.objects.for_company(a.company))
    # A receiver that echoed the body back: its answer is kept in the log too.
    echoed = WebhookDelivery.objects.for_company(a.company).get(event_type="subject.created")
    WebhookDelivery.objects.for_company(a.company).filter(pk=echoed.pk).update(
        response_excerpt='{"received": "林志明 Lin"}'
    )

    with django_capture_on_commit_callbacks(execute=True):
        subject_erase(company=a.company, actor=a.owner, subject=subject, reason="His written request")

    assert mentions(a.company, *identifying) == []
    after = bodies(a.company)
    rows = {row.pk: row for row in WebhookDelivery.objects.for_company(a.company)}
    for pk, message in after.items():
        data = message["data"]
        if message["type"] == "event.recognized" and data["id"] in seen:
            # As the API shows the event now: nobody, no snapshot; the rest stays.
            assert data["subject"] is None and data["snapshot_url"] is None
            assert message["redacted"] == "subject_erased"
            assert {k: v for k, v in data.items() if k not in ("subject", "snapshot_url")} == {
                k: v for k, v in before[pk]["data"].items() if k not in ("subject", "snapshot_url")
            }
        elif message["type"] == "subject.created" and data["id"] == subject.pk:
            assert set(data) == {"id", "subject_type", "created_at", "updated_at"}
            assert data["subject_type"] == SubjectType.EMPLOYEE and message["redacted"] == "subject_erased"
        elif pk in before:
            assert message == before[pk]  # another person's messages are untouched
        # The delivery keeps how it went.
        assert rows[pk].status == DeliveryStatus.DELIVERED and rows[pk].attempts == 1
    assert rows[echoed.pk].response_excerpt == ""
    # The other person's event still names them (a webhook never carries an image link).
    (kept,) = [m for m in after.values() if m["type"] == "event.recognized" and m["data"]["id"] in other_seen]
    assert kept["data"]["subject"]["name"] == "Someone Else" and kept["data"]["snapshot_url"] is None
    # The deletion itself was announced, by id only.
    deleted = [m for m in after.values() if m["type"] == "subject.deleted"]
    assert [m["data"] for m in deleted] == [{"id": subject.pk}]
    # Company B's log is as it was, its namesake included.
    assert bodies(b.company) == b_before and Subject.objects.for_company(b.company).filter(pk=theirs.pk).exists()


def test_a_rolled_back_erasure_leaves_the_log_as_it_was(
    tenant_a,
    door_a,
    receiver,
    django_capture_on_commit_callbacks,
):
    subject, _ = person_with_messages(tenant_a, door_a, receiver, django_capture_on_commit_callbacks, "林志明 Lin")
    before = bodies(tenant_a.company)
    with pytest.raises(RuntimeError), transaction.atomic():
        subject_erase(company=tenant_a.company, actor=tenant_a.owner, subject=subject, reason="asked")
        raise RuntimeError("something after the erasure fails")
    assert bodies(tenant_a.company) == before


def test_withdrawing_consent_takes_the_picture_links_out_of_the_log(
    tenants,
    door_a,
    receiver,
    django_capture_on_commit_callbacks,
):
    a, _ = tenants
    subject, _ = person_with_messages(a, door_a, receiver, django_capture_on_commit_callbacks, "Lin")
    services.consent_record(company=a.company, actor=a.admin, subject=subject, method="paper", policy_version=1)
    with_links_as_logged_before(a.company)
    events = [m for m in bodies(a.company).values() if m["type"] == "event.recognized"]
    assert all(m["data"]["snapshot_url"] and m["data"]["subject"]["photo_url"] for m in events)

    with django_capture_on_commit_callbacks(execute=True):
        services.consent_withdraw(company=a.company, actor=a.admin, subject=subject)

    events = [m for m in bodies(a.company).values() if m["type"] == "event.recognized"]
    assert len(events) == 2
    for message in events:
        # The person stays (they are still an employee); the links to deleted pictures go.
        assert message["data"]["snapshot_url"] is None and message["data"]["subject"]["photo_url"] is None
        assert message["data"]["subject"]["name"] == "Lin" and "redacted" not in message


def test_erasure_scrubs_correction_entries_photo_uploads_and_host_addresses(
    tenants, door_a, door_b, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject = SubjectFactory(company=a.company, name="林志明", job_number="E-0042", email="lin@example.com")
    stranger = post_events(door_a, [event("a-stranger", door_a.entrance)])[0]
    event_correct(
        company=a.company,
        actor=a.admin,
        event=Event.objects.for_company(a.company).get(pk=stranger),
        subject=subject,
    )
    entry = AuditLog.objects.for_company(a.company).get(action="event.correct")
    assert "林志明" in entry.object_repr
    # Renamed since: the entry still carries the name the event had then.
    subject = services.subject_update(company=a.company, actor=a.admin, subject=subject, name="Lin Chih-ming")
    upload = PhotoUpload.objects.create(
        company=a.company,
        file_name="team.zip",
        size=100,
        expires_at=entry.created_at,
        entries=[
            {"index": 0, "name": "E-0042.jpg", "job_number": "E-0042", "subject": subject.pk,
             "subject_name": "林志明", "status": "stored", "reason": "", "photo": None},
            {"index": 1, "name": "E-0043.jpg", "job_number": "E-0043", "subject": subject.pk + 1000,
             "subject_name": "Wang", "status": "stored", "reason": "", "photo": None},
        ],
    )  # fmt: skip
    visitor = SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR, host=subject)
    VisitorArrival.objects.create(company=a.company, visitor=visitor, visit="x", host_email="lin@example.com")
    namesake = SubjectFactory(company=b.company, name="林志明", job_number="E-0042", email="lin@example.com")
    b_visitor = SubjectFactory(company=b.company, subject_type=SubjectType.VISITOR, host=namesake)
    VisitorArrival.objects.create(company=b.company, visitor=b_visitor, visit="x", host_email="lin@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        subject_erase(company=a.company, actor=a.owner, subject=subject, reason="asked")

    entry.refresh_from_db()
    assert "林志明" not in entry.object_repr and f"Erased person #{subject.pk}" in entry.object_repr
    upload.refresh_from_db()
    assert upload.entries[0] == {
        "index": 0, "name": f"Erased person #{subject.pk}", "job_number": "", "subject": subject.pk,
        "subject_name": "", "status": "stored", "reason": "", "photo": None,
    }  # fmt: skip
    assert upload.entries[1]["subject_name"] == "Wang"
    assert VisitorArrival.objects.for_company(a.company).get().host_email == ""
    assert VisitorArrival.objects.for_company(b.company).get().host_email == "lin@example.com"
