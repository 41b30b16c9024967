"""A job queued while Redis cannot be reached (restarting, failing over) is not lost: it
runs in the process that queued it, with a warning, as it would in the embedded shape."""

from __future__ import annotations

import socket
import time

import pytest
from django.db import transaction

from kangaroo.jobs import JobAlreadyQueued, enqueue
from subjects.models import Department
from tests.jobs_for_tests import create_department_job


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
