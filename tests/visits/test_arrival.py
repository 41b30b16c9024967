"""A visit is marked arrived when a door first recognises its visitor within its window; the
host gets one e-mail for it (the integrations app's, to the visit's host); webhooks hear
`visit.invited` and `visit.arrived`, never a link or a face."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings
from django.utils import timezone

from events.models import Event, EventKind
from integrations import services as webhook_services
from subjects.models import Subject, SubjectType
from tests.events.conftest import event
from tests.factories import SubjectFactory
from tests.visits.helpers import employee, invite, post, verified
from visits.models import Visit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("jobs_and_webhooks_inline")]


def test_the_first_recognition_in_the_window_marks_the_arrival_and_tells_the_visits_host_once(tenants, door_a, door_b):
    a, b = tenants
    host = employee(a, "陳經理", "host@a.example")
    later_host = employee(a, "Other Host", "other@a.example")
    now = timezone.now()
    visit, _ = invite(a, host=host, purpose="Interview", starts_at=now - timedelta(minutes=30))
    # Invited again for next week, with another host: today the doors still expect today's visit.
    next_week = now + timedelta(days=7)
    second, _ = invite(a, host=later_host, starts_at=next_week, ends_at=next_week + timedelta(hours=1))
    theirs, _ = invite(b, host=employee(b, "B host", "host@b.example"), starts_at=now - timedelta(minutes=30))
    visitor = Subject.objects.get(pk=visit.visitor_id)
    assert (visitor.host, visitor.purpose) == (host, "Interview")
    mail.outbox.clear()

    first = now - timedelta(minutes=2)
    post(door_a, [event("v1", door_a.entrance, visitor, when=first)])
    post(door_a, [event("v1", door_a.entrance, visitor, when=first)])  # the same event, retried
    post(door_a, [event("v2", door_a.exit, visitor), event("v3", door_a.entrance, visitor)])

    visit.refresh_from_db()
    second.refresh_from_db()
    theirs.refresh_from_db()
    assert visit.arrived_at == first
    assert second.arrived_at is None and theirs.arrived_at is None
    [message] = mail.outbox
    assert message.to == ["host@a.example"] and "Interview" in message.body
    # Company B's door naming company A's visitor: a stranger there, nothing marked or sent.
    post(door_b, [event("x", door_b.entrance, visitor)])
    assert len(mail.outbox) == 1
    assert Event.objects.for_company(b.company).get().kind == EventKind.STRANGER


def test_a_visitor_outside_the_window_is_told_so_at_the_door_and_nothing_is_marked(tenants, door_a):
    a, _b = tenants
    visit, _ = invite(a, host=employee(a, "Host", "host@a.example"), starts_at=timezone.now() + timedelta(hours=2))
    mail.outbox.clear()

    [result] = post(door_a, [event("early", door_a.entrance, visit.visitor)])

    assert Event.objects.for_company(a.company).get(pk=result["id"]).kind == EventKind.VISITOR_OUTSIDE_WINDOW
    visit.refresh_from_db()
    assert visit.arrived_at is None and mail.outbox == []


def test_a_cancelled_visit_is_never_marked(tenants, door_a):
    from visits import services

    a, _b = tenants
    visit, _ = invite(a, host=employee(a, "Host", "host@a.example"), starts_at=timezone.now() - timedelta(minutes=5))
    services.visit_cancel(company=a.company, actor=a.admin, visit=visit)

    post(door_a, [event("late", door_a.entrance, visit.visitor)])

    visit.refresh_from_db()
    assert visit.arrived_at is None


def test_webhooks_hear_the_invitation_and_the_arrival_once_without_link_or_face(tenants, door_a, receiver):
    a, b = tenants
    _endpoint, secret = webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.invited", "visit.arrived"]
    )
    webhook_services.webhook_endpoint_create(
        company=b.company, actor=b.admin, url=receiver.url + "/b", event_types=["visit.invited", "visit.arrived"]
    )
    host = employee(a, "陳經理", "host@a.example")
    visit, token = invite(a, host=host, visitor_company="Acme", starts_at=timezone.now() - timedelta(minutes=10))

    post(door_a, [event("v1", door_a.entrance, visit.visitor)])
    post(door_a, [event("v2", door_a.entrance, visit.visitor)])

    payloads = [verified(secret, request) for request in receiver.requests]
    assert [p["type"] for p in payloads] == ["visit.invited", "visit.arrived"]
    assert {request.path for request in receiver.requests} == {"/hooks"}  # nothing to company B's endpoint
    invited, arrived = (p["data"] for p in payloads)
    assert (invited["id"], invited["visitor_name"], invited["visitor_company"], invited["host"]) == (
        visit.pk, "Mei Chen", "Acme", host.pk,
    )  # fmt: skip
    assert (invited["state"], invited["arrived_at"]) == ("invited", None)
    assert arrived["state"] == "arrived" and arrived["arrived_at"] is not None
    # The company's zone (+08:00 for Taipei) on every time, and nothing that opens the link or shows a face.
    zone = timezone.localtime(visit.starts_at, a.company.zone).strftime("%z")
    assert arrived["starts_at"].endswith(zone[:3] + ":" + zone[3:]) or zone == "+0000"
    for request in receiver.requests:
        body = request.body.decode()
        assert token not in body and visit.link_token_hash not in body
        assert "/visit/" not in body and "image" not in body and "embedding" not in body and "photo" not in body


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_doors_posting_at_once_mark_the_arrival_once(tenants, door_a, receiver):
    from tests.test_concurrency import run_together

    a, _b = tenants
    _endpoint, secret = webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.arrived"]
    )
    host = employee(a, "Host", "host@a.example")
    visit, _ = invite(a, host=host, starts_at=timezone.now() - timedelta(minutes=10))
    mail.outbox.clear()
    moments = [timezone.now() - timedelta(seconds=30), timezone.now() - timedelta(seconds=20)]

    def door(uid, screen, when):
        def call():
            answer = door_a.box_client().post(
                "/api/v1/device/events", {"events": [event(uid, screen, visit.visitor, when=when)]}, format="json"
            )
            return answer.status_code

        return call

    # Two doors, two recognitions of the visitor, released at the same moment.
    assert run_together(door("in", door_a.entrance, moments[0]), door("out", door_a.exit, moments[1])) == [200, 200]
    visit.refresh_from_db()
    assert visit.arrived_at in moments
    assert Visit.objects.for_company(a.company).filter(arrived_at__isnull=False).count() == 1
    assert [verified(secret, r)["type"] for r in receiver.requests] == ["visit.arrived"]
    assert len(mail.outbox) == 1


def test_a_visitor_invited_twice_is_let_in_for_the_second_visit_once_the_first_has_ended(tenants, door_a):
    from tests.factories import VisitFactory
    from visits.services import visits_windows_follow

    a, b = tenants
    first_host = employee(a, "First Host", "first@a.example")
    second_host = employee(a, "Second Host", "second@a.example")
    now = timezone.now()
    # As the invitations left them: the doors expect the visitor for the first visit, now over.
    earlier = {"visit_start": now - timedelta(hours=3), "visit_end": now - timedelta(hours=2)}
    visitor = SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR, host=first_host, **earlier)
    first = VisitFactory(
        company=a.company, visitor=visitor, host=first_host, starts_at=earlier["visit_start"],
        ends_at=earlier["visit_end"],
    )  # fmt: skip
    second = VisitFactory(
        company=a.company, visitor=visitor, host=second_host, starts_at=now - timedelta(minutes=10),
        ends_at=now + timedelta(hours=1),
    )  # fmt: skip
    theirs = SubjectFactory(company=b.company, subject_type=SubjectType.VISITOR, **earlier)
    VisitFactory(company=b.company, visitor=theirs, starts_at=earlier["visit_start"], ends_at=earlier["visit_end"])
    [refused] = post(door_a, [event("too-soon", door_a.entrance, visitor)])
    assert Event.objects.for_company(a.company).get(pk=refused["id"]).kind == EventKind.VISITOR_OUTSIDE_WINDOW
    mail.outbox.clear()

    assert visits_windows_follow() == 1
    assert visits_windows_follow() == 0  # done once; company B's visitor has no visit to move on to
    visitor.refresh_from_db()
    theirs.refresh_from_db()
    assert (visitor.visit_start, visitor.visit_end, visitor.host) == (second.starts_at, second.ends_at, second_host)
    assert theirs.visit_end == earlier["visit_end"]

    arrival = now - timedelta(seconds=30)
    post(door_a, [event("second", door_a.entrance, visitor, when=arrival)])

    second.refresh_from_db()
    first.refresh_from_db()
    assert second.arrived_at == arrival and first.arrived_at is None
    assert [m.to for m in mail.outbox] == [["second@a.example"]]


def test_a_visitor_with_an_enrolled_face_is_recognised_at_the_pad_and_the_visit_arrives(tenants, door_a):
    from tests.faces import portraits
    from tests.faces.enrolled import enrol, snapshot_of
    from visits.selectors import visit_state

    a, b = tenants
    host = employee(a, "陳經理", "host@a.example")
    now = timezone.now()
    # A returning visitor: their face is enrolled; the invitation reuses them by e-mail.
    eileen = enrol(
        a, "Eileen Collins", portraits.astronaut(), subject_type=SubjectType.VISITOR, email="eileen@example.org",
        job_number="V-1", visit_start=now - timedelta(days=9), visit_end=now - timedelta(days=8),
    )  # fmt: skip
    enrol(b, "Eileen Collins", portraits.astronaut(), subject_type=SubjectType.VISITOR, job_number="V-1")
    visit, _ = invite(a, host=host, visitor_name="Eileen Collins", visitor_email="eileen@example.org",
                      starts_at=now - timedelta(minutes=15))  # fmt: skip
    assert visit.visitor_id == eileen.pk and visit_state(visit) == "photo_ready"
    mail.outbox.clear()

    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        answer = door_a.pad_client().post(
            "/api/v1/device/recognize/upload",
            {"image": SimpleUploadedFile("frame.jpg", snapshot_of(portraits.astronaut()), content_type="image/jpeg")},
            format="multipart",
        )

    assert answer.status_code == 201, answer.content
    assert (answer.json()["kind"], answer.json()["subject"]["id"]) == ("recognized", eileen.pk)
    visit.refresh_from_db()
    assert visit.arrived_at is not None and visit_state(visit) == "arrived"
    assert [m.to for m in mail.outbox] == [["host@a.example"]]
