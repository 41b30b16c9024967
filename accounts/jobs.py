"""Company jobs with a record the admin can show: state, progress (done of total), error.

`job_start` records a `Job` and queues it through `kangaroo.jobs.enqueue` (so retries,
backoff, timeout and the two shapes are the base's); `run_job` is what the queue runs: it
moves the record through running → done, or retrying / failed with the error, around the
real job function. A job function reports its progress with `job_progress(done=, total=)`.

`jobs_reconcile`, run by the periodic runner, settles what no job function could: a
worker killed mid-job (RQ retries or fails the job, the record follows), a work horse
killed by the system, or an embedded process stopped during an inline job.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import ACTIVE_JOB_STATES, Company, Job, JobState, User
from accounts.services import audit_record
from kangaroo import jobs as base
from kangaroo.jobs import DEFAULT_RETRY, DEFAULT_TIMEOUT, JobAlreadyQueued, Retry

logger = logging.getLogger(__name__)

_CURRENT_JOB: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_job", default=None)

# A record queued but unknown to the queue this long after is taken as lost.
LOST_AFTER = timedelta(minutes=5)
ERROR_MAX_LENGTH = 2000


def job_start(
    *,
    company: Company,
    actor: User | None,
    kind: str,
    func: Callable[..., Any] | str,
    args: tuple | list = (),
    kwargs: dict | None = None,
    key: str = "",
    total: int | None = None,
    retry: Retry = DEFAULT_RETRY,
    timeout: int = DEFAULT_TIMEOUT,
    queue: str = "default",
    detach: bool = False,
) -> Job:
    """Record a job of `company` and run `func(*args, **kwargs)` after commit.

    `func` is a module-level function (or its dotted path) taking ids. With a `key`, a
    second job with the same key in the same company, while the first is queued, running
    or waiting to retry, raises `JobAlreadyQueued` (409 `job_already_queued`) naming it.
    `detach`: see `kangaroo.jobs.enqueue`.
    """
    path = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    if key:
        _refuse_if_active(company, key)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                company=company,
                started_by=actor if isinstance(actor, User) else None,
                kind=kind,
                key=key,
                total=total,
                timeout=timeout,
                queue=queue,
            )
    except IntegrityError:  # another request won the race for this key
        _refuse_if_active(company, key)
        raise
    audit_record(company=company, actor=actor, action="job.start", obj=job, changes={"kind": kind})
    base.enqueue(
        run_job,
        job.pk,
        path,
        list(args),
        kwargs or {},
        queue=queue,
        job_id=job.queue_id,
        retry=retry,
        timeout=timeout,
        detach=detach,
    )
    return job


def _refuse_if_active(company: Company, key: str) -> None:
    active = Job.objects.for_company(company).filter(key=key, state__in=ACTIVE_JOB_STATES).first()
    if active is not None:
        raise JobAlreadyQueued(job=active.pk, state=active.state)


def run_job(job_id: int, func_path: str, args: list, kwargs: dict) -> None:
    """One attempt of a recorded job (what the queue runs)."""
    records = Job.objects.filter(pk=job_id)  # tenant: the job's own record, by the id it was queued with
    now = timezone.now()
    records.update(state=JobState.RUNNING, attempts=F("attempts") + 1, started_at=now, finished_at=None)
    token = _CURRENT_JOB.set(job_id)
    try:
        import_string(func_path)(*args, **kwargs)
    except Exception as exc:
        last = base.retries_left() == 0
        records.update(
            state=JobState.FAILED if last else JobState.RETRYING,
            error=_describe(exc),
            finished_at=timezone.now() if last else None,
        )
        raise
    finally:
        _CURRENT_JOB.reset(token)
    records.update(state=JobState.DONE, error="", finished_at=timezone.now())


def job_progress(*, done: int, total: int | None = None, failed: int | None = None) -> None:
    """Record how far the running job got (`failed`: how many of `done` failed); a no-op
    outside a recorded job."""
    job_id = _CURRENT_JOB.get()
    if job_id is None:
        return
    values: dict[str, Any] = {"done": max(done, 0)}
    if total is not None:
        values["total"] = max(total, 0)
    if failed is not None:
        values["failed"] = max(failed, 0)
    Job.objects.filter(pk=job_id).update(**values)  # tenant: the running job's own record


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_MAX_LENGTH]


def jobs_reconcile(*, now=None) -> int:
    """Retry or fail jobs abandoned by a dead worker, then bring every unfinished record in
    line with its queue. Returns how many records changed."""
    now = now or timezone.now()
    base.reconcile_abandoned(now=now.timestamp())
    changed = 0
    unfinished = Job.objects.filter(state__in=ACTIVE_JOB_STATES)  # tenant: the runner settles every company's
    for job in unfinished.order_by("pk"):
        update = _settle(job, now)
        if update:
            # Conditional on the state read, so a job that moved on meanwhile is left alone.
            changed += Job.objects.filter(pk=job.pk, state=job.state).update(**update)  # tenant: as above
    return changed


def _settle(job: Job, now) -> dict[str, Any] | None:
    stopped = {"state": JobState.FAILED, "finished_at": now}
    if settings.JOBS_INLINE:
        # An inline job runs inside a live process; past its timeout that process is gone.
        since = job.started_at or job.created_at
        if since < now - timedelta(seconds=job.timeout) - LOST_AFTER:
            return {**stopped, "error": "The process running the job stopped before it finished."}
        return None
    status = base.job_status(job.queue_id, queue=job.queue)
    if status in base.ENDED_BADLY_STATUSES:
        error = base.job_error(job.queue_id, queue=job.queue) or "The worker stopped during the job."
        return {**stopped, "error": error[:ERROR_MAX_LENGTH]}
    if status == "finished" and job.state != JobState.DONE:
        return {"state": JobState.DONE, "finished_at": now, "error": ""}
    if status in ("queued", "scheduled", "deferred") and job.state == JobState.RUNNING:
        return {"state": JobState.RETRYING, "error": "The worker stopped during the job; it will be retried."}
    if status is None and job.created_at < now - LOST_AFTER:
        return {**stopped, "error": "The job was lost from the queue."}
    return None
