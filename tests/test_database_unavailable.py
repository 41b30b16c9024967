"""With PostgreSQL down, or every pooled connection busy, the API and the device API answer
503 `service_unavailable` with Retry-After: a client should retry, nothing is wrong with its
request. Tested against a real PostgreSQL: a closed port, and a pool held by another thread."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from django.db import connections
from django.test import Client

from tests.conftest import api_client_for
from tests.devices.conftest import device_client
from tests.events.conftest import event, make_door

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


@contextlib.contextmanager
def database_unreachable():
    """The default database at a port where nothing listens, with a short pool timeout."""
    connection = connections["default"]
    settings_dict = connection.settings_dict
    saved = {"HOST": settings_dict["HOST"], "PORT": settings_dict["PORT"], "OPTIONS": settings_dict["OPTIONS"]}
    connection.close()
    connection.close_pool()
    options = dict(settings_dict["OPTIONS"])
    if "pool" in options:
        options["pool"] = {**options["pool"], "timeout": 1, "min_size": 0}
    options["connect_timeout"] = 1
    settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()), OPTIONS=options)
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        settings_dict.update(saved)


@contextlib.contextmanager
def pool_exhausted():
    """Every connection of the pool taken by another thread for as long as the block runs."""
    connection = connections["default"]
    connection.close()  # give this thread's connection back to the pool
    pool = connection.pool
    if pool is None:
        pytest.skip("needs the connection pool (DATABASE_POOL=true)")
    taken, release = threading.Event(), threading.Event()

    def hold_them_all():
        # A generous timeout to take them: on a busy machine opening a connection is slow.
        held = [pool.getconn(timeout=30) for _ in range(pool.max_size)]
        taken.set()
        release.wait(30)
        for conn in held:
            pool.putconn(conn)

    holder = threading.Thread(target=hold_them_all)
    saved_timeout = pool.timeout
    holder.start()
    try:
        assert taken.wait(60)
        pool.timeout = 0.5  # only the requests under test wait briefly for a connection
        yield
    finally:
        release.set()
        holder.join(10)
        pool.timeout = saved_timeout


def assert_unavailable(response):
    assert response.status_code == 503, response.content[:300]
    assert response.json()["error"]["code"] == "service_unavailable"
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("failure", [database_unreachable, pool_exhausted])
def test_the_api_answers_503_with_retry_after(tenant_a, failure):
    door = make_door(tenant_a, "A")
    user, box = api_client_for(tenant_a.owner), device_client(door.box_key)
    anonymous = api_client_for(None)
    with failure():
        assert_unavailable(user.get("/api/v1/subjects"))
        assert_unavailable(user.post("/api/v1/departments", {"name": "Ops"}, format="json"))
        assert_unavailable(
            anonymous.post("/api/v1/auth/token", {"username": "a-owner@a", "password": "x"}, format="json")
        )
        assert_unavailable(box.post("/api/v1/device/heartbeat", {}, format="json"))
        assert_unavailable(box.post("/api/v1/device/events", event("e1", door.entrance), format="json"))
    # and once the database is back, all is as before: nothing was half-written
    assert user.get("/api/v1/departments").json()["results"] == []
    assert box.post("/api/v1/device/events", event("e1", door.entrance), format="json").status_code == 201


def test_a_session_request_to_the_api_answers_503_when_the_middleware_meets_the_outage(tenant_a):
    client = Client(raise_request_exception=False)  # as in production: Django's handler answers
    client.force_login(tenant_a.owner)  # the session and its user are read in middleware
    with database_unreachable():
        assert_unavailable(client.get("/api/v1/me"))
