"""A visit is marked left when an exit camera recognises its visitor after the arrival, or
when reception marks it by hand; `visit.left` goes to the webhooks once; Expected today and
the dashboard panel show "Left at hh:mm" in the company's time zone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from devices import services as device_services
from events.models import Event, EventKind
from integrations import services as webhook_services
from kangaroo.errors import KangarooError
from tests.conftest import api_client_for
from tests.events.conftest import event
from tests.visits.helpers import post, verified, visiting
from visits import services
from visits.models import Visit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("jobs_and_webhooks_inline")]


def test_the_first_exit_after_the_arrival_marks_the_visit_left_once(tenants, door_a):
    a, _b = tenants
    visit = visiting(a)
    now = timezone.now()
    arrived, out, again = now - timedelta(minutes=20), now - timedelta(minutes=5), now - timedelta(minutes=1)

    post(door_a, [event("in", door_a.entrance, visit.visitor, when=arrived)])
    post(door_a, [event("out", door_a.exit, visit.visitor, when=out)])
    post(door_a, [event("out", door_a.exit, visit.visitor, when=out)])  # the same event, retried
    post(door_a, [event("out-again", door_a.exit, visit.visitor, when=again)])

    visit.refresh_from_db()
    assert (visit.arrived_at, visit.left_at) == (arrived, out)
    assert services.visit_mark_left(company=a.company, actor=a.admin, visit=visit) is False  # already left


def test_an_exit_before_any_arrival_or_at_a_two_way_camera_marks_nothing(tenants, door_a):
    a, _b = tenants
    visit = visiting(a)
    both, _ = device_services.screen_create(
        company=a.company, actor=a.admin, name="Lobby", camera_url="rtsp://cam:secret@10.0.0.7/both",
        direction="both", box=door_a.box,
    )  # fmt: skip
    now = timezone.now()

    # Seen first at the exit: that is the arrival, not yet a departure.
    post(door_a, [event("first", door_a.exit, visit.visitor, when=now - timedelta(minutes=10))])
    visit.refresh_from_db()
    assert visit.arrived_at == now - timedelta(minutes=10) and visit.left_at is None
    # A camera that sees both ways says nothing of leaving.
    post(door_a, [event("lobby", both, visit.visitor, when=now - timedelta(minutes=5))])
    visit.refresh_from_db()
    assert visit.left_at is None


def test_an_entrance_and_an_exit_in_one_batch_mark_both(tenants, door_a):
    a, _b = tenants
    visit = visiting(a)
    inside, out = timezone.now() - timedelta(minutes=10), timezone.now() - timedelta(minutes=1)

    post(
        door_a,
        [event("out", door_a.exit, visit.visitor, when=out), event("in", door_a.entrance, visit.visitor, when=inside)],
    )

    visit.refresh_from_db()
    assert (visit.arrived_at, visit.left_at) == (inside, out)


def test_a_visitor_who_stays_past_the_window_is_still_seen_leaving(tenants, door_a):
    a, _b = tenants
    visit = visiting(a)
    post(door_a, [event("in", door_a.entrance, visit.visitor, when=timezone.now() - timedelta(minutes=20))])
    ended = timezone.now() - timedelta(minutes=5)
    Visit.objects.for_company(a.company).filter(pk=visit.pk).update(ends_at=ended)
    type(visit.visitor).objects.for_company(a.company).filter(pk=visit.visitor_id).update(visit_end=ended)

    [result] = post(door_a, [event("late-out", door_a.exit, visit.visitor)])

    assert Event.objects.for_company(a.company).get(pk=result["id"]).kind == EventKind.VISITOR_OUTSIDE_WINDOW
    visit.refresh_from_db()
    assert ended < visit.left_at <= timezone.now()


def test_a_cancelled_visit_and_another_companys_visitor_are_never_marked_left(tenants, door_a, door_b):
    a, b = tenants
    cancelled = visiting(a)
    post(door_a, [event("in", door_a.entrance, cancelled.visitor, when=timezone.now() - timedelta(minutes=9))])
    services.visit_cancel(company=a.company, actor=a.admin, visit=cancelled)
    theirs = visiting(b)
    post(door_b, [event("b-in", door_b.entrance, theirs.visitor, when=timezone.now() - timedelta(minutes=9))])

    post(door_a, [event("out", door_a.exit, cancelled.visitor), event("b-out", door_a.exit, theirs.visitor)])

    assert Visit.objects.filter(left_at__isnull=False).count() == 0  # tenant: both companies, none marked


def test_webhooks_hear_the_departure_once(tenants, door_a, receiver):
    a, _b = tenants
    _endpoint, secret = webhook_services.webhook_endpoint_create(
        company=a.company, actor=a.admin, url=receiver.url, event_types=["visit.left"]
    )
    visit = visiting(a)
    post(door_a, [event("in", door_a.entrance, visit.visitor, when=timezone.now() - timedelta(minutes=9))])
    post(door_a, [event("out", door_a.exit, visit.visitor)])
    services.visit_mark_left(company=a.company, actor=a.admin, visit=visit)  # reception, too late: nothing new

    [payload] = [verified(secret, request) for request in receiver.requests]
    assert payload["type"] == "visit.left"
    assert (payload["data"]["id"], payload["data"]["state"]) == (visit.pk, "left")
    assert payload["data"]["left_at"].endswith("+08:00")  # the company's zone


def test_reception_marks_a_visitor_left_by_hand_audited_and_shown_in_the_companys_time(tenants, client):
    a, b = tenants
    declined = visiting(a)  # never recognised: checked in at the desk
    theirs = visiting(b)
    client.force_login(a.admin)
    # Nobody arrived yet: nobody can leave (the page offers no button either).
    assert f"/{declined.pk}/left/" not in client.get("/admin/visits/visit/today/").content.decode()
    with pytest.raises(KangarooError) as refused:
        services.visit_mark_left(company=a.company, actor=a.admin, visit=declined)
    assert refused.value.code == "visit_not_arrived"
    services.visit_check_in(company=a.company, actor=a.admin, visit=declined)

    answer = client.post(f"/admin/visits/visit/{declined.pk}/left/")

    assert answer.status_code == 302 and answer["Location"] == "/admin/visits/visit/today/"
    declined.refresh_from_db()
    assert declined.left_at is not None and declined.arrived_at is not None
    entry = AuditLog.objects.for_company(a.company).get(action="visit.mark_left")
    assert (entry.actor, entry.object_id) == (a.admin, str(declined.pk))
    hhmm = timezone.localtime(declined.left_at, a.company.zone).strftime("%H:%M")
    assert f"Left at {hhmm}" in client.get("/admin/visits/visit/today/").content.decode()
    assert f"Left at {hhmm}" in client.get("/dashboard/expected-today/").content.decode()
    # Another company's visit answers 404 and stays as it was; a GET changes nothing.
    assert client.post(f"/admin/visits/visit/{theirs.pk}/left/").status_code == 404
    assert client.get(f"/admin/visits/visit/{declined.pk}/left/").status_code == 405
    theirs.refresh_from_db()
    assert theirs.left_at is None


def test_the_admin_action_marks_left_and_says_why_it_cannot(tenants, client):
    a, _b = tenants
    here = visiting(a)
    services.visit_check_in(company=a.company, actor=a.admin, visit=here)
    later = visiting(a, minutes_ago=-60, visitor_email="later@example.org")  # starts in an hour: not come yet
    cancelled = visiting(a, visitor_email="c@example.org")
    services.visit_cancel(company=a.company, actor=a.admin, visit=cancelled)
    client.force_login(a.admin)

    page = client.post(
        "/admin/visits/visit/",
        {"action": "mark_left", "_selected_action": [here.pk, later.pk, cancelled.pk]},
        follow=True,
    )

    html = page.content.decode()
    assert "1 visitor marked as left." in html
    assert "This visitor has not arrived yet: check them in first." in html and "This visit is cancelled." in html
    assert [v.left_at is not None for v in (here, later, cancelled) if not v.refresh_from_db()] == [True, False, False]


def test_a_viewer_sees_no_left_button_and_may_not_mark(tenants, client):
    a, _b = tenants
    visit = visiting(a)
    services.visit_check_in(company=a.company, actor=a.admin, visit=visit)
    client.force_login(a.viewer)
    assert "/left/" not in client.get("/admin/visits/visit/today/").content.decode()
    assert client.post(f"/admin/visits/visit/{visit.pk}/left/").status_code == 403
    visit.refresh_from_db()
    assert visit.left_at is None


def test_reception_may_not_mark_a_departure_before_the_arrival(tenants):
    a, _b = tenants
    visit = visiting(a)
    services.visit_check_in(company=a.company, actor=a.admin, visit=visit)
    visit.refresh_from_db()
    # A door whose clock runs ahead recorded the arrival a few minutes from now.
    ahead = timezone.now() + timedelta(minutes=3)
    Visit.objects.for_company(a.company).filter(pk=visit.pk).update(arrived_at=ahead)

    for at in (None, visit.arrived_at - timedelta(minutes=1), ahead):
        with pytest.raises(KangarooError) as refused:
            services.visit_mark_left(company=a.company, actor=a.admin, visit=visit, at=at)
        assert refused.value.code == "visit_left_before_arrival"
        hhmm = timezone.localtime(ahead, a.company.zone).strftime("%Y-%m-%d %H:%M")
        assert refused.value.message == f"The visitor arrived at {hhmm}: the departure must come after it."

    answer = api_client_for(a.admin).post(f"/api/v1/visits/{visit.pk}/mark-left")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "visit_left_before_arrival"
    visit.refresh_from_db()
    assert visit.left_at is None
    assert not AuditLog.objects.for_company(a.company).filter(action="visit.mark_left").exists()
