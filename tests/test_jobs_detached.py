"""Detached jobs in the embedded shape: minutes of work (a bulk photo upload) run in a thread
of the server's process, so the request that queued them answers at once."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from kangaroo.jobs import enqueue
from subjects.models import Department

pytestmark = pytest.mark.django_db(transaction=True)

ran: list[tuple[str, str]] = []
GATE = threading.Event()


def long_job(company_id: int, name: str) -> None:
    GATE.wait(timeout=30)
    with transaction.atomic():
        Department.objects.create(company_id=company_id, name=name)  # tenant: the job's own company
        enqueue(follow_up, name)
    ran.append((f"{name} done", threading.current_thread().name))


def follow_up(name: str) -> None:
    ran.append((f"after {name}", threading.current_thread().name))


@pytest.fixture(autouse=True)
def _fresh():
    ran.clear()
    GATE.clear()
    yield
    GATE.set()


def test_a_detached_job_runs_in_its_own_thread_and_the_jobs_it_queues_after_it(tenant_a, settings):
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = True
    with transaction.atomic():
        enqueue(long_job, tenant_a.company.pk, "Night shift", detach=True)
        assert not [thread for thread in threading.enumerate() if thread.name == "job-long_job"]  # not before commit
    # The caller goes on while the job waits: it runs elsewhere.
    [worker] = [thread for thread in threading.enumerate() if thread.name == "job-long_job"]
    assert ran == []
    GATE.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    # Its follow-up ran after it, not inside it, in the same thread.
    assert ran == [("Night shift done", "job-long_job"), ("after Night shift", "job-long_job")]
    assert Department.objects.for_company(tenant_a.company).filter(name="Night shift").exists()


def test_without_detaching_the_job_runs_in_the_callers_thread(tenant_a, settings):
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False
    GATE.set()
    enqueue(long_job, tenant_a.company.pk, "Day shift", detach=True)
    caller = threading.current_thread().name
    assert ran == [("after Day shift", caller), ("Day shift done", caller)]  # inline: the follow-up at its commit
