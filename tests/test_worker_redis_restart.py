"""A Redis restart (an upgrade, a failover, a crash) while a real `manage.py rqworker
--with-scheduler` runs a job: the worker waits for Redis to come back and goes on taking
jobs, instead of quitting and leaving the queue to pile up until someone restarts it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import rq

from tests.events.conftest import REDIS_SERVER, PrivateRedis
from tests.jobs_for_tests import touch_after

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}; the worker's log:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture
def own_redis():
    if not Path(REDIS_SERVER).exists():
        pytest.skip("needs redis-server")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.mark.redis
def test_a_worker_rides_out_a_redis_restart_that_ends_while_its_job_runs(own_redis, tmp_path):
    log = tmp_path / "worker.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "kangaroo.settings",
        "REDIS_URL": own_redis.url,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "a-test-key-that-is-long-enough-for-django-to-accept-it-0123456789",
        "DEBUG": "false",
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "--with-scheduler", "default"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        queue = rq.Queue("default", connection=redis.Redis.from_url(own_redis.url))
        started, done = tmp_path / "started", tmp_path / "done"
        queue.enqueue(touch_after, 3.0, str(started), str(done))
        wait_for(started.exists, 120, "the job to start", log)

        # The job ends while Redis is down: the worker reports it, and its next look at
        # the queue, to a Redis that is not there.
        own_redis.stop()
        time.sleep(6)
        own_redis.start()
        wait_for(done.exists, 10, "the job to end", log)

        after = tmp_path / "after"
        rq.Queue("default", connection=redis.Redis.from_url(own_redis.url)).enqueue(
            touch_after, 0.0, str(tmp_path / "after-started"), str(after)
        )
        wait_for(lambda: after.exists() or worker.poll() is not None, 60, "the next job", log)
        assert worker.poll() is None, f"the worker quit:\n{log.read_text()}"
        assert after.exists()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
