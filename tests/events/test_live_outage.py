"""Redis stops and comes back while a box keeps posting: every event still reaches the
open live page, exactly once, without the page's connection having to drop.

A private redis-server (tests/events/conftest.py) carries the channel layer, so the test
can stop it without disturbing anything else."""

from __future__ import annotations

import json
import threading
import time

from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.events.conftest import event
from tests.events.live_client import dashboard, post_like_a_device, session_of
from tests.factories import SubjectFactory


class LivePage:
    """A live page's client side, as static/kangaroo/live.js does it: shows `recent` when
    it opens, resumes after the last id it showed when it reconnects. Records every event
    the server sent it, and every connection it had to open."""

    def __init__(self, server: str, cookie: str):
        self.server, self.cookie = server, cookie
        self.received: list[int] = []
        self.connections = 0
        self.hellos = 0
        self.last_id = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            try:
                with dashboard(self.server, self.cookie) as socket:
                    self.connections += 1
                    self.listen(socket)
            except (ConnectionClosed, OSError, TimeoutError):
                time.sleep(0.2)

    def listen(self, socket):
        while not self.stopping.is_set():
            try:
                message = json.loads(socket.recv(timeout=0.2))
            except TimeoutError:
                continue
            if message["type"] == "hello":
                self.hellos += 1
                if self.last_id:
                    socket.send(json.dumps({"type": "resume", "after": self.last_id}))
                else:
                    self.take(message["recent"])
            elif message["type"] == "events":
                self.take(message["events"])

    def take(self, events):
        with self.lock:
            for item in events:
                self.received.append(item["id"])
                self.last_id = max(self.last_id, item["id"])

    def wait_for(self, ids: set[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if ids <= set(self.received):
                    return
            time.sleep(0.1)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)


def test_every_event_reaches_an_open_page_exactly_once_across_a_redis_outage(
    layer_on_private_redis, asgi_server, tenant_a, door_a
):
    redis = layer_on_private_redis
    mei = SubjectFactory(company=tenant_a.company, name="Mei")
    browser = Client()
    browser.force_login(tenant_a.admin)
    page = LivePage(asgi_server, session_of(browser))
    page.thread.start()
    deadline = time.monotonic() + 10
    while page.hellos == 0 and time.monotonic() < deadline:
        time.sleep(0.05)

    posted: list[int] = []
    posted_while_down = 0
    for round_ in range(60):
        if round_ == 15:
            redis.stop()
        if round_ == 45:
            redis.start()
        if not redis.answering():
            posted_while_down += 1
        answer = post_like_a_device(
            asgi_server, door_a.box_key, [event(f"r{round_}-{n}", door_a.entrance, mei) for n in range(3)]
        )
        # The device gets its normal answer, Redis or not (a retried post answers duplicates).
        assert [r["status"] for r in answer["results"]] in (["created"] * 3, ["duplicate"] * 3)
        posted += [result["id"] for result in answer["results"]]
        time.sleep(0.05)

    page.wait_for(set(posted))
    page.stop()
    assert posted_while_down == 30
    assert sorted(page.received) == sorted(posted)  # every one, none twice
    assert (page.connections, page.hellos) == (1, 1)  # caught up without the connection having to drop


def test_a_redis_outage_is_one_warning_per_failed_broadcast_not_an_error(
    layer_on_private_redis, asgi_server, tenant_a, door_a, caplog
):
    # Broadcasts failing while Redis is away are recovered by design (the page above catches
    # up): an operator's ERROR lines are kept for what lost something.
    redis = layer_on_private_redis
    browser = Client()
    browser.force_login(tenant_a.admin)
    page = LivePage(asgi_server, session_of(browser))
    page.thread.start()
    deadline = time.monotonic() + 10
    while page.hellos == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    redis.stop()
    for round_ in range(5):
        post_like_a_device(asgi_server, door_a.box_key, [event(f"down-{round_}", door_a.entrance)])
        time.sleep(0.2)
    redis.start()
    page.stop()

    warnings = [r for r in caplog.records if r.name == "events.live" and r.levelname == "WARNING"]
    assert warnings and all("Redis cannot be reached" in r.getMessage() for r in warnings)
    # No traceback either, from the broadcasts, the hub or the sockets.
    assert not [r for r in caplog.records if r.name.startswith(("events.", "channels_redis")) and r.exc_info]
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]


def test_a_page_opening_while_redis_is_down_is_turned_away_with_a_warning_and_gets_in_once_it_is_back(
    layer_on_private_redis, asgi_server, tenant_a, caplog
):
    redis = layer_on_private_redis
    browser = Client()
    browser.force_login(tenant_a.admin)
    cookie = session_of(browser)
    redis.stop()
    try:
        with dashboard(asgi_server, cookie) as socket:
            socket.recv(timeout=10)
        raise AssertionError("the socket opened without Redis")
    except (InvalidStatus, ConnectionClosed):
        pass
    redis.start()
    with dashboard(asgi_server, cookie) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "hello"
    assert "A live socket could not open: Redis cannot be reached" in caplog.text
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]
