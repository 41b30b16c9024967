"""Common fixtures. Every test gets two companies, each with an owner, an admin and a
viewer, so isolation is tested by default: company A is "ours", company B the outsider."""

from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.authentication import token_pair_for
from accounts.models import Company, Role, User
from tests.factories import CompanyFactory, UserFactory

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRE_SERVICES = os.environ.get("KANGAROO_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def redis_test_url() -> str:
    # TEST_REDIS_URL lets two suites run side by side on one Redis without sharing a database.
    return settings.REDIS_URL or os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _service_problem(marker: str) -> str | None:
    if marker == "postgres":
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            return "needs PostgreSQL: set DATABASE_URL=postgres://..."
        return None
    if marker == "browser":
        if importlib.util.find_spec("playwright") is None:
            return "needs Playwright: pip install -r requirements/dev.txt"
        if not os.path.exists(CHROMIUM):
            return f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
        return None
    if marker == "redis":
        if not _reachable(redis_test_url(), 6379):
            return f"needs Redis at {redis_test_url()}"
        return None
    return None


def pytest_runtest_setup(item):
    """Skip a test whose service is missing, or fail it where CI requires every service."""
    for marker in ("postgres", "redis", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        problem = _service_problem(marker)
        if problem:
            if REQUIRE_SERVICES:
                pytest.fail(f"KANGAROO_REQUIRE_SERVICES is set but this test {problem}")
            pytest.skip(problem)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests hash hundreds of passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_face_indexes(settings):
    """Each test builds its companies' face indexes afresh and sees every change at once:
    after a rollback the next test's companies reuse ids and gallery versions."""
    from subjects.face_index import forget_indexes

    settings.FACE_INDEX_RECHECK_SECONDS = 0
    forget_indexes()
    yield
    forget_indexes()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test writes its photos into its own folder, so tests can prove that a failed
    upload or a deletion leaves no file behind."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()  # login-failure counters and the like must not leak between tests
    yield
    cache.clear()


@dataclass
class Tenant:
    company: Company
    owner: User
    admin: User
    viewer: User

    def users(self):
        return [self.owner, self.admin, self.viewer]


def _tenant(slug: str) -> Tenant:
    company = CompanyFactory(slug=slug, name=f"Company {slug.upper()}")
    return Tenant(
        company=company,
        owner=UserFactory(company=company, role=Role.OWNER, username=f"{slug}-owner"),
        admin=UserFactory(company=company, role=Role.ADMIN, username=f"{slug}-admin"),
        viewer=UserFactory(company=company, role=Role.VIEWER, username=f"{slug}-viewer"),
    )


@pytest.fixture
def tenant_a(db) -> Tenant:
    return _tenant("a")


@pytest.fixture
def tenant_b(db) -> Tenant:
    return _tenant("b")


@pytest.fixture
def tenants(tenant_a, tenant_b) -> tuple[Tenant, Tenant]:
    return tenant_a, tenant_b


@pytest.fixture
def platform_admin(db) -> User:
    return User.objects.create_superuser("platform", "platform@example.com", "platform-pass-2026")


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    return client


def answer_without_request_id(response) -> dict:
    """A JSON answer as a client compares two: an error envelope's `request_id` (the one its
    X-Request-ID header answers) left out, since no two requests share one (kangaroo/logs.py)."""
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "request_id" in error:
        assert error.pop("request_id") == response["X-Request-ID"], body
    return body


@pytest.fixture
def api(tenants):
    """api(user) -> an APIClient authenticated with a fresh JWT of that user."""
    return api_client_for


@pytest.fixture
def admin_client_for(client, tenants):
    def make(user: User):
        client.force_login(user)
        return client

    return make


@pytest.fixture
def asgi_server(transactional_db):
    """The real ASGI application served by uvicorn on a free local port, in a thread.

    Yields the base URL ("http://127.0.0.1:PORT"). Shares the test database with the test
    (transactional_db), so rows the test creates are visible to the server.
    """
    import threading
    import time

    import uvicorn

    from kangaroo.asgi import application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser(monkeypatch):
    """A real headless Chromium (Debian's package), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are still plain synchronous ones, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """On SQLite, a test database in a file rather than Django's shared in-memory one.

    The in-process ASGI server's threads and the test share the database; in shared-cache
    memory mode SQLite refuses a locked table at once ("database table is locked") instead
    of waiting, so those tests would fail by chance. A file waits, as the embedded shape does.
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(scope="session", autouse=True)
def _close_database_pools(django_db_setup, django_db_blocker):
    """Return pooled PostgreSQL connections (some opened by the in-process ASGI server's
    threads) before the test database is dropped, which fails while any is open."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all(initialized_only=True):
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()


@pytest.fixture
def door_a(tenant_a):
    """Company A's lobby: a box with an entrance and an exit screen, a pad and a TV box."""
    from tests.events.conftest import make_door

    return make_door(tenant_a, "A")


@pytest.fixture
def door_b(tenant_b):
    from tests.events.conftest import make_door

    return make_door(tenant_b, "B")
