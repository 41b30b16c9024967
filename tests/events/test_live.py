"""The live stream over a real websocket, against the real ASGI server: who hears what,
and a reconnect that misses nothing and repeats nothing."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.events.conftest import event
from tests.events.live_client import as_admin, as_tv, dashboard, nothing_more, post_events, receive, session_of, ws_url
from tests.factories import SubjectFactory


def test_an_admin_dashboard_hears_its_company_and_nothing_else(asgi_server, client, tenants, door_a, door_b):
    a, b = tenants
    mei = SubjectFactory(company=a.company, name="陳美玲")
    # Two browsers: one browser signing in as someone else ends its previous session.
    with as_admin(client, asgi_server, a.admin) as mine, as_admin(Client(), asgi_server, b.admin) as theirs:
        hello = receive(mine, "hello")
        assert hello["company"] == a.company.name and hello["devices"]["never_seen"] >= 1
        receive(theirs, "hello")
        created = post_events(asgi_server, door_a.box_key, [event("live1", door_a.entrance, mei)])
        message = receive(mine, "events")
        [pushed] = message["events"]
        assert pushed["id"] == created["results"][0]["id"]
        assert (pushed["kind"], pushed["subject"]["name"], pushed["direction"]) == ("recognized", "陳美玲", "in")
        assert nothing_more(theirs)


def test_a_screen_dashboard_hears_only_that_screen(asgi_server, client, tenant_a, door_a):
    with as_admin(client, asgi_server, tenant_a.admin, f"?screen={door_a.exit.pk}") as socket:
        receive(socket, "hello")
        post_events(asgi_server, door_a.box_key, [event("in1", door_a.entrance), event("out1", door_a.exit)])
        message = receive(socket, "events")
        assert [e["screen"] for e in message["events"]] == [door_a.exit.pk]


def test_asking_for_another_companys_screen_is_refused(asgi_server, client, tenants, door_b):
    a, _ = tenants
    with (
        as_admin(client, asgi_server, a.admin, f"?screen={door_b.entrance.pk}") as socket,
        pytest.raises(ConnectionClosed) as closed,
    ):
        socket.recv(timeout=10)
    assert closed.value.rcvd.code == 4403


def test_a_tv_box_hears_only_its_screens(asgi_server, tenant_a, door_a):
    with as_tv(asgi_server, door_a.tv_key) as socket:
        hello = receive(socket, "hello")
        assert hello["screens"] == [door_a.entrance.pk]
        assert hello["tv"]["greetings"]["vip"]
        post_events(asgi_server, door_a.box_key, [event("exit1", door_a.exit), event("in2", door_a.entrance)])
        message = receive(socket, "events")
        assert [e["screen"] for e in message["events"]] == [door_a.entrance.pk]


def test_a_device_talking_without_a_browser_uses_its_key_header(asgi_server, tenant_a, door_a):
    with connect(ws_url(asgi_server), additional_headers={"Authorization": f"Device {door_a.tv_key}"}) as socket:
        assert receive(socket, "hello")["screens"] == [door_a.entrance.pk]


@pytest.mark.parametrize("key_of", ["nonsense", "box"])
def test_a_bad_or_wrong_kind_of_key_is_refused(asgi_server, tenant_a, door_a, key_of):
    key = door_a.box_key if key_of == "box" else "kgr_tvbox_1_abc_def"
    with as_tv(asgi_server, key) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd.code in (4401, 4403)


def test_an_anonymous_listener_who_never_authenticates_is_closed(asgi_server, settings, monkeypatch):
    monkeypatch.setattr("events.consumers.AUTH_TIMEOUT", 0.3)
    with (
        connect(ws_url(asgi_server), additional_headers={"Origin": asgi_server}, open_timeout=10) as socket,
        pytest.raises(ConnectionClosed) as closed,
    ):
        socket.recv(timeout=10)
    assert closed.value.rcvd.code == 4401


def test_a_foreign_origin_cannot_use_the_admin_session(asgi_server, client, tenant_a):
    client.force_login(tenant_a.admin)
    with pytest.raises(InvalidStatus):
        dashboard(asgi_server, session_of(client), origin="https://evil.example.com")


def test_a_reconnecting_dashboard_gets_what_it_missed_in_order_without_duplicates(
    asgi_server, client, tenant_a, door_a
):
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        post_events(asgi_server, door_a.box_key, [event("seen", door_a.entrance)])
        last_seen = receive(socket, "events")["events"][-1]["id"]
    # Offline: three arrivals happen.
    missed = post_events(asgi_server, door_a.box_key, [event(f"missed{n}", door_a.entrance) for n in range(3)])
    missed_ids = [r["id"] for r in missed["results"]]
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        socket.send(json.dumps({"type": "resume", "after": last_seen}))
        replayed = receive(socket, "events")["events"]
        assert [e["id"] for e in replayed] == missed_ids
        # A live event after the replay comes once; asking to resume again repeats nothing.
        post_events(asgi_server, door_a.box_key, [event("after", door_a.entrance)])
        live = receive(socket, "events")["events"]
        assert [e["id"] for e in live] not in ([], missed_ids)
        socket.send(json.dumps({"type": "resume", "after": last_seen}))
        assert nothing_more(socket)


def test_a_page_that_opens_gets_todays_latest_events_with_thumbnails(asgi_server, client, tenant_a, door_a):
    from tests.factories import PhotoFactory

    mei = SubjectFactory(company=tenant_a.company, name="Mei")
    PhotoFactory(company=tenant_a.company, subject=mei)
    created = post_events(asgi_server, door_a.box_key, [event(f"early{n}", door_a.entrance, mei) for n in range(15)])
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        recent = receive(socket, "hello")["recent"]
    assert [e["id"] for e in recent] == [r["id"] for r in created["results"]][-12:]
    assert recent[-1]["subject"]["photo_url"].startswith("/live/image/")


def test_a_busy_page_gets_each_event_once_when_the_catch_up_reads_more_than_it_remembers(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    # At 1,000 events/s a tick's catch-up reads twice SENT_MEMORY ids again; here the
    # memory is 5 and 40 events arrive between two ticks.
    from events import consumers

    monkeypatch.setattr(consumers, "SENT_MEMORY", 5)
    settings.LIVE_TICK_SECONDS = 0.3
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        posted = []
        for round_ in range(4):
            answer = post_events(
                asgi_server, door_a.box_key, [event(f"busy{round_}-{n}", door_a.entrance) for n in range(10)]
            )
            posted += [r["id"] for r in answer["results"]]
        received = []
        ticks = 0
        while ticks < 6:  # the catch-up has read the database again several times
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "events":
                received += [e["id"] for e in message["events"]]
            ticks += message["type"] == "tick"
    assert sorted(received) == sorted(posted)


def test_an_event_whose_live_copy_was_lost_comes_from_the_database_while_the_others_flow_live(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    # While live copies arrive, the catch-up reads only what they went past a tick ago: a
    # lost copy among them is still found, once.
    settings.LIVE_TICK_SECONDS = 0.3
    lost = lose_the_first_live_copy(monkeypatch)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        posted = []
        for round_ in range(8):  # the live stream flows over several ticks
            answer = post_events(
                asgi_server, door_a.box_key, [event(f"flow{round_}-{n}", door_a.entrance) for n in range(3)]
            )
            posted += [r["id"] for r in answer["results"]]
            time.sleep(0.15)
        received = []
        ticks = 0
        deadline = time.monotonic() + 15
        while (ticks < 4 or not set(posted) <= set(received)) and time.monotonic() < deadline:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "events":
                received += [e["id"] for e in message["events"]]
            ticks += message["type"] == "tick"
    assert lost
    assert sorted(received) == sorted(posted)


def test_while_every_live_copy_arrives_a_tick_counts_instead_of_reading_ids(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    # A busy page's tick checks its range with one count and sum; it reads the range's ids
    # only when they disagree (the test above loses a copy: then it does).
    from events.consumers import EventsConsumer

    settings.LIVE_TICK_SECONDS = 0.3
    calls = []
    # The methods as written (a class attribute read would bind them to no socket).
    sent_all, unsent_after = EventsConsumer.__dict__["_sent_all"], EventsConsumer.__dict__["_unsent_after"]

    async def counting(self, after, upto, sent):
        calls.append(("counted", await sent_all(self, after, upto, sent)))
        return calls[-1][1]

    async def reading(self, after, upto=None):
        calls.append(("read", upto))
        return await unsent_after(self, after, upto)

    monkeypatch.setattr(EventsConsumer, "_sent_all", counting)
    monkeypatch.setattr(EventsConsumer, "_unsent_after", reading)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        posted, received = [], []
        for round_ in range(8):
            answer = post_events(
                asgi_server, door_a.box_key, [event(f"live{round_}-{n}", door_a.entrance) for n in range(3)]
            )
            posted += [r["id"] for r in answer["results"]]
            time.sleep(0.15)
        deadline = time.monotonic() + 15
        while not set(posted) <= set(received) and time.monotonic() < deadline:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "events":
                received += [e["id"] for e in message["events"]]
    assert sorted(received) == sorted(posted)
    assert ("counted", True) in calls
    assert ("counted", False) not in calls
    assert not [upto for kind, upto in calls if kind == "read" and upto is not None]


def test_a_catch_up_longer_than_a_page_sends_every_event_once_in_order(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    # Every live copy is lost (the layer is down): the tick reads the ids in pages of
    # CATCH_UP_ID_PAGE and loads the unsent events REPLAY_LIMIT at a time.
    from events import consumers, live, selectors

    settings.LIVE_TICK_SECONDS = 0.3
    monkeypatch.setattr(consumers, "CATCH_UP_ID_PAGE", 4)
    monkeypatch.setattr(selectors, "REPLAY_LIMIT", 3)

    async def lose_everything(layer, by_group):
        return None

    monkeypatch.setattr(live, "_send_to_groups", lose_everything)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        answer = post_events(asgi_server, door_a.box_key, [event(f"page{n}", door_a.entrance) for n in range(11)])
        posted = [r["id"] for r in answer["results"]]
        received = []
        deadline = time.monotonic() + 15
        while not set(posted) <= set(received) and time.monotonic() < deadline:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "events":
                received += [e["id"] for e in message["events"]]
        ticks = 0
        while ticks < 3:  # later ticks read them again and send nothing
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "events":
                received += [e["id"] for e in message["events"]]
            ticks += message["type"] == "tick"
    assert received == posted


def lose_the_first_live_copy(monkeypatch) -> list:
    from events import live

    deliver = live._send_to_groups
    lost = []

    async def lose_the_first(layer, by_group):
        if not lost:
            lost.append(by_group)
            return
        await deliver(layer, by_group)

    monkeypatch.setattr(live, "_send_to_groups", lose_the_first)
    return lost


def test_a_page_resumes_after_what_it_was_sent_completely_not_after_the_newest_id_it_saw(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    # Redis lost the live copy of `early`; `late` came live. Before the tick that would
    # have brought `early` from the database, the page's connection drops. Resuming after
    # the newest id it saw (`late`) would skip `early` for good; after `complete`, it comes.
    settings.LIVE_TICK_SECONDS = 60
    lost = lose_the_first_live_copy(monkeypatch)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        complete = receive(socket, "hello")["complete"]
        [early] = post_events(asgi_server, door_a.box_key, [event("early", door_a.entrance)])["results"]
        [late] = post_events(asgi_server, door_a.box_key, [event("late", door_a.entrance)])["results"]
        assert [e["id"] for e in receive(socket, "events")["events"]] == [late["id"]]
    assert lost and complete < early["id"] < late["id"]
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        socket.send(json.dumps({"type": "resume", "after": complete}))
        replayed = [e["id"] for e in receive(socket, "events")["events"]]
    assert replayed == [early["id"], late["id"]]  # the page drops `late`, which it has


def test_every_event_at_or_below_a_ticks_complete_id_was_sent_before_it(
    asgi_server, client, tenant_a, door_a, settings, monkeypatch
):
    settings.LIVE_TICK_SECONDS = 0.3
    lose_the_first_live_copy(monkeypatch)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        posted = []
        for round_ in range(6):
            answer = post_events(
                asgi_server, door_a.box_key, [event(f"c{round_}-{n}", door_a.entrance) for n in range(2)]
            )
            posted += [r["id"] for r in answer["results"]]
            time.sleep(0.1)
        received: set[int] = set()
        completes = []
        deadline = time.monotonic() + 15
        while (not completes or completes[-1] < max(posted)) and time.monotonic() < deadline:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "events":
                received |= {e["id"] for e in message["events"]}
            elif message["type"] == "tick":
                completes.append(message["complete"])
                assert {pk for pk in posted if pk <= message["complete"]} <= received
    assert completes[-1] >= max(posted)
    assert set(posted) <= received
