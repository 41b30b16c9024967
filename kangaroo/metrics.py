"""Prometheus metrics: what the portal counts, and how `/metrics` reads it from every process.

Counters and histograms are bumped where the work happens (each app imports this module,
the bottom layer, and nothing else): requests by route, events ingested, enrolments,
purges, webhook deliveries. Figures that live in the database or in Redis (devices online,
queue lengths) are read when Prometheus scrapes, by collectors that the apps register
with `scrape_collector_register` (devices registers its own in `DevicesConfig.ready`).

Every label takes a bounded set of values: route patterns, not paths; statuses, kinds and
reasons from the code's own enumerations; never a company, a subject or a device.

Several processes (uvicorn workers, RQ workers and the work horses RQ forks for each job)
each count on their own. With PROMETHEUS_MULTIPROC_DIR set in the environment of every one
of them, prometheus-client keeps each process's values in a file of that folder, and a
scrape of any process sums them all. The folder is per host, shared only by processes that
see each other's ids (one PID namespace), and emptied before the processes start.

A forked work horse writes files of its own and then exits, so the folder would grow by a
file or two per job and every scrape would read them all. A scrape therefore first folds the
counters and histograms of processes that are gone into one archive file (sums stay the
same), and drops the websocket gauge of processes that are gone (their clients went with
them).
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format, which every Prometheus 2 and 3 reads; what generate_latest writes
# for names like ours (no characters past [a-zA-Z0-9_:]).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# --- What the processes count ----------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "kangaroo_http_requests",
    "HTTP requests answered, by URL pattern, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "kangaroo_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by URL pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_INGESTED = Counter(
    "kangaroo_events_ingested",
    "Events devices posted, by answer (created, duplicate, error) and, for created ones, kind.",
    ["status", "kind"],
)
WEBSOCKET_CLIENTS = Gauge(
    "kangaroo_websocket_clients",
    "Websocket connections open now (live dashboards, TV pages).",
    multiprocess_mode="livesum",
)
ENROLMENTS = Counter(
    "kangaroo_enrolments",
    "Photos the face engine enrolled, by outcome (ok, rejected) and the rejection's reason.",
    ["outcome", "reason"],
)
PURGED = Counter("kangaroo_purged", "Rows the retention purge removed, by rule.", ["rule"])
WEBHOOK_DELIVERIES = Counter(
    "kangaroo_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed, deferred).",
    ["outcome"],
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "kangaroo_webhook_endpoints_disabled",
    "Webhook endpoints disabled after a day of failures.",
)

# Every metric name a scrape can show, with the suffixes Prometheus adds. The dashboard and
# alert rules under ops/ are checked against this list (tests/test_ops_files.py).
SCRAPE_TIME_METRICS = {
    "kangaroo_jobs_queued": "gauge",
    "kangaroo_jobs_started": "gauge",
    "kangaroo_jobs_scheduled": "gauge",
    "kangaroo_jobs_failed": "gauge",
    "kangaroo_jobs_oldest_age_seconds": "gauge",
    "kangaroo_devices": "gauge",
    "kangaroo_boxes_lagging": "gauge",
    "kangaroo_box_gallery_lag_seconds_max": "gauge",
    "kangaroo_box_gallery_lag_changes_max": "gauge",
    "kangaroo_collector_up": "gauge",
}


def exported_names() -> set[str]:
    """The series names a scrape may show (`_total`, `_bucket`, ... included)."""
    names = set(SCRAPE_TIME_METRICS)
    for metric in (HTTP_REQUESTS, EVENTS_INGESTED, ENROLMENTS, PURGED, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS_DISABLED):
        names.update((f"{metric._name}_total", f"{metric._name}_created"))
    names.add(WEBSOCKET_CLIENTS._name)
    names.update(f"{HTTP_LATENCY._name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created"))
    return names


def method_label(method: str) -> str:
    """A client can send any method name; only the standard ones become label values."""
    return method if method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} else "other"


class RequestMetricsMiddleware:
    """Counts and times each request by its URL pattern (`resolver_match.route`), so
    `/api/v1/subjects/17` and `/api/v1/subjects/18` are one series. A request no pattern
    matched (a static file, an unknown address) counts as `unmatched`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name or "unnamed") if match is not None else "unmatched"
        method = method_label(request.method or "")
        HTTP_LATENCY.labels(route=route, method=method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        return response


class WebsocketClientsMiddleware:
    """ASGI middleware around the websocket router: a connection counts from the moment the
    server accepts it until its consumer ends, whichever consumer it is."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        accepted = False

        async def counting_send(message):
            nonlocal accepted
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                WEBSOCKET_CLIENTS.inc()
            await send(message)

        try:
            return await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                WEBSOCKET_CLIENTS.dec()


# --- Figures read at scrape time -------------------------------------------------------------

# Callables returning metric families (prometheus_client.core.*MetricFamily), called at each
# scrape. A failing one is logged and reported by `kangaroo_collector_up{collector=...} 0`.
_scrape_collectors: dict[str, Callable[[], Iterable[Metric]]] = {}


def scrape_collector_register(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    _scrape_collectors[name] = collect


class _ScrapeTimeCollector:
    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "kangaroo_collector_up", "1 if the scrape-time figures of this part could be read.", labels=["collector"]
        )
        for name, collect in sorted(_scrape_collectors.items()):
            try:
                families = list(collect())
            except Exception:
                logger.warning("Metrics collector %s failed", name, exc_info=True)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


class _DefaultRegistryCollector:
    """This process's own metrics (single-process mode, the embedded shape)."""

    def collect(self):
        return REGISTRY.collect()


def exposition(*, multiproc_dir: str | None = None) -> tuple[bytes, str]:
    """The text a scrape answers, and its content type."""
    directory = multiproc_dir if multiproc_dir is not None else os.environ.get(MULTIPROC_ENV, "")
    counted = CollectorRegistry(auto_describe=False)
    if directory:
        with _folder_lock(directory):
            compact(directory)
            multiprocess.MultiProcessCollector(counted, path=directory)
            body = generate_latest(counted)
    else:
        counted.register(_DefaultRegistryCollector())
        body = generate_latest(counted)
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_ScrapeTimeCollector())
    return body + generate_latest(scraped), CONTENT_TYPE


@contextmanager
def _folder_lock(directory: str):
    """One scrape at a time per folder: compaction replaces and deletes files another
    scrape would otherwise be reading."""
    with open(os.path.join(directory, ".scrape.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but alive
        return True
    return True


ARCHIVED_TYPES = ("counter", "histogram")


def compact(directory: str) -> None:
    """Fold the counter and histogram files of processes that have ended into one archive
    per type, and drop their live gauges. Caller holds `_folder_lock`."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = _file_pid(path)
        if pid is not None and not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)
    for kind in ARCHIVED_TYPES:
        dead = [
            path
            for path in glob.glob(os.path.join(directory, f"{kind}_*.db"))
            if (pid := _file_pid(path)) is not None and not _alive(pid)
        ]
        if not dead:
            continue
        archive = os.path.join(directory, f"{kind}_archive.db")
        totals: dict[str, float] = defaultdict(float)
        for path in ([archive] if os.path.exists(archive) else []) + dead:
            for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(path):
                totals[key] += value
        # Written aside, then swapped in, then the folded files removed: a crash between
        # the two steps double-counts what was folded, never loses it.
        staging = archive + ".tmp"
        if os.path.exists(staging):
            os.unlink(staging)
        merged = MmapedDict(staging)
        for key, value in totals.items():
            merged.write_value(key, value, 0.0)
        merged.close()
        os.replace(staging, archive)
        for path in dead:
            os.unlink(path)


def _file_pid(path: str) -> int | None:
    stem = os.path.basename(path)[: -len(".db")]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None
