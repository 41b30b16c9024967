"""A job queued while Redis cannot be reached (restarting, failing over) is not lost: it
runs in the process that queued it, with a warning, as it would in the embedded shape."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import transaction

from kangaroo.jobs import JobAlreadyQueued, enqueue
from subjects.models import Department
from tests import test_jobs
from tests.conftest import redis_test_url
from tests.jobs_for_tests import create_department_job

rq_queue = test_jobs.rq_queue  # the fixture: a queue of its own on the test Redis


def unreachable_redis() -> str:
    with socket.socket() as probe:  # a free port: nothing answers there
        probe.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


@pytest.fixture
def redis_down(settings):
    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": unreachable_redis(), "DEFAULT_TIMEOUT": 60}}


@pytest.mark.django_db(transaction=True)
def test_a_job_queued_while_redis_is_down_runs_in_the_queuing_process(tenant_a, redis_down, caplog):
    with transaction.atomic():
        enqueue(create_department_job, tenant_a.company.pk, "Queued in the outage")  # the request goes on

    deadline = time.monotonic() + 30
    while not Department.objects.for_company(tenant_a.company).filter(name="Queued in the outage").exists():
        assert time.monotonic() < deadline, f"the job never ran:\n{caplog.text}"
        time.sleep(0.1)
    assert "Redis cannot be reached" in caplog.text
    assert "job create_department_job runs in this process" in caplog.text
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.django_db(transaction=True)
def test_a_job_with_an_id_still_fails_while_redis_is_down(tenant_a, redis_down):
    # Its id cannot be checked against the queue, so it is not run twice by accident.
    from redis.exceptions import ConnectionError as RedisConnectionError

    with pytest.raises((RedisConnectionError, JobAlreadyQueued)):
        enqueue(create_department_job, tenant_a.company.pk, "With an id", job_id="dept-with-an-id")
    assert not Department.objects.for_company(tenant_a.company).filter(name="With an id").exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_queued_by_a_job_on_a_worker_runs_before_that_job_ends(tenant_a, redis_down, monkeypatch):
    """RQ's work horse exits when its job ends: a job the job queued meanwhile must not be
    left to a thread of it."""
    import rq

    monkeypatch.setattr(rq, "get_current_job", lambda: object())  # as inside a worker's job
    with transaction.atomic():
        enqueue(create_department_job, tenant_a.company.pk, "Queued by a job")
    # Done by the time enqueue's commit hook returned: no thread to wait for.
    assert Department.objects.for_company(tenant_a.company).filter(name="Queued by a job").exists()


def wait_for_jobs_run_in_place() -> None:
    from kangaroo.jobs import _outage_runner

    _outage_runner().submit(lambda: None).result(timeout=60)  # one thread: runs after those before it


@pytest.fixture
def unanswering_redis(settings):
    """A server that accepts connections and never answers, as a hung Redis (or a host whose
    Redis froze) does."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # the kernel completes the connections; nobody reads from them
        url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        settings.JOBS_INLINE = False
        settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 60}}
        yield


@pytest.mark.django_db(transaction=True)
def test_an_unanswering_redis_holds_the_request_about_two_seconds_and_the_job_runs_in_place(
    tenant_a, unanswering_redis, caplog
):
    started = time.monotonic()
    with transaction.atomic():
        enqueue(create_department_job, tenant_a.company.pk, "Queued to a hung Redis")
    held = time.monotonic() - started
    # redis-py's default is 5 s per command; the request's thread gives up after the read timeout.
    assert held < 3.5, held
    wait_for_jobs_run_in_place()
    # Redis never answered the connection's first words: nothing of the job was sent, so it runs here.
    assert Department.objects.for_company(tenant_a.company).filter(name="Queued to a hung Redis").exists()
    assert "job create_department_job runs in this process" in caplog.text


class SilencingProxy:
    """A TCP proxy in front of the test Redis that forwards everything, but stops passing
    Redis' answers back once the client has sent a job (RQ's RPUSH of its id): the job
    reaches Redis and its queuing looks like a read timeout to the client."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.silent = threading.Event()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.getsockname()[1]

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            threading.Thread(target=self.pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, False), daemon=True).start()

    def pump(self, source: socket.socket, target: socket.socket, to_redis: bool):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if to_redis and b"RPUSH" in data:
                self.silent.set()
            if to_redis or not self.silent.is_set():
                target.sendall(data)

    def close(self):
        for each in self.sockets:
            each.close()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_queuing_went_unanswered_is_left_to_the_workers_not_also_run_in_place(
    tenant_a, rq_queue, settings, caplog
):
    """A read timeout after the job was sent: Redis may have queued it. Running it here too
    would run it twice, once here and once on a worker."""
    from urllib.parse import urlsplit

    from rq import SimpleWorker

    target = urlsplit(redis_test_url())
    proxy = SilencingProxy((target.hostname, target.port or 6379))
    try:
        url = f"redis://127.0.0.1:{proxy.port}{target.path}"
        settings.RQ_QUEUES = {rq_queue.name: {"URL": url, "DEFAULT_TIMEOUT": 60}}
        with transaction.atomic():
            enqueue(create_department_job, tenant_a.company.pk, "Sent once", queue=rq_queue.name)
        wait_for_jobs_run_in_place()
    finally:
        proxy.close()
    assert proxy.silent.is_set()
    departments = Department.objects.for_company(tenant_a.company).filter(name="Sent once")
    assert not departments.exists()  # not run here
    assert rq_queue.count == 1  # but queued, for a worker
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and rq_queue.job_ids[0] in errors[0] and "left to the workers" in errors[0]
    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)
    assert departments.count() == 1
