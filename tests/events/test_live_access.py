"""A live socket lives only as long as what opened it: a session that logs out, a user who
is deactivated or changes password, a TV box key that is rotated or revoked close their
sockets at once (4410), and a periodic re-check catches what a lost message would miss.
Also: the Origin must be exactly ours, and a frame that is not JSON closes with 4400.

Revocations go through the real server (HTTP), as an admin's click would."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils import timezone
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from accounts.models import User
from devices.models import TVBox
from tests.events.conftest import event
from tests.events.live_client import (
    admin_logout,
    admin_post,
    as_admin,
    as_tv,
    call,
    closed_with,
    dashboard,
    post_events,
    receive,
    session_of,
)

# --- at once -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["revoke-key", "rotate-key"])
def test_a_tv_box_whose_key_is_revoked_or_rotated_is_closed_at_once_and_hears_nothing(
    asgi_server, tenant_a, door_a, action
):
    with as_tv(asgi_server, door_a.tv_key) as socket:
        receive(socket, "hello")
        assert call(asgi_server, "POST", f"/api/v1/tv-boxes/{door_a.tv.pk}/{action}", tenant_a.admin) == 200
        assert closed_with(socket) == 4410
    post_events(asgi_server, door_a.box_key, [event("after-revoke", door_a.entrance)])
    with as_tv(asgi_server, door_a.tv_key) as socket:
        assert closed_with(socket) == 4401  # the old key opens nothing any more


def test_revoking_one_tv_box_leaves_the_others_listening(asgi_server, tenant_a, door_a):
    from devices import services

    _, other_key = services.tvbox_create(
        company=tenant_a.company, actor=tenant_a.admin, name="Lobby tv", screens=[door_a.entrance]
    )
    with as_tv(asgi_server, door_a.tv_key) as revoked, as_tv(asgi_server, other_key) as other:
        receive(revoked, "hello")
        receive(other, "hello")
        assert call(asgi_server, "POST", f"/api/v1/tv-boxes/{door_a.tv.pk}/revoke-key", tenant_a.admin) == 200
        assert closed_with(revoked) == 4410
        post_events(asgi_server, door_a.box_key, [event("still", door_a.entrance)])
        assert len(receive(other, "events")["events"]) == 1


def test_a_deleted_tv_box_is_closed(asgi_server, tenant_a, door_a):
    with as_tv(asgi_server, door_a.tv_key) as socket:
        receive(socket, "hello")
        assert call(asgi_server, "DELETE", f"/api/v1/tv-boxes/{door_a.tv.pk}", tenant_a.admin) == 204
        assert closed_with(socket) == 4410


def test_a_deactivated_user_loses_every_dashboard_at_once(asgi_server, tenant_a, door_a):
    first, second = Client(), Client()  # two browsers of the same admin
    with as_admin(first, asgi_server, tenant_a.admin) as one, as_admin(second, asgi_server, tenant_a.admin) as two:
        receive(one, "hello")
        receive(two, "hello")
        body = {"is_active": False}
        assert call(asgi_server, "PATCH", f"/api/v1/users/{tenant_a.admin.pk}", tenant_a.owner, body) == 200
        assert closed_with(one) == 4410
        assert closed_with(two) == 4410


def test_a_password_change_closes_every_dashboard_of_that_user_only(asgi_server, tenant_a, door_a):
    tenant_a.admin.set_password("old-Secret-2026")
    tenant_a.admin.save()
    with (
        as_admin(Client(), asgi_server, tenant_a.admin) as mine,
        as_admin(Client(), asgi_server, tenant_a.owner) as other,
    ):
        receive(mine, "hello")
        receive(other, "hello")
        body = {"old_password": "old-Secret-2026", "new_password": "new-Secret-2026!x"}
        assert call(asgi_server, "POST", "/api/v1/auth/password", tenant_a.admin, body) in (200, 204)
        assert closed_with(mine) == 4410
        post_events(asgi_server, door_a.box_key, [event("owner-sees", door_a.entrance)])
        assert len(receive(other, "events")["events"]) == 1


def test_a_password_set_in_the_admin_closes_that_users_dashboards_at_once(asgi_server, tenant_a):
    owner = Client()
    owner.force_login(tenant_a.owner)
    with as_admin(Client(), asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        form = {"password1": "Admin-set-2026!x", "password2": "Admin-set-2026!x", "usable_password": "true"}
        path = f"/admin/accounts/user/{tenant_a.admin.pk}/password/"
        assert admin_post(asgi_server, session_of(owner), path, form) == 200
        tenant_a.admin.refresh_from_db()
        assert tenant_a.admin.check_password("Admin-set-2026!x")
        assert closed_with(socket) == 4410


def test_logging_out_closes_only_that_sessions_dashboards(asgi_server, tenant_a, door_a):
    leaving, staying = Client(), Client()
    with as_admin(leaving, asgi_server, tenant_a.admin) as gone, as_admin(staying, asgi_server, tenant_a.admin) as kept:
        receive(gone, "hello")
        receive(kept, "hello")
        assert admin_logout(asgi_server, session_of(leaving)) == 200
        assert closed_with(gone) == 4410
        post_events(asgi_server, door_a.box_key, [event("kept", door_a.entrance)])
        assert len(receive(kept, "events")["events"]) == 1


@pytest.mark.django_db
def test_a_logged_out_session_is_gone_before_its_sockets_are_told(tenant_a, monkeypatch):
    """A closed dashboard reloads at once: its session must already be gone from the store
    (Django flushes it only after the logout signal), or the reload would stay signed in."""
    from django.contrib.sessions.models import Session

    browser = Client()
    browser.force_login(tenant_a.admin)
    key = browser.cookies["sessionid"].value
    still_stored = []
    monkeypatch.setattr(
        "events.revocation.revoke", lambda group: still_stored.append(Session.objects.filter(pk=key).exists())
    )
    assert browser.post("/admin/logout/").status_code == 200
    assert still_stored == [False]


def test_a_logged_out_session_cannot_open_a_socket_again(asgi_server, tenant_a, monkeypatch):
    monkeypatch.setattr("events.consumers.AUTH_TIMEOUT", 0.3)  # it is anonymous now: a key or nothing
    browser = Client()
    browser.force_login(tenant_a.admin)
    cookie = session_of(browser)
    assert admin_logout(asgi_server, cookie) == 200
    with dashboard(asgi_server, cookie) as socket:
        assert closed_with(socket) == 4401


# --- the periodic re-check, for changes that sent no message ---------------------------------


@pytest.fixture
def fast_recheck(settings):
    settings.LIVE_TICK_SECONDS = 0.2
    settings.LIVE_RECHECK_SECONDS = 0.2


def test_a_tv_key_revoked_behind_the_services_back_is_caught_by_the_recheck(
    asgi_server, tenant_a, door_a, fast_recheck
):
    with as_tv(asgi_server, door_a.tv_key) as socket:
        receive(socket, "hello")
        TVBox.objects.filter(pk=door_a.tv.pk).update(key_revoked_at=timezone.now())  # tenant: the test's own box
        assert closed_with(socket) == 4410


def test_a_password_changed_behind_the_apps_back_is_caught_by_the_recheck(asgi_server, tenant_a, fast_recheck):
    with as_admin(Client(), asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        # A bulk update sends no signal: only the re-check can notice.
        User.objects.filter(pk=tenant_a.admin.pk).update(password=make_password("changed-2026"))  # tenant: own user
        assert closed_with(socket) == 4410


def test_a_tv_box_given_other_screens_hears_its_new_screens_only(asgi_server, tenant_a, door_a, fast_recheck):
    with as_tv(asgi_server, door_a.tv_key) as socket:
        receive(socket, "hello")
        door_a.tv.screens.set([door_a.exit])
        receive(socket, "tick")
        receive(socket, "tick")  # a re-check has run since
        post_events(asgi_server, door_a.box_key, [event("in", door_a.entrance), event("out", door_a.exit)])
        message = receive(socket, "events")
        assert [e["screen"] for e in message["events"]] == [door_a.exit.pk]


# --- origin and frames -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin_of",
    [
        lambda server: server.replace(server.rsplit(":", 1)[1], "9999"),  # another port
        lambda server: server.replace("http://", "https://"),  # another scheme
        lambda server: server.replace("127.0.0.1", "localhost"),  # another host
        lambda server: "null",
        lambda server: server + "/path",
    ],
    ids=["port", "scheme", "host", "null", "not-an-origin"],
)
def test_a_browser_origin_must_match_scheme_host_and_port(asgi_server, tenant_a, origin_of):
    with pytest.raises(InvalidStatus) as refused:
        dashboard(asgi_server, session_of(_signed_in(tenant_a.admin)), origin=origin_of(asgi_server))
    assert refused.value.response.status_code == 403


def test_a_trusted_origin_is_accepted(asgi_server, tenant_a, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://kiosk.example.com"]
    with dashboard(asgi_server, session_of(_signed_in(tenant_a.admin)), origin="https://kiosk.example.com") as socket:
        assert receive(socket, "hello")["company"] == tenant_a.company.name


def _signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.mark.parametrize("frame", ["not json", "[1, 2]", b"\x00\x01binary"])
def test_a_frame_that_is_not_a_json_object_closes_with_4400(asgi_server, tenant_a, frame):
    with as_admin(Client(), asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        socket.send(frame)
        assert closed_with(socket) == 4400


def test_the_ping_socket_also_closes_bad_frames_with_4400(asgi_server, tenant_a):
    headers = {"Cookie": session_of(_signed_in(tenant_a.admin)), "Origin": asgi_server}
    with connect(asgi_server.replace("http", "ws") + "/ws/ping/", additional_headers=headers) as socket:
        socket.send("{")
        assert closed_with(socket) == 4400
