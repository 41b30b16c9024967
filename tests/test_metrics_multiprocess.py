"""Several processes, one scrape: uvicorn workers and RQ workers (and the work horse RQ forks
for every job) count on their own, into PROMETHEUS_MULTIPROC_DIR; /metrics of any of them
answers the sum. Processes that ended keep counting in that sum, folded into one archive file
per type, so the folder does not grow by a file per job; their open-socket gauge goes with them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.test_ops import TOKEN, scrape, value

WRITER = """
import sys
from kangaroo import metrics

created, sockets, stay = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "stay"
metrics.EVENTS_INGESTED.labels(status="created", kind="recognized").inc(created)
metrics.HTTP_LATENCY.labels(route="api/v1/device/events", method="POST").observe(0.02)
metrics.WEBSOCKET_CLIENTS.inc(sockets)
print("counted", flush=True)
if stay:
    sys.stdin.readline()
"""


def writer(directory, created: int, sockets: int, *, stay: bool = False) -> subprocess.Popen:
    env = {"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(settings.BASE_DIR)}
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(created), str(sockets), "stay" if stay else "exit"],
        env=env,
        cwd=settings.BASE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "counted"
    return process


def ended(process: subprocess.Popen) -> None:
    process.communicate(input="\n", timeout=30)
    assert process.returncode == 0


@pytest.mark.django_db
def test_one_scrape_sums_every_process_and_keeps_what_ended_ones_counted(client, settings, tmp_path, monkeypatch):
    settings.METRICS_TOKEN = TOKEN
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    first = writer(tmp_path, created=3, sockets=1)
    ended(first)
    second = writer(tmp_path, created=4, sockets=2, stay=True)
    try:
        samples = scrape(client)
        assert value(samples, "kangaroo_events_ingested_total", status="created", kind="recognized") == 7
        latency = {"route": "api/v1/device/events", "method": "POST"}
        assert value(samples, "kangaroo_http_request_duration_seconds_count", **latency) == 2
        assert value(samples, "kangaroo_websocket_clients") == 2  # the ended process's socket went with it
        files = set(os.listdir(tmp_path))
        assert f"counter_{first.pid}.db" not in files and f"gauge_livesum_{first.pid}.db" not in files
        assert {"counter_archive.db", "histogram_archive.db", f"counter_{second.pid}.db"} <= files
    finally:
        ended(second)

    samples = scrape(client)
    assert value(samples, "kangaroo_events_ingested_total", status="created", kind="recognized") == 7
    assert value(samples, "kangaroo_websocket_clients") == 0
    assert {name for name in os.listdir(tmp_path) if name.endswith(".db")} == {
        "counter_archive.db",
        "histogram_archive.db",
    }

    ended(writer(tmp_path, created=5, sockets=0))  # folded into the existing archive
    samples = scrape(client)
    assert value(samples, "kangaroo_events_ingested_total", status="created", kind="recognized") == 12
    assert value(samples, "kangaroo_http_request_duration_seconds_count", **latency) == 3
