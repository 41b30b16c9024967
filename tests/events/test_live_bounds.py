"""What a live socket holds on the server stays bounded: one that does not open leaves every
group it joined, one whose page falls too far behind is closed and resumes, and a resume
cannot make the ticks re-read more than a bounded range."""

from __future__ import annotations

import asyncio
import json

from django.db import OperationalError

from events import consumers
from events import hub as hubs
from events.consumers import EventsConsumer
from events.live import company_group
from kangaroo.consumers import CLOSE_REVOKED
from tests.events.conftest import event
from tests.events.live_client import as_admin, as_tv, closed_with, post_events, receive
from tests.events.test_live_hub import ids, the_hub, wait_until


def test_a_socket_whose_hello_fails_leaves_its_groups_and_closes_with_1011(asgi_server, client, tenant_a, monkeypatch):
    async def failing_hello(self):
        raise OperationalError("the database went away")

    monkeypatch.setattr(EventsConsumer, "_hello", failing_hello)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        assert closed_with(socket) == 1011
    wait_until(lambda: company_group(tenant_a.company.pk) not in the_hub().groups)


def test_a_socket_that_fails_half_way_through_joining_its_groups_leaves_those_it_joined(
    asgi_server, tenant_a, door_a, monkeypatch
):
    from devices import services as device_services

    device_services.tvbox_update(
        company=tenant_a.company, actor=tenant_a.admin, tvbox=door_a.tv, screens=[door_a.entrance, door_a.exit]
    )
    join = hubs.LiveHub.join
    joined = []

    async def second_join_fails(self, name, member):
        if joined:
            raise RuntimeError("the channel layer failed")
        await join(self, name, member)
        joined.append(name)

    monkeypatch.setattr(hubs.LiveHub, "join", second_join_fails)
    with as_tv(asgi_server, door_a.tv_key) as socket:
        assert closed_with(socket) == 1011
    assert len(joined) == 1
    wait_until(lambda: not the_hub().groups)


def test_a_socket_closed_before_its_hello_leaves_its_groups_without_waiting_for_its_client(
    asgi_server, client, tenant_a, monkeypatch
):
    # Revoked between the handshake and the joining: the socket closes with 4410. Its groups
    # go at once, not when (or if) the client's disconnect comes back.
    async def revoked(self):
        return False

    async def no_disconnect(self, code):
        pass

    monkeypatch.setattr(EventsConsumer, "principal_still_valid", revoked)
    monkeypatch.setattr(EventsConsumer, "disconnect", no_disconnect)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        assert closed_with(socket) == CLOSE_REVOKED
    wait_until(lambda: company_group(tenant_a.company.pk) not in the_hub().groups)


def test_a_page_that_stops_reading_is_closed_with_1011_and_resumes_what_it_missed(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    settings.LIVE_INBOX_MESSAGES = 3
    send = EventsConsumer.send
    stuck = []

    async def stuck_after_hello(self, text_data=None, bytes_data=None, close=False):
        # The first socket's client reads its hello and nothing more: its sends never end.
        # It is marked by its hello, not by its first send after it: its inbox may fill and
        # close it before it sends anything else.
        if text_data.startswith('{"type": "hello"') and not stuck:
            stuck.append(self)
        elif self in stuck:
            await asyncio.Event().wait()
        await send(self, text_data=text_data, bytes_data=bytes_data, close=close)

    monkeypatch.setattr(EventsConsumer, "send", stuck_after_hello)
    posted = []
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        complete = receive(socket, "hello")["complete"]
        group = company_group(tenant_a.company.pk)
        hub = the_hub()
        for n in range(10):  # a message each, more than the inbox holds
            posted += post_events(asgi_server, door_a.box_key, [event(f"unread{n}", door_a.entrance)])["results"]
        assert closed_with(socket) == 1011
        wait_until(lambda: group not in hub.groups)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        socket.send(json.dumps({"type": "resume", "after": complete}))
        assert ids(receive(socket, "events")) == [r["id"] for r in posted]


def test_a_resume_lowers_the_ticks_reads_by_a_bounded_range_once_per_socket(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    # A client asking to resume after 0 gets what it missed once; the ticks that follow read
    # from no lower than RESUME_LOOKBACK_IDS below where they read from, and a second resume
    # reads nothing again.
    settings.LIVE_TICK_SECONDS = 0.2
    monkeypatch.setattr(consumers, "RESUME_LOOKBACK_IDS", 2)
    posted = post_events(asgi_server, door_a.box_key, [event(f"old{n}", door_a.entrance) for n in range(6)])
    created = [r["id"] for r in posted["results"]]
    replays, ticks = [], []
    events_after = EventsConsumer.__dict__["_events_after"]
    unsent_after = EventsConsumer.__dict__["_unsent_after"]
    sent_all = EventsConsumer.__dict__["_sent_all"]

    async def spied_events_after(self, after):
        replays.append(after)
        return await events_after.__get__(self, EventsConsumer)(after)

    async def spied_unsent_after(self, after, upto=None):
        ticks.append(after)
        return await unsent_after.__get__(self, EventsConsumer)(after, upto)

    async def spied_sent_all(self, after, upto, sent):
        ticks.append(after)
        return await sent_all.__get__(self, EventsConsumer)(after, upto, sent)

    monkeypatch.setattr(EventsConsumer, "_events_after", spied_events_after)
    monkeypatch.setattr(EventsConsumer, "_unsent_after", spied_unsent_after)
    monkeypatch.setattr(EventsConsumer, "_sent_all", spied_sent_all)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        newest = receive(socket, "hello")["complete"]
        assert newest == created[-1]
        socket.send(json.dumps({"type": "resume", "after": 0}))
        assert ids(receive(socket, "events")) == created
        socket.send(json.dumps({"type": "resume", "after": 0}))
        socket.send(json.dumps({"type": "ping"}))
        receive(socket, "pong")  # the second resume was handled before it
        for _ in range(5):
            assert receive(socket, "tick")["complete"] >= newest - 2
    assert replays == [0]
    assert ticks and min(ticks) >= newest - 2
