"""A login burst cannot take the server's threads from device ingest: at most
LOGIN_CONCURRENT_HASHES passwords are hashed at once per process, and a login finding every
slot busy is refused at once (503 `login_busy`, Retry-After 1), the same for a right and a
wrong password, before it is counted or hashed."""

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.message import Message

import pytest
from django.conf import global_settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from rest_framework.test import APIClient

from accounts import services
from events.models import Event
from tests.conftest import answer_without_request_id
from tests.events.conftest import event, make_door
from tests.factories import PASSWORD

BOUND = 2


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict, Message]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"} | (headers or {}),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # only the local test server
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def wait_until(condition, what: str) -> None:
    """Poll a condition the test needs before going on (bounded; not a timing assertion)."""
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.02)


@pytest.fixture
def production_hasher(settings, monkeypatch):
    """Django's production PBKDF2 hasher, instrumented: how many hashes run at once (and at
    most), and every hash held at a gate until the test opens it, so the burst's hashes are
    certainly still running while the rest of the burst and the device posts arrive."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    lock = threading.Lock()
    seen = {"running": 0, "most": 0, "hashes": 0}
    gate = threading.Event()
    real_encode = PBKDF2PasswordHasher.encode

    def encode(self, password, salt, iterations=None):
        with lock:
            seen["running"] += 1
            seen["hashes"] += 1
            seen["most"] = max(seen["most"], seen["running"])
        try:
            gate.wait(timeout=120)
            return real_encode(self, password, salt, iterations)
        finally:
            with lock:
                seen["running"] -= 1

    seen["gate"] = gate
    seen["install"] = lambda: monkeypatch.setattr(PBKDF2PasswordHasher, "encode", encode)
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_forty_login_burst_hashes_at_most_the_bound_and_devices_keep_posting(
    asgi_server, tenant_a, settings, production_hasher
):
    settings.LOGIN_CONCURRENT_HASHES = BOUND
    door = make_door(tenant_a, "A")
    tenant_a.owner.set_password(PASSWORD)  # stored with the production hasher
    tenant_a.owner.save()
    production_hasher["install"]()

    def login(n):
        # Right passwords, wrong passwords and unknown usernames, each from its own address.
        username, password = [("a-owner@a", PASSWORD), ("a-owner@a", "wrong"), (f"nobody-{n}@a", "x")][n % 3]
        return post(
            f"{asgi_server}/api/v1/auth/token",
            {"username": username, "password": password},
            {"X-Forwarded-For": f"10.9.0.{n}"},
        ), password == PASSWORD and username == "a-owner@a"

    def device_post(uid):
        return post(
            f"{asgi_server}/api/v1/device/events",
            {"events": [event(uid, door.entrance)]},
            {"Authorization": f"Device {door.box_key}"},
        )

    with ThreadPoolExecutor(max_workers=64) as pool:
        logins = [pool.submit(login, n) for n in range(40)]
        early_devices = [pool.submit(device_post, f"burst-{n}") for n in range(6)]
        # Every login but the bound's is answered while the bound's hashes are held.
        wait_until(lambda: sum(f.done() for f in logins) == 40 - BOUND, "all but the bound answered")
        wait_until(lambda: production_hasher["running"] == BOUND, "the bound's hashes running")
        # The server's threads are the bound's hashes and nothing else of the burst: devices post.
        held_devices = [pool.submit(device_post, f"held-{n}") for n in range(12)]
        held_results = [f.result(timeout=120) for f in held_devices]
        assert production_hasher["running"] == BOUND
        production_hasher["gate"].set()
        results = [f.result(timeout=120) for f in logins]
        early_results = [f.result(timeout=120) for f in early_devices]

    assert production_hasher["most"] == BOUND
    assert production_hasher["hashes"] == BOUND
    for status, body, _headers in early_results + held_results:
        assert status == 200
        assert body["errors"] == 0
    assert Event.objects.filter(uid__startswith="burst-").count() == 6
    assert Event.objects.filter(uid__startswith="held-").count() == 12

    refused = [(status, body, headers) for (status, body, headers), _right in results if status == 503]
    checked = [(status, right) for (status, _body, _headers), right in results if status != 503]
    assert len(checked) == BOUND
    assert len(refused) == 40 - BOUND
    for _status, body, headers in refused:
        assert body["error"]["code"] == "login_busy"
        assert headers["Retry-After"] == "1"
        # Each answer names its own request (the header says which); the rest must be one body.
        assert body["error"].pop("request_id") == headers["X-Request-ID"]
    # A refusal tells nothing about the password: one body for right and wrong ones.
    assert len({json.dumps(body, sort_keys=True) for _status, body, _headers in refused}) == 1
    assert sorted(checked) == sorted((200 if right else 401, right) for _status, right in checked)

    # Every slot was given back: the next login is checked, and a right password signs in.
    assert services.login_hash_slots.in_use == 0
    (status, body, _headers), _ = login(0)
    assert status == 200 and "access" in body


def test_a_busy_login_is_refused_the_same_for_right_and_wrong_passwords_without_hashing(
    tenant_a, settings, monkeypatch
):
    settings.LOGIN_CONCURRENT_HASHES = 1
    hashed = []
    monkeypatch.setattr("django.contrib.auth.hashers.MD5PasswordHasher.encode", lambda *args: hashed.append(1))
    assert services.login_hash_slots.take()  # another login is hashing
    try:
        answers = []
        for password in (PASSWORD, "wrong"):
            response = APIClient().post(
                "/api/v1/auth/token",
                {"username": "a-owner@a", "password": password},
                format="json",
                REMOTE_ADDR="10.8.0.1",
            )
            assert response.status_code == 503
            assert response["Retry-After"] == "1"
            assert response.json()["error"]["code"] == "login_busy"
            answers.append(answer_without_request_id(response))
        assert answers[0] == answers[1]
        assert hashed == []
    finally:
        services.login_hash_slots.give_back()
    # Refused attempts were not counted against the user or the address: the limit's worth
    # of wrong passwords is still checked (401) before the throttle answers.
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = APIClient().post(
            "/api/v1/auth/token", {"username": "a-owner@a", "password": "wrong"}, format="json", REMOTE_ADDR="10.8.0.1"
        )
        assert response.status_code == 401
    assert services.login_hash_slots.in_use == 0


def test_the_admin_login_shows_the_busy_refusal_as_a_form_error(client, tenant_a, settings):
    settings.LOGIN_CONCURRENT_HASHES = 1
    assert services.login_hash_slots.take()
    try:
        page = client.post("/admin/login/", {"username": "a-owner@a", "password": PASSWORD})
        credentials = {"username": "a-owner@a", "password": PASSWORD}
        zh = client.post("/admin/login/", credentials, HTTP_ACCEPT_LANGUAGE="zh-hant")
    finally:
        services.login_hash_slots.give_back()
    assert page.status_code == 503
    assert page["Retry-After"] == "1"
    assert "Too many logins are being checked right now" in page.content.decode()
    assert 'class="errornote"' in page.content.decode()
    assert "_auth_user_id" not in client.session
    assert zh.status_code == 503
    assert "目前同時驗證的登入過多" in zh.content.decode()
    # Once the slot is free the same login goes through.
    assert client.post("/admin/login/", {"username": "a-owner@a", "password": PASSWORD}).status_code == 302


def test_a_login_whose_check_fails_gives_its_slot_back(tenant_a, settings, monkeypatch):
    settings.LOGIN_CONCURRENT_HASHES = 1

    def broken(**kwargs):
        raise RuntimeError("backend down")

    monkeypatch.setattr("django.contrib.auth.authenticate", broken)
    with pytest.raises(RuntimeError):
        services.user_authenticate(username="a-owner@a", password=PASSWORD, ip_address="10.7.0.1")
    assert services.login_hash_slots.in_use == 0
