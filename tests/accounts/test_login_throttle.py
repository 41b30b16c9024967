"""The login throttle: a guesser is locked out, the account is only slowed down, and a
refused attempt never reaches the password check. The API and the admin share it."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from rest_framework.test import APIClient

from tests.conftest import answer_without_request_id
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


class Clock:
    """time.time() under the test's control, for the local-memory cache's expiry and ours."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(settings, monkeypatch):
    # The local-memory cache expires keys by time.time(), so a frozen clock makes backoff
    # periods end exactly when the test says, whatever the machine's load.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "clock"}}
    clock = Clock()
    monkeypatch.setattr("time.time", clock)
    return clock


@pytest.fixture
def checked(monkeypatch):
    """How many passwords were actually checked (hashed and compared)."""
    calls = []
    real_verify = MD5PasswordHasher.verify

    def verify(self, password, encoded):
        calls.append(password)
        return real_verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", verify)
    return calls


def login(username, password=PASSWORD, ip="10.0.0.1"):
    return APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_a_locked_pair_answers_the_same_for_right_and_wrong_passwords(tenant_a, settings, checked):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        login("a-owner@a", "wrong")
    assert len(checked) == settings.LOGIN_FAILURE_LIMIT
    right, wrong = login("a-owner@a"), login("a-owner@a", "wrong")
    assert right.status_code == wrong.status_code == 429
    assert answer_without_request_id(right) == answer_without_request_id(wrong)
    assert right["Retry-After"] == wrong["Retry-After"]
    assert len(checked) == settings.LOGIN_FAILURE_LIMIT  # refused before any hashing


def test_guessing_from_many_addresses_slows_the_username_down_instead_of_locking_it(tenant_a, settings, clock):
    limit = settings.LOGIN_FAILURE_LIMIT
    for n in range(limit):
        assert login("a-owner@a", "wrong", ip=f"10.0.3.{n}").status_code == 401
    # Past the limit, one attempt per backoff period for the username, from anywhere.
    assert login("a-owner@a", "wrong", ip="10.0.4.1").status_code == 401
    held = login("a-owner@a", ip="10.0.4.2")
    assert (held.status_code, held["Retry-After"]) == (429, "1")
    clock.now += 1.5
    assert login("a-owner@a", "wrong", ip="10.0.4.3").status_code == 401
    held = login("a-owner@a", ip="10.0.4.4")
    assert (held.status_code, held["Retry-After"]) == (429, "2")  # the period doubles
    clock.now += 2.5
    # Never a hard lock: the owner gets in once the period is over, and the slate is clean.
    assert login("a-owner@a", ip="10.0.4.5").status_code == 200
    assert login("a-owner@a", "wrong", ip="10.0.4.6").status_code == 401
    assert login("a-owner@a", ip="10.0.4.7").status_code == 200


def test_the_backoff_period_stops_growing_at_its_maximum(tenant_a, settings, clock):
    settings.LOGIN_BACKOFF_MAX = 4
    for n in range(settings.LOGIN_FAILURE_LIMIT + 6):
        login("a-owner@a", "wrong", ip=f"10.0.5.{n}")
        clock.now += 10
    held = [login("a-owner@a", "wrong", ip="10.0.6.1"), login("a-owner@a", "wrong", ip="10.0.6.2")][1]
    assert (held.status_code, held["Retry-After"]) == (429, "4")


def test_a_lock_ends_with_its_window(tenant_a, settings, clock):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        login("a-owner@a", "wrong")
    assert login("a-owner@a").status_code == 429
    clock.now += settings.LOGIN_FAILURE_WINDOW + 1
    assert login("a-owner@a").status_code == 200


def test_a_success_clears_the_usernames_count_but_does_not_use_up_the_address(tenant_a, settings):
    limit = settings.LOGIN_FAILURE_LIMIT
    for n in range(limit - 1):
        assert login("a-owner@a", "wrong", ip=f"10.0.7.{n}").status_code == 401
    assert login("a-owner@a", ip="10.0.7.100").status_code == 200
    # Counting starts again: without the reset the second of these would meet the backoff.
    for n in range(limit):
        assert login("a-owner@a", "wrong", ip=f"10.0.8.{n}").status_code == 401
    # An office behind one address: successes do not use up the address's allowance.
    for _ in range(limit + 2):
        assert login("a-admin@a", ip="10.0.9.9").status_code == 200


def test_the_admin_and_the_api_share_one_throttle(client, tenant_a, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        client.post("/admin/login/", {"username": "a-owner@a", "password": "wrong"}, REMOTE_ADDR="10.0.12.8")
    assert login("a-owner@a", "wrong", ip="10.0.12.8").status_code == 401
    page = client.post("/admin/login/", {"username": "a-owner@a", "password": PASSWORD}, REMOTE_ADDR="10.0.12.8")
    assert page.status_code == 429
    assert 0 < int(page["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW
    assert login("a-owner@a", ip="10.0.12.8").status_code == 429
    assert "_auth_user_id" not in client.session


def test_an_unknown_username_is_hashed_like_a_known_one(tenant_a, monkeypatch):
    encoded = []
    real_encode = MD5PasswordHasher.encode

    def encode(self, password, salt):
        encoded.append(password)
        return real_encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", encode)
    assert login("nobody-at-all", "a guess").status_code == 401
    assert encoded == ["a guess"]
