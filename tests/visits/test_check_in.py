"""Reception checks a visitor in by hand (one who declined the face option, or whom no door
recognised): the visit is arrived now, once, by reception (audited, `arrived_via`
"reception"); the host gets one e-mail and the webhooks one `visit.arrived`, shared with the
doors' (a door after the desk, or the desk after a door, adds nothing); refused for a
cancelled visit, one whose day has not come or that has ended, a viewer and another company."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone
from websockets.sync.client import connect

from accounts.models import AuditLog
from events.models import Event, EventKind
from integrations import services as webhook_services
from integrations.models import VisitorArrival
from kangaroo.errors import KangarooError
from tests.conftest import token_pair_for
from tests.events.conftest import event
from tests.events.test_live import as_admin, receive, ws_url
from tests.visits.helpers import post, run_at_commit, verified, visiting
from visits import services
from visits.models import ArrivedVia, Visit
from visits.selectors import company_day_bounds, company_today

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("jobs_and_webhooks_inline")]


def check_in(tenant, visit, actor=None):
    return run_at_commit(services.visit_check_in, company=tenant.company, actor=actor or tenant.admin, visit=visit)


def code_of(call) -> str:
    with pytest.raises(KangarooError) as raised:
        call()
    return raised.value.code


def test_reception_checks_a_declined_visitor_in_once_audited_with_one_email_and_one_webhook(tenants, receiver):
    a, _b = tenants
    _endpoint, secret = webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.arrived"]
    )
    visit = visiting(a)
    services.visit_face_decline(visit=visit)
    before = timezone.now()

    assert check_in(a, visit) is True
    assert check_in(a, visit, actor=a.owner) is False  # a second click: nothing new

    visit.refresh_from_db()
    assert before <= visit.arrived_at <= timezone.now() and visit.arrived_via == ArrivedVia.RECEPTION
    [entry] = AuditLog.objects.for_company(a.company).filter(action="visit.check_in")
    assert (entry.actor, entry.object_id) == (a.admin, str(visit.pk))
    [message] = mail.outbox
    local = timezone.localtime(visit.arrived_at, a.company.zone).strftime("%Y-%m-%d %H:%M")
    assert message.to == ["host@a.example"] and "Mei Chen" in message.subject
    assert f"checked in at reception at {local} (Asia/Taipei)" in message.body
    assert "Contract review" in message.body
    [payload] = [verified(secret, request) for request in receiver.requests]
    assert payload["type"] == "visit.arrived"
    data = payload["data"]
    assert (data["id"], data["state"], data["arrived_via"]) == (visit.pk, "arrived", "reception")
    assert data["arrived_at"].endswith("+08:00")


def test_a_door_after_the_desk_neither_arrives_nor_tells_anyone_again(tenants, door_a, receiver):
    a, _b = tenants
    webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.arrived"]
    )
    visit = visiting(a)
    check_in(a, visit)
    visit.refresh_from_db()
    checked_in_at = visit.arrived_at

    post(door_a, [event("in", door_a.entrance, visit.visitor)])

    visit.refresh_from_db()
    assert (visit.arrived_at, visit.arrived_via) == (checked_in_at, ArrivedVia.RECEPTION)
    assert len(mail.outbox) == 1 and len(receiver.requests) == 1
    assert VisitorArrival.objects.for_company(a.company).count() == 1


def test_the_desk_after_a_door_neither_arrives_nor_tells_anyone_again(tenants, door_a, receiver):
    a, _b = tenants
    _endpoint, secret = webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.arrived"]
    )
    visit = visiting(a)
    seen = timezone.now() - timedelta(minutes=3)
    post(door_a, [event("in", door_a.entrance, visit.visitor, when=seen)])

    assert check_in(a, visit) is False

    visit.refresh_from_db()
    assert (visit.arrived_at, visit.arrived_via) == (seen, ArrivedVia.DOOR)
    [message] = mail.outbox
    assert "seen at" in message.body
    assert [verified(secret, r)["data"]["arrived_via"] for r in receiver.requests] == ["door"]
    assert not AuditLog.objects.for_company(a.company).filter(action="visit.check_in").exists()


def test_a_visitor_early_at_the_desk_on_the_visits_day_is_checked_in(tenants):
    a, _b = tenants
    _start, tomorrow = company_day_bounds(a.company, company_today(a.company))
    later_today = timezone.now() + (tomorrow - timezone.now()) / 2

    visit = visiting(a, starts_at=later_today)

    assert check_in(a, visit) is True
    visit.refresh_from_db()
    assert visit.arrived_at < visit.starts_at and len(mail.outbox) == 1


def test_check_in_is_refused_with_its_code_and_writes_nothing(tenants):
    a, b = tenants
    cancelled = visiting(a, visitor_email="c@example.org")
    services.visit_cancel(company=a.company, actor=a.admin, visit=cancelled)
    _start, tomorrow = company_day_bounds(a.company, company_today(a.company))
    not_yet = visiting(a, visitor_email="n@example.org", starts_at=tomorrow + timedelta(hours=9))
    ended = visiting(a, visitor_email="e@example.org")
    Visit.objects.for_company(a.company).filter(pk=ended.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    ended.refresh_from_db()
    open_visit = visiting(a, visitor_email="o@example.org")

    assert code_of(lambda: check_in(a, cancelled)) == "visit_cancelled"
    assert code_of(lambda: check_in(a, not_yet)) == "visit_not_started"
    assert code_of(lambda: check_in(a, ended)) == "visit_ended"
    assert code_of(lambda: check_in(a, open_visit, actor=a.viewer)) == "permission_denied"
    assert code_of(lambda: check_in(a, open_visit, actor=b.admin)) == "permission_denied"

    assert not Visit.objects.filter(arrived_at__isnull=False).exists()  # tenant: none in either company
    assert mail.outbox == [] and not AuditLog.objects.filter(action="visit.check_in").exists()


def test_one_companys_check_in_touches_nothing_of_anothers(tenants):
    a, b = tenants
    theirs = visiting(b, host_email="host@b.example")

    # Company A's admin naming B's visit through A's company finds nothing to check in.
    assert code_of(lambda: check_in(a, theirs)) == "not_found"

    theirs.refresh_from_db()
    assert theirs.arrived_at is None and mail.outbox == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_door_and_the_desk_at_the_same_moment_arrive_once(tenants, door_a, receiver):
    from tests.test_concurrency import run_together

    a, _b = tenants
    _endpoint, secret = webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.arrived"]
    )
    visit = visiting(a)

    def door():
        answer = door_a.box_client().post(
            "/api/v1/device/events", {"events": [event("in", door_a.entrance, visit.visitor)]}, format="json"
        )
        return answer.status_code

    def desk():
        return services.visit_check_in(company=a.company, actor=a.admin, visit=visit)

    with override_settings(JOBS_INLINE=True):
        status, by_hand = run_together(door, desk)

    assert status == 200
    visit.refresh_from_db()
    assert visit.arrived_via == (ArrivedVia.RECEPTION if by_hand else ArrivedVia.DOOR)
    assert Visit.objects.for_company(a.company).filter(arrived_at__isnull=False).count() == 1
    assert [verified(secret, r)["type"] for r in receiver.requests] == ["visit.arrived"]
    assert len(mail.outbox) == 1


# --- Reception's pages ---------------------------------------------------------------------------


def test_expected_today_checks_a_visitor_in_and_shows_the_time_in_the_companys_zone(tenants, client):
    a, b = tenants
    declined = visiting(a)
    services.visit_face_decline(visit=declined)
    theirs = visiting(b, host_email="host@b.example")
    client.force_login(a.admin)
    page = client.get("/admin/visits/visit/today/").content.decode()
    assert f"/admin/visits/visit/{declined.pk}/check-in/" in page and "No photo — reception checks in" in page

    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        answer = client.post(f"/admin/visits/visit/{declined.pk}/check-in/")

    assert answer.status_code == 302 and answer["Location"] == "/admin/visits/visit/today/"
    declined.refresh_from_db()
    hhmm = timezone.localtime(declined.arrived_at, a.company.zone).strftime("%H:%M")
    page = client.get("/admin/visits/visit/today/").content.decode()
    assert f"Checked in at {hhmm}" in page and f"{declined.pk}/check-in/" not in page
    assert f"Checked in at {hhmm}" in client.get("/dashboard/expected-today/").content.decode()
    assert len(mail.outbox) == 1
    # Another company's visit answers 404 and stays as it was; a GET changes nothing.
    assert client.post(f"/admin/visits/visit/{theirs.pk}/check-in/").status_code == 404
    assert client.get(f"/admin/visits/visit/{declined.pk}/check-in/").status_code == 405
    theirs.refresh_from_db()
    assert theirs.arrived_at is None


def test_expected_today_says_why_a_check_in_was_refused(tenants, client):
    a, _b = tenants
    visit = visiting(a)
    Visit.objects.for_company(a.company).filter(pk=visit.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    client.force_login(a.admin)

    page = client.post(f"/admin/visits/visit/{visit.pk}/check-in/", follow=True).content.decode()

    assert "Mei Chen: This visit has ended." in page
    visit.refresh_from_db()
    assert visit.arrived_at is None


def test_a_viewer_sees_no_check_in_button_and_may_not_check_in(tenants, client):
    a, _b = tenants
    visit = visiting(a)
    client.force_login(a.viewer)
    assert "/check-in/" not in client.get("/admin/visits/visit/today/").content.decode()
    assert client.post(f"/admin/visits/visit/{visit.pk}/check-in/").status_code == 403
    visit.refresh_from_db()
    assert visit.arrived_at is None


def test_the_list_action_checks_in_and_says_why_it_cannot(tenants, client):
    a, _b = tenants
    here = visiting(a)
    tomorrow = company_day_bounds(a.company, company_today(a.company))[1] + timedelta(hours=9)
    later = visiting(a, visitor_email="later@example.org", starts_at=tomorrow)
    cancelled = visiting(a, visitor_email="c@example.org")
    services.visit_cancel(company=a.company, actor=a.admin, visit=cancelled)
    client.force_login(a.admin)

    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        page = client.post(
            "/admin/visits/visit/",
            {"action": "check_in", "_selected_action": [here.pk, later.pk, cancelled.pk]},
            follow=True,
        )

    html = page.content.decode()
    assert "1 visitor checked in." in html
    assert "This visit has not started yet." in html and "This visit is cancelled." in html
    assert [v.arrived_at is not None for v in (here, later, cancelled) if not v.refresh_from_db()] == [
        True, False, False,
    ]  # fmt: skip
    assert len(mail.outbox) == 1
    # Checked in already: nothing is counted as done again, and no second e-mail.
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        again = client.post("/admin/visits/visit/", {"action": "check_in", "_selected_action": [here.pk]}, follow=True)
    assert "checked in." not in again.content.decode()
    assert len(mail.outbox) == 1


def test_the_dashboard_and_the_welcome_tv_greet_a_visitor_checked_in_at_the_desk(asgi_server, client, tenant_a, door_a):
    visit = visiting(tenant_a)
    services.visit_face_decline(visit=visit)  # no door will ever recognise them
    tv = connect(ws_url(asgi_server), additional_headers={"Origin": asgi_server}, open_timeout=10)
    with tv, as_admin(client, asgi_server, tenant_a.admin) as dashboard:
        tv.send(json.dumps({"type": "auth", "key": door_a.tv_key}))
        receive(tv, "hello")
        receive(dashboard, "hello")

        answer = urllib.request.Request(
            f"{asgi_server}/api/v1/visits/{visit.pk}/check-in",
            headers={"Authorization": f"Bearer {token_pair_for(tenant_a.admin)['access']}"},
            method="POST",
        )
        with urllib.request.urlopen(answer, timeout=10) as response:  # only the local test server
            assert response.status == 200

        for socket in (tv, dashboard):
            [greeted] = receive(socket, "events")["events"]
            assert (greeted["kind"], greeted["subject"]["name"], greeted["subject"]["type"]) == (
                "checked_in", "Mei Chen", "visitor",
            )  # fmt: skip
            assert greeted["screen"] == door_a.entrance.pk  # the TV's entrance: where the desk stands
    stored = Event.objects.for_company(tenant_a.company).get(pk=greeted["id"])
    assert (stored.subject_id, stored.device_kind, stored.confidence) == (visit.visitor_id, "", None)
    # Not a recognition: no attendance, no second arrival, no `event.recognized` webhook.
    assert not Event.objects.for_company(tenant_a.company).filter(kind=EventKind.RECOGNIZED).exists()
