"""The operators' endpoints: `/healthz`, `/readyz` and `/metrics`.

They are answered by the first middleware, before host validation, the HTTPS redirect,
sessions and URL routing: a load balancer's or an orchestrator's probe and Prometheus's
scraper address a process by its own address over plain HTTP, which ALLOWED_HOSTS and
SECURE_SSL_REDIRECT would refuse, and a probe every few seconds should cost next to nothing.
None of them reads tenant data or needs a login; they are not part of the public API and its
schema (they are for the infrastructure, documented in the README's operations part).

- `/healthz`: the process answers. No database, no Redis.
- `/readyz`: what this shape uses is reachable: the database (with every migration applied),
  and, with REDIS_URL, Redis and each job queue's Redis. 200 or 503, with the state of each
  part. Each probe has READYZ_TIMEOUT_SECONDS; a probe still running from an earlier call is
  waited for rather than started again, so a hung database cannot pile up threads. Once the
  migrations are found applied, the process does not look again (a process sees new
  migrations only by restarting anyway).
- `/metrics`: Prometheus's text format, only with `Authorization: Bearer <METRICS_TOKEN>`;
  without METRICS_TOKEN set it does not exist (404, like any unknown address).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse

from kangaroo import errors, metrics
from kangaroo.api.errors import envelope_response
from kangaroo.errors import KangarooError

logger = logging.getLogger(__name__)

OK = "ok"
INLINE = "inline"  # the embedded shape runs jobs in the process: nothing to reach
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
MIGRATIONS_PENDING = "pending"
PASSING = {OK, INLINE}

PATHS = {"/healthz", "/readyz", "/metrics"}


class OpsEndpointsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path not in PATHS or (path == "/metrics" and not settings.METRICS_TOKEN):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        if path == "/healthz":
            response = JsonResponse({"status": OK})
        elif path == "/readyz":
            response = readyz()
        else:
            response = metrics_view(request)
        response["Cache-Control"] = "no-store"
        return response


# --- /readyz --------------------------------------------------------------------------------

_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_running: dict[str, Future] = {}
_running_lock = threading.Lock()
_migrations_applied = False


def readyz() -> JsonResponse:
    checks = readiness()
    failing = sorted(part for part, state in checks.items() if state not in PASSING)
    body = {"status": "unavailable" if failing else OK, "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


def readiness() -> dict[str, str]:
    """Each part this shape uses and its state (`ok`, `inline`, `unreachable`, `timeout`,
    `pending` for unapplied migrations), probed at once, within READYZ_TIMEOUT_SECONDS."""
    futures: dict[str, Future] = {"database": _start("database", database_probe)}
    redis_urls: dict[str, list[str]] = {}
    if settings.REDIS_URL:
        redis_urls.setdefault(settings.REDIS_URL, []).append("redis")
    if settings.JOBS_INLINE:
        queue_states = dict.fromkeys((f"queue:{name}" for name in settings.RQ_QUEUES), INLINE)
    else:
        queue_states = {}
        for name, config in settings.RQ_QUEUES.items():
            redis_urls.setdefault(config["URL"], []).append(f"queue:{name}")
    for url, parts in redis_urls.items():
        # Named by the parts it serves, never by the URL, which may carry a password.
        futures[url] = _start(" and ".join(parts), lambda url=url: redis_probe(url))
    wait_for(futures.values(), timeout=settings.READYZ_TIMEOUT_SECONDS)

    def state(future: Future) -> str:
        return future.result() if future.done() else TIMEOUT

    database, migrations = state(futures["database"]), TIMEOUT
    if isinstance(database, tuple):
        database, migrations = database
    checks = {"database": database, "migrations": migrations if database == OK else "unknown"}
    for url, parts in redis_urls.items():
        for part in parts:
            checks[part] = state(futures[url])
    return checks | queue_states


def _start(name: str, probe) -> Future:
    """The running probe of this name, or a new one: never two of one kind at a time."""
    with _running_lock:
        future = _running.get(name)
        if future is None or future.done():
            future = _running[name] = _probes.submit(_guarded, name, probe)
        return future


def _guarded(name: str, probe):
    try:
        return probe()
    except Exception:
        logger.warning("Readiness probe of %s failed", name, exc_info=True)
        return UNREACHABLE


def database_probe() -> tuple[str, str]:
    """(database state, migrations state), in a thread of its own with its own connection."""
    from django.db import connection

    global _migrations_applied
    try:
        select_one(connection)
        if not _migrations_applied:
            _migrations_applied = not migrations_unapplied(connection)
        return OK, OK if _migrations_applied else MIGRATIONS_PENDING
    finally:
        connection.close()  # back to the pool, or closed: a dead connection is not kept


def select_one(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def migrations_unapplied(connection) -> list:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


_redis_clients: dict[str, object] = {}


def probe_client(url: str):
    """A Redis client for probes and scrapes: short timeouts, no retries, one per URL."""
    client = _redis_clients.get(url)
    if client is None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = settings.READYZ_TIMEOUT_SECONDS
        client = _redis_clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
    return client


def redis_probe(url: str) -> str:
    probe_client(url).ping()
    return OK


# --- /metrics -------------------------------------------------------------------------------


def token_matches(given: str, expected: str) -> bool:
    """Constant time in the token's content and length: both sides are hashed first."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def metrics_view(request) -> HttpResponse:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(given.strip(), settings.METRICS_TOKEN):
        return envelope_response(KangarooError(errors.NOT_AUTHENTICATED), headers={"WWW-Authenticate": "Bearer"})
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
