"""A host gets exactly one e-mail per visit when their visitor is first recognised within
the visit window: in the host's language, the time in the company's zone; not for a retried
event, a second door, a visitor outside the window, a host who turned it off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from integrations.arrivals import host_settings_token
from integrations.models import HostSettings, VisitorArrival
from tests.events.conftest import event
from tests.factories import SubjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def visit(tenant_a):
    host = SubjectFactory(company=tenant_a.company, name="陳經理", email="host@a.example", job_number="E100")
    now = timezone.now()
    visitor = SubjectFactory(
        company=tenant_a.company,
        subject_type="visitor",
        name="Ada Visitor",
        job_number="V1",
        host=host,
        purpose="Interview",
        visit_start=now - timedelta(hours=1),
        visit_end=now + timedelta(hours=2),
    )
    return host, visitor


def post(door, items, on_commit):
    with on_commit(execute=True):
        answer = door.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def test_the_host_gets_one_email_per_visit(tenant_a, door_a, visit, django_capture_on_commit_callbacks):
    host, visitor = visit
    mail.outbox.clear()
    post(door_a, [event("v1", door_a.entrance, visitor)], django_capture_on_commit_callbacks)
    [message] = mail.outbox
    assert message.to == ["host@a.example"]
    assert "Ada Visitor" in message.subject and "Ada Visitor" in message.body
    assert door_a.entrance.name in message.body or door_a.box.name in message.body
    local = timezone.localtime(timezone.now(), tenant_a.company.zone).strftime("%Y-%m-%d %H:")
    assert local in message.body and tenant_a.company.time_zone in message.body
    assert "Interview" in message.body
    assert f"/host-settings/{host_settings_token(host)}/" in message.body

    # The same event retried, a second door, a later recognition: no second e-mail.
    post(door_a, [event("v1", door_a.entrance, visitor)], django_capture_on_commit_callbacks)
    post(
        door_a,
        [event("v2", door_a.exit, visitor), event("v3", door_a.entrance, visitor)],
        django_capture_on_commit_callbacks,
    )
    assert len(mail.outbox) == 1
    assert VisitorArrival.objects.for_company(tenant_a.company).count() == 1

    # A new visit (a new window) is told again.
    visitor.visit_start, visitor.visit_end = timezone.now() - timedelta(minutes=5), timezone.now() + timedelta(hours=1)
    visitor.save()
    post(door_a, [event("v4", door_a.entrance, visitor)], django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2


def test_the_email_is_in_the_hosts_language(tenant_a, door_a, visit, django_capture_on_commit_callbacks):
    _host, visitor = visit
    UserFactory(company=tenant_a.company, email="HOST@a.example", language="zh-hant")
    mail.outbox.clear()
    post(door_a, [event("v1", door_a.entrance, visitor)], django_capture_on_commit_callbacks)
    [message] = mail.outbox
    assert "訪客" in message.subject and "抵達" in message.body


def test_outside_the_window_no_host_or_turned_off_sends_nothing(
    tenant_a, door_a, visit, django_capture_on_commit_callbacks
):
    host, visitor = visit
    late = SubjectFactory(
        company=tenant_a.company,
        subject_type="visitor",
        job_number="V2",
        host=host,
        visit_start=timezone.now() - timedelta(days=2),
        visit_end=timezone.now() - timedelta(days=1),
    )
    alone = SubjectFactory(company=tenant_a.company, subject_type="visitor", job_number="V3")
    employee = SubjectFactory(company=tenant_a.company, job_number="E7")
    mail.outbox.clear()
    items = [
        event("a", door_a.entrance, late),
        event("b", door_a.entrance, alone),
        event("c", door_a.entrance, employee),
    ]
    post(door_a, items, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    HostSettings.objects.create(company=tenant_a.company, host=host, arrival_emails=False)
    post(door_a, [event("d", door_a.entrance, visitor)], django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_the_host_turns_emails_off_and_picks_a_language_through_the_link(client, tenant_a, visit):
    host, _visitor = visit
    url = f"/host-settings/{host_settings_token(host)}/"
    page = client.get(url)
    assert page.status_code == 200 and "陳經理" in page.content.decode()
    answer = client.post(url, {"language": "zh-hant"})  # the box left unticked: off
    assert answer.status_code == 200
    saved = HostSettings.objects.for_company(tenant_a.company).get(host=host)
    assert (saved.arrival_emails, saved.language) == (False, "zh-hant")
    assert "已儲存" in answer.content.decode()
    assert client.get(url[:-5] + "xxxx/").status_code == 404


def test_one_companys_visit_never_mails_anothers_host(
    tenant_a, tenant_b, door_a, door_b, visit, django_capture_on_commit_callbacks
):
    _host, visitor = visit
    mail.outbox.clear()
    # Company B's box names company A's visitor: a stranger there, no e-mail.
    post(door_b, [event("x", door_b.entrance, visitor)], django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert not VisitorArrival.objects.for_company(tenant_b.company).exists()


def test_reception_checking_in_shares_the_once_per_visit_email_with_the_doors(
    tenant_a, tenant_b, door_a, visit, django_capture_on_commit_callbacks
):
    from zoneinfo import ZoneInfo

    from integrations.arrivals import host_tell_checked_in

    host, visitor = visit
    UserFactory(company=tenant_a.company, email="host@a.example", language="zh-hant")
    # The visit's own window, written in another zone than the doors' copy: the same visit.
    taipei = ZoneInfo("Asia/Taipei")
    window = (visitor.visit_start.astimezone(taipei), visitor.visit_end.astimezone(taipei))
    at = timezone.now()
    mail.outbox.clear()

    told = {"company": tenant_a.company, "visitor": visitor, "host": host, "window": window, "at": at}
    told["purpose"] = "Interview"
    assert host_tell_checked_in(**told) == 1
    assert host_tell_checked_in(**told) == 0
    # Another company's host is never told of this company's visitor.
    their_host = SubjectFactory(company=tenant_b.company, email="host@b.example")
    assert host_tell_checked_in(**{**told, "host": their_host}) == 0
    post(door_a, [event("v1", door_a.entrance, visitor)], django_capture_on_commit_callbacks)

    [message] = mail.outbox
    local = timezone.localtime(at, tenant_a.company.zone).strftime("%Y-%m-%d %H:%M")
    assert message.to == ["host@a.example"] and "抵達" in message.body
    assert f"{local}（Asia/Taipei）於櫃檯報到" in message.body and "Interview" in message.body
    assert VisitorArrival.objects.for_company(tenant_a.company).get().event is None
