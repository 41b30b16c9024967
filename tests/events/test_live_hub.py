"""The process's live hub (events.hub): the sockets of one process share one channel-layer
subscription per group, each still hears only its own scope, one leaving does not disturb
the others, and a client that goes away is no error."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from django.test import Client

from events import hub as hubs
from events.consumers import EventsConsumer
from events.live import company_group, screen_group
from tests.events.conftest import event
from tests.events.live_client import as_admin, as_tv, post_events, receive


def the_hub() -> hubs.LiveHub:
    [hub] = [hub for loop, hub in list(hubs._hubs.items()) if loop.is_running()]  # the test server's
    return hub


def events_heard(socket, wait: float = 0.7) -> list[int]:
    """The ids of the events a socket hears within `wait` seconds (ticks aside)."""
    heard = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            break
        if message["type"] == "events":
            heard += ids(message)
    return heard


def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def ids(message: dict) -> list[int]:
    return [e["id"] for e in message["events"]]


def test_dashboards_of_one_process_share_a_subscription_and_keep_their_scopes(
    layer_on_private_redis, asgi_server, client, tenants, door_a, door_b
):
    a, b = tenants
    with (
        as_admin(client, asgi_server, a.admin) as first,
        as_admin(Client(), asgi_server, a.admin) as second,
        as_admin(Client(), asgi_server, a.admin, f"?screen={door_a.exit.pk}") as exit_page,
        as_admin(Client(), asgi_server, b.admin) as theirs,
    ):
        for socket in (first, second, exit_page, theirs):
            receive(socket, "hello")
        hub = the_hub()
        assert len(hub.members_of(company_group(a.company.pk))) == 2
        assert len(hub.members_of(screen_group(door_a.exit.pk))) == 1
        # The channel layer copies A's company messages to one channel of this process, not
        # to one per socket: the hub's.
        [loop_layer] = hub.layer._layers.values()
        assert loop_layer.groups[f"asgi__group__{company_group(a.company.pk)}"] == {
            hub.groups[company_group(a.company.pk)].channel
        }

        posted = post_events(asgi_server, door_a.box_key, [event("in1", door_a.entrance), event("out1", door_a.exit)])
        created = [r["id"] for r in posted["results"]]
        assert ids(receive(first, "events")) == created
        assert ids(receive(second, "events")) == created
        assert ids(receive(exit_page, "events")) == [created[1]]  # its screen's only
        assert events_heard(theirs) == []  # another company's

        # One dashboard leaving does not disturb the other of its group.
        first.close()
        wait_until(lambda: len(hub.members_of(company_group(a.company.pk))) == 1)
        posted = post_events(asgi_server, door_a.box_key, [event("in2", door_a.entrance)])
        assert ids(receive(second, "events")) == [posted["results"][0]["id"]]
        assert events_heard(exit_page) == events_heard(theirs) == []

        # The last one leaving unsubscribes the process from the group.
        second.close()
        wait_until(lambda: company_group(a.company.pk) not in hub.groups)
        wait_until(lambda: f"asgi__group__{company_group(a.company.pk)}" not in loop_layer.groups)
        assert company_group(b.company.pk) in hub.groups


def test_a_tv_box_whose_screens_change_moves_to_the_new_screens_group(asgi_server, tenant_a, door_a, settings):
    from devices import services as device_services

    settings.LIVE_TICK_SECONDS = 0.2
    settings.LIVE_RECHECK_SECONDS = 0.2
    with as_tv(asgi_server, door_a.tv_key) as socket:
        receive(socket, "hello")
        hub = the_hub()
        assert len(hub.members_of(screen_group(door_a.entrance.pk))) == 1
        device_services.tvbox_update(
            company=tenant_a.company, actor=tenant_a.admin, tvbox=door_a.tv, screens=[door_a.exit]
        )
        wait_until(lambda: len(hub.members_of(screen_group(door_a.exit.pk))) == 1)
        assert screen_group(door_a.entrance.pk) not in hub.groups
        posted = post_events(asgi_server, door_a.box_key, [event("in3", door_a.entrance), event("out3", door_a.exit)])
        assert ids(receive(socket, "events")) == [posted["results"][1]["id"]]


def test_one_push_is_decoded_and_stripped_of_faces_once_for_every_socket():
    message = {
        "type": "events.push",
        "ids": [7],
        "frame": json.dumps(
            {"type": "events", "events": [{"id": 7, "snapshot_url": "/live/image/s", "subject": {"photo_url": "/p"}}]}
        ),
    }
    push = hubs.shared(message)
    assert push.faceless_frame is push.faceless_frame  # encoded once
    assert json.loads(push.faceless_frame)["events"] == [
        {"id": 7, "snapshot_url": None, "subject": {"photo_url": None}}
    ]
    assert push.events[0]["snapshot_url"] == "/live/image/s"  # the faces' frame is not changed
    assert hubs.shared({"type": "events.corrected", "events": []}) == {"type": "events.corrected", "events": []}


def test_a_page_that_goes_away_is_no_error(asgi_server, client, tenant_a, settings, monkeypatch, caplog):
    # The client leaves while its socket is busy (a long resume), so its tick's frame, and
    # the resume's, find it gone: uvicorn says so with ClientDisconnected. That is how
    # pages end: nothing above debug.
    settings.LIVE_TICK_SECONDS = 0.2
    started = []

    async def slow_replay(self, after):
        started.append(after)
        await asyncio.sleep(1.0)
        await self.send_json({"type": "events", "events": []})

    monkeypatch.setattr(EventsConsumer, "replay", slow_replay)
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            with as_admin(client, asgi_server, tenant_a.admin) as socket:
                receive(socket, "hello")
                socket.send(json.dumps({"type": "resume", "after": 0}))
                wait_until(lambda: started)
            time.sleep(1.5)  # the ticks and the resume try to send to the gone client
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
    assert started == [0]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [(r.name, r.getMessage()) for r in loud]
    assert any(r.name == "events.consumers" and r.levelno == logging.DEBUG for r in caplog.records)


def test_a_page_hears_hello_first_even_when_events_come_while_it_opens(
    asgi_server, client, tenant_a, door_a, monkeypatch
):
    # The socket joins its groups before it reads its hello from the database: what the
    # groups bring meanwhile waits until the hello is sent.
    hello = EventsConsumer.__dict__["_hello"]  # reads in a thread (database_sync_to_async)
    opening = []

    async def slow_hello(self):
        opening.append(True)
        await asyncio.sleep(1.0)
        return await hello.__get__(self, EventsConsumer)()

    monkeypatch.setattr(EventsConsumer, "_hello", slow_hello)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        wait_until(lambda: opening)
        posted = post_events(asgi_server, door_a.box_key, [event("early", door_a.entrance)])
        first = json.loads(socket.recv(timeout=10))
        assert first["type"] == "hello"
        later = receive(socket, "events")
    created = posted["results"][0]["id"]
    assert created in [e["id"] for e in first["recent"]] + ids(later)
