"""The operators' endpoints: /healthz and /readyz for probes, /metrics for Prometheus.

Probes and scrapers address a process by its own address over plain HTTP; the endpoints
answer them before host checks and the HTTPS redirect, without a login and without tenant
data. /readyz names each failing part; /metrics exists only with METRICS_TOKEN and then
answers only that token; its figures follow what really happens (events posted, photos
enrolled, devices reporting, jobs waiting, sockets open).
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from devices.models import Box, Pad
from kangaroo import ops
from tests.conftest import redis_test_url
from tests.events.conftest import event
from tests.faces import portraits
from tests.factories import SubjectFactory

TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture(autouse=True)
def _fresh_probes(monkeypatch):
    """Each test probes from scratch: no migrations result kept, no probe left running."""
    monkeypatch.setattr(ops, "_migrations_applied", False)
    monkeypatch.setattr(ops, "_running", {})
    monkeypatch.setattr(ops, "_redis_clients", {})


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(before, after, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once closed: nothing listens there


# --- /healthz ---------------------------------------------------------------------------------


def test_healthz_answers_without_the_database_on_any_host_over_plain_http(client, settings):
    # No django_db mark: any query would fail the test. Probes come by the pod's address.
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_the_ops_endpoints_only_read(client):
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


# --- /readyz ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_in_the_embedded_shape_checks_the_database_and_migrations(client, settings):
    settings.REDIS_URL, settings.JOBS_INLINE = "", True
    response = client.get("/readyz", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "queue:default": "inline"},
    }


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_with_redis_checks_redis_and_each_queue(client, settings):
    url = redis_test_url()
    settings.REDIS_URL, settings.JOBS_INLINE = url, False
    settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 600}}
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "queue:default": "ok"}


@pytest.mark.django_db
def test_readyz_names_redis_and_the_queue_when_redis_is_down(client, settings):
    down = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL, settings.JOBS_INLINE = down, False
    settings.RQ_QUEUES = {"default": {"URL": down, "DEFAULT_TIMEOUT": 600}}
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < settings.READYZ_TIMEOUT_SECONDS + 1
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["queue:default", "redis"]
    assert body["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "unreachable",
        "queue:default": "unreachable",
    }
    assert down not in response.content.decode()  # no addresses or errors for anonymous callers


@pytest.mark.django_db
def test_a_failing_probe_never_writes_the_redis_password_to_the_log(client, settings, caplog):
    down = f"redis://:pr0be-secret@127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL, settings.JOBS_INLINE = down, False
    settings.RQ_QUEUES = {"default": {"URL": down, "DEFAULT_TIMEOUT": 600}}
    with caplog.at_level(logging.DEBUG):
        assert client.get("/readyz").status_code == 503
        deadline = time.monotonic() + settings.READYZ_TIMEOUT_SECONDS + 2
        while "Readiness probe" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "Readiness probe of redis and queue:default failed" in caplog.text
    assert "pr0be-secret" not in caplog.text


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client, monkeypatch):
    def refused(connection):
        raise OperationalError("connection refused")

    monkeypatch.setattr(ops, "select_one", refused)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database", "migrations"]
    assert response.json()["checks"]["database"] == "unreachable"
    assert response.json()["checks"]["migrations"] == "unknown"


@pytest.mark.django_db
def test_readyz_gives_up_on_a_hung_database_and_starts_no_second_probe(client, settings, monkeypatch):
    settings.READYZ_TIMEOUT_SECONDS = 0.2
    calls = []

    def hung(connection):
        calls.append(1)
        time.sleep(1.0)

    monkeypatch.setattr(ops, "select_one", hung)
    first = client.get("/readyz")
    second = client.get("/readyz")
    assert first.status_code == second.status_code == 503
    assert first.json()["checks"]["database"] == "timeout"
    assert len(calls) == 1  # the second call waited on the probe still running
    ops._running["database"].result(timeout=5)  # let it end before the test database goes


@pytest.mark.django_db
def test_readyz_waits_for_migrations_then_stops_checking_them(client, monkeypatch):
    plans = [["subjects.0099_not_applied"], [], ["never asked"]]
    asked = []

    def unapplied(connection):
        asked.append(1)
        return plans[len(asked) - 1]

    monkeypatch.setattr(ops, "migrations_unapplied", unapplied)
    pending = client.get("/readyz")
    assert pending.status_code == 503
    assert pending.json()["failing"] == ["migrations"]
    assert pending.json()["checks"]["migrations"] == "pending"
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert len(asked) == 2  # once passed, this process does not look again


# --- /metrics: who may read it ----------------------------------------------------------------


def test_metrics_do_not_exist_without_a_token_setting(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    ["", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Token {TOKEN}"],
    ids=["none", "other scheme", "longer", "shorter", "empty", "token scheme"],
)
def test_metrics_refuse_any_other_credentials(client, metrics_token, authorization):
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"
    assert "kangaroo_" not in response.content.decode()


def test_the_token_is_compared_in_constant_time(monkeypatch):
    compared = []
    real = ops.hmac.compare_digest

    def spy(a, b):
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(ops.hmac, "compare_digest", spy)
    assert ops.token_matches(TOKEN, TOKEN)
    assert not ops.token_matches("short", TOKEN)
    assert compared == [(32, 32), (32, 32)]  # digests: the length of the guess tells nothing


@pytest.mark.django_db
def test_metrics_answer_the_token_on_any_host(client, metrics_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.0.0.9:8000")
    assert response.status_code == 200
    assert "kangaroo_collector_up" in response.content.decode()


# --- /metrics: the figures follow what happens ------------------------------------------------


@pytest.mark.django_db
def test_posted_events_are_counted_by_answer_and_kind(
    client, metrics_token, tenant_a, door_a, django_capture_on_commit_callbacks
):
    before = scrape(client)
    mei = SubjectFactory(company=tenant_a.company)
    items = [event("m1", door_a.entrance, mei), event("m2", door_a.entrance), event("m1", door_a.entrance, mei)]
    items.append({"uid": "bad", "happened_at": "yesterday"})
    with django_capture_on_commit_callbacks(execute=True):  # counted once the batch commits
        response = door_a.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    assert response.status_code == 200
    after = scrape(client)

    ingested = "kangaroo_events_ingested_total"
    assert grew(before, after, ingested, status="created", kind="recognized") == 1
    assert grew(before, after, ingested, status="created", kind="stranger") == 1
    assert grew(before, after, ingested, status="duplicate", kind="") == 1
    assert grew(before, after, ingested, status="error", kind="") == 1
    route = {"route": "api/v1/device/events", "method": "POST"}
    assert grew(before, after, "kangaroo_http_requests_total", **route, status="200") == 1
    assert grew(before, after, "kangaroo_http_request_duration_seconds_count", **route) == 1


@pytest.mark.django_db
def test_an_unknown_address_counts_as_unmatched_not_by_its_path(client, metrics_token):
    before = scrape(client)
    client.get("/no/such/page/12345")
    after = scrape(client)
    assert grew(before, after, "kangaroo_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert not any("12345" in str(key) for key in after)


@pytest.mark.django_db
def test_enrolment_outcomes_are_counted_with_their_reason(
    client, metrics_token, api, tenant_a, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_INLINE = True
    subject = SubjectFactory(company=tenant_a.company)
    before = scrape(client)
    admin = api(tenant_a.admin)
    for picture in (portraits.grace_hopper(), portraits.landscape()):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin.post(
                f"/api/v1/subjects/{subject.pk}/photos", {"image": SimpleUploadedFile("p.jpg", portraits.jpeg(picture))}
            )
        assert response.status_code == 201
    after = scrape(client)
    assert grew(before, after, "kangaroo_enrolments_total", outcome="ok", reason="") == 1
    assert grew(before, after, "kangaroo_enrolments_total", outcome="rejected", reason="no_face") == 1


@pytest.mark.django_db
def test_devices_are_counted_by_kind_and_status_without_naming_any(client, metrics_token, tenant_a, tenant_b):
    now = timezone.now()
    Box.objects.create(company=tenant_a.company, name="Lobby box", last_seen_at=now)
    Box.objects.create(company=tenant_b.company, name="Gate box", last_seen_at=now - timedelta(hours=2))
    Pad.objects.create(company=tenant_b.company, name="Gate pad")
    samples = scrape(client)
    assert value(samples, "kangaroo_devices", kind="box", status="online") == 1
    assert value(samples, "kangaroo_devices", kind="box", status="offline") == 1
    assert value(samples, "kangaroo_devices", kind="pad", status="never_seen") == 1
    assert value(samples, "kangaroo_devices", kind="pad", status="online") == 0
    assert value(samples, "kangaroo_collector_up", collector="devices") == 1
    labels = {name for series, pairs in samples if series.startswith("kangaroo_") for name, _ in pairs}
    assert labels <= {"route", "method", "status", "kind", "outcome", "reason", "rule", "queue", "collector", "le"}


@pytest.mark.redis
@pytest.mark.django_db
def test_queued_and_failed_jobs_and_the_oldest_age_come_from_redis(client, metrics_token, settings):
    from redis import Redis
    from rq import Queue

    url = redis_test_url()
    settings.REDIS_URL, settings.JOBS_INLINE = url, False
    settings.RQ_QUEUES = {"metrics-test": {"URL": url, "DEFAULT_TIMEOUT": 600}}
    queue = Queue("metrics-test", connection=Redis.from_url(url))
    queue.empty()
    try:
        queue.enqueue("tests.jobs_for_tests.noop_job_that_never_runs")
        time.sleep(1.1)
        queue.enqueue("tests.jobs_for_tests.noop_job_that_never_runs")
        samples = scrape(client)
        assert value(samples, "kangaroo_jobs_queued", queue="metrics-test") == 2
        assert value(samples, "kangaroo_jobs_failed", queue="metrics-test") == 0
        assert 1.0 <= value(samples, "kangaroo_jobs_oldest_age_seconds", queue="metrics-test") < 60
        assert value(samples, "kangaroo_collector_up", collector="jobs") == 1
    finally:
        queue.empty()


@pytest.mark.django_db
def test_a_scrape_with_redis_down_still_answers_and_says_which_part_failed(client, metrics_token, settings):
    down = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL, settings.JOBS_INLINE = down, False
    settings.RQ_QUEUES = {"default": {"URL": down, "DEFAULT_TIMEOUT": 600}}
    samples = scrape(client)
    assert value(samples, "kangaroo_collector_up", collector="jobs") == 0
    assert value(samples, "kangaroo_collector_up", collector="devices") == 1


def test_open_websockets_are_counted_until_they_close(asgi_server, metrics_token):
    import httpx
    from websockets.sync.client import connect

    def clients() -> float:
        text = httpx.get(f"{asgi_server}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        [family] = [f for f in text_string_to_metric_families(text) if f.name == "kangaroo_websocket_clients"]
        return family.samples[0].value

    before = clients()
    url = asgi_server.replace("http://", "ws://") + "/ws/events/"
    with connect(url, open_timeout=10), connect(url, open_timeout=10):
        assert clients() == before + 2
    deadline = time.monotonic() + 5
    while clients() != before and time.monotonic() < deadline:
        time.sleep(0.05)  # the server ends each consumer once it hears the close
    assert clients() == before


# --- deployment checks ------------------------------------------------------------------------


def test_a_deployment_with_redis_and_metrics_is_told_to_share_counts(settings, monkeypatch):
    settings.METRICS_TOKEN, settings.REDIS_URL = TOKEN, "redis://cache.example.com:6379/0"
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert "kangaroo.W001" in {message.id for message in run_checks(include_deployment_checks=True)}
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/metrics")
    assert "kangaroo.E002" in {message.id for message in run_checks(include_deployment_checks=True)}
