"""The one way to run work in the background.

With REDIS_URL set, jobs go to django-rq queues and `manage.py rqworker --with-scheduler`
processes run them. Without it (the embedded default) they run inline, in the calling
process. Either way a job starts only after the surrounding transaction commits, so it
never sees rows that were rolled back, nor misses rows that are not yet committed.

Jobs take ids, load what they need and call a service; they never take model instances.

A job that may take minutes is queued with `detach=True`: in the embedded shape it runs in a
thread of the server's process rather than in the request that queued it, which answers at
once and shows the job's progress like a worker's (tests that check a job's outcome right
after the call turn this off with `JOBS_INLINE_DETACH = False`).

Every job has, in both shapes:

- **Retries with backoff** (`retry=Retry(max=3, backoff=(10, 60, 300))` by default). On a
  worker a failed attempt goes back to the queue after the next wait; RQ's scheduler
  (the `--with-scheduler` of the workers) releases it. Inline there is no queue to wait
  in and the caller is a request or a command that should not sleep for minutes, so the
  retries follow at once: that still rides out a deadlock or a dropped connection.
- **A timeout** (`timeout` seconds, default 600). A worker's work horse is stopped when it
  runs longer; an inline job runs in the caller's thread, which cannot be interrupted, so
  the timeout is not enforced there.
- **An optional job id** (`job_id`): while a job with that id is queued, waiting for a
  retry or running, another `enqueue` with the same id raises `JobAlreadyQueued`.
  Company jobs with a progress record (`accounts.jobs.job_start`) are also de-duplicated
  by a unique index, which holds under any race.

A job runs under the id of the request that queued it (kangaroo/logs.py): inline it is
still the request's own, in a detached thread it is set there, and on a worker it travels
in the job's `meta` and the worker (`kangaroo.worker`) sets it while the job runs. Its log lines
name the request that caused them.

A job queued while Redis cannot be reached (a restart, a failover) runs in the queuing
process instead, in a thread of its own one after another, with a warning: a recognised
visitor's arrival or a stranger's sighting announced then is not lost. A job with an id
still fails then, as its id could not be checked. Only a job that certainly never reached
Redis runs in place: one whose queuing went unanswered after it was sent (a read timeout, a
connection dropped mid-reply) is left to the workers, with an error naming it (see
`enqueue`). Queuing waits at most JOBS_REDIS_CONNECT_TIMEOUT_SECONDS to connect and
JOBS_REDIS_READ_TIMEOUT_SECONDS for an answer, so an unanswering Redis holds a request
about two seconds, not redis-py's five per command.

A worker killed outright (SIGKILL, a lost machine) leaves its job in RQ's started
registry, neither retried nor failed. `reconcile_abandoned`, run by the periodic runner,
retries such a job (if it has retries left) or fails it, once its worker has stopped
sending heartbeats.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kangaroo import errors, logs
from kangaroo.errors import KangarooError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600

# RQ's states in which a job still counts as "queued or running" for de-duplication.
ACTIVE_STATUSES = frozenset({"queued", "started", "scheduled", "deferred"})
ENDED_BADLY_STATUSES = frozenset({"failed", "stopped", "canceled"})
# The key of a queued job's `meta` that holds the id of the request that queued it.
REQUEST_ID_META = "request_id"


@dataclass(frozen=True)
class Retry:
    """`max` more attempts after the first, waiting `backoff[n]` seconds before attempt n+2
    (the last wait repeats when there are more retries than waits)."""

    max: int = 3
    backoff: tuple[int, ...] = (10, 60, 300)

    def waits(self) -> list[int]:
        """One wait per retry, in order."""
        if not self.backoff:
            return [0] * self.max
        return [self.backoff[min(n, len(self.backoff) - 1)] for n in range(self.max)]


DEFAULT_RETRY = Retry()
NO_RETRY = Retry(max=0)


class JobAlreadyQueued(KangarooError):
    """409 `job_already_queued`; `extra` names the unfinished job (shown in the envelope)."""

    def __init__(self, **extra: Any):
        super().__init__(errors.JOB_ALREADY_QUEUED, extra=extra)


# Inline runs set this; on a worker RQ's own job object answers.
_RETRIES_LEFT: contextvars.ContextVar[int | None] = contextvars.ContextVar("retries_left", default=None)


def retries_left() -> int:
    """How many more attempts follow if the running job fails now (0: this is the last)."""
    inline = _RETRIES_LEFT.get()
    if inline is not None:
        return inline
    from rq import get_current_job

    job = get_current_job()
    return (job.retries_left or 0) if job is not None else 0


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    retry: Retry = DEFAULT_RETRY,
    timeout: int = DEFAULT_TIMEOUT,
    detach: bool = False,
    **kwargs: Any,
) -> None:
    """Run `func(*args, **kwargs)` after the current transaction commits (see module doc).

    `detach`: a job that may take minutes (a bulk upload's hundreds of photos). On a worker
    this changes nothing; in the embedded shape it runs in a thread of its own, so the
    request that queued it answers at once (`JOBS_INLINE_DETACH`; see `_run_detached`)."""
    if job_id and not settings.JOBS_INLINE and job_status(job_id, queue=queue) in ACTIVE_STATUSES:
        raise JobAlreadyQueued(job_id=job_id)
    request_id = logs.current_request_id()

    def dispatch() -> None:
        if settings.JOBS_INLINE:
            later = _DETACHED_QUEUE.get()
            if later is not None:
                later.append((func, args, kwargs, retry))
            elif detach and settings.JOBS_INLINE_DETACH:
                threading.Thread(
                    target=_run_detached,
                    args=(func, args, kwargs, retry, request_id),
                    name=f"job-{func.__name__}",
                    daemon=True,
                ).start()
            else:
                with logs.bound(request_id):
                    _run_inline(func, args, kwargs, retry)
            return
        from rq import Retry as RQRetry

        rq_queue = get_queue(queue)
        # RQ writes the job and its place in the queue in one MULTI/EXEC; handed a pipeline
        # it only fills it (reading the server's version at most), so a failure before
        # `execute`, or while `execute` connects, certainly left nothing in Redis.
        pipeline = rq_queue.connection.pipeline()
        job = None
        try:
            job = rq_queue.enqueue_call(
                func,
                args=args,
                kwargs=kwargs,
                job_id=job_id,
                timeout=timeout,
                retry=RQRetry(max=retry.max, interval=retry.waits()) if retry.max else None,
                # RQ's own lines name a job by its description, which by default shows its arguments.
                description=f"{func.__module__}.{func.__qualname__}",
                meta={REQUEST_ID_META: request_id} if request_id else None,
                pipeline=pipeline,
            )
            pipeline.execute()
        except (RedisConnectionError, RedisTimeoutError) as problem:
            if job_id:
                raise
            if job is not None and not isinstance(problem, RedisUnreachable):
                # Sent, but unanswered: Redis may have queued it, and a worker would run it
                # again after this process had. Asking Redis whether the job is there does not
                # settle it: a Redis that just failed to answer in time will likely not answer
                # that either, and a "no" may come before Redis has read the bytes already
                # sent (it runs what it received even from a closed connection). So the job
                # is left to the queue: at worst it is lost, and this line names it.
                logger.error(
                    "Redis did not answer while job %s (%s) was queued (%s): left to the workers, not run here",
                    func.__name__,
                    job.id,
                    problem,
                )
                return
            logger.warning("Redis cannot be reached (%s): job %s runs in this process", problem, func.__name__)
            from rq import get_current_job

            if get_current_job() is not None:
                # Queued by a job on a worker: RQ's work horse exits as soon as that job ends,
                # which would kill a thread of it; run it now, before the job ends.
                with logs.bound(request_id):
                    _run_inline(func, args, kwargs, retry)
            else:
                _outage_runner().submit(_run_detached, func, args, kwargs, retry, request_id)

    transaction.on_commit(dispatch)


def _run_inline(func: Callable[..., Any], args: tuple, kwargs: dict, retry: Retry) -> None:
    name = getattr(func, "__name__", func)
    for attempt in range(retry.max + 1):
        left = retry.max - attempt
        token = _RETRIES_LEFT.set(left)
        try:
            func(*args, **kwargs)
            return
        except Exception:
            # Same contract as a worker: a failed job is logged, the request goes on.
            if left:
                logger.warning("Inline job %s failed; retrying (%d left)", name, left, exc_info=True)
            else:
                logger.exception("Inline job %s failed", name)
        finally:
            _RETRIES_LEFT.reset(token)


_OUTAGE_RUNNER: ThreadPoolExecutor | None = None
_OUTAGE_RUNNER_LOCK = threading.Lock()


def _outage_runner() -> ThreadPoolExecutor:
    """One thread per process for the jobs queued while Redis is away: they wait their turn
    rather than each taking a thread (and a database connection) of their own."""
    global _OUTAGE_RUNNER
    with _OUTAGE_RUNNER_LOCK:
        if _OUTAGE_RUNNER is None:
            _OUTAGE_RUNNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-outage")
        return _OUTAGE_RUNNER


# Inside a detached job: the jobs it queues, to run after it in its thread.
_DETACHED_QUEUE: contextvars.ContextVar[list | None] = contextvars.ContextVar("detached_queue", default=None)


def _run_detached(func: Callable[..., Any], args: tuple, kwargs: dict, retry: Retry, request_id: str | None) -> None:
    """A detached job in the embedded shape, in a thread of the server's process. The jobs
    it queues (a stored photo's enrolment) run after it, in order, as a worker would take
    them from the queue: run inside it, they would count in its time and hold its progress.
    A process stopped meanwhile leaves the job's record to `jobs_reconcile`, like any
    inline job."""
    from django.db import connections

    later: list = []
    token = _DETACHED_QUEUE.set(later)
    try:
        with logs.bound(request_id):  # a new thread starts without the request's context
            _run_inline(func, args, kwargs, retry)
            while later:
                _run_inline(*later.pop(0))
    finally:
        _DETACHED_QUEUE.reset(token)
        connections.close_all()  # this thread's own connections (or their pool's)


def get_queue(name: str = "default"):
    """The queue `enqueue` and the job records use, with a client of short timeouts (see
    `_client`). Workers (`manage.py rqworker`) do not use it: they connect through django-rq
    with RQ's own timeouts, longer than their blocking wait for the next job."""
    import django_rq
    from django_rq.settings import QUEUES

    # django-rq makes a new queue with a new Redis client, and its own connection pool, each
    # time it is asked: every job queued from a request opened (and dropped) a connection to
    # Redis and asked the server's version again. One queue per settings and process reuses
    # its pool's connections.
    key = (name, repr(sorted(QUEUES[name].items())))
    queue = _QUEUES.get(key)
    if queue is None:
        # "auto": `enqueue` already waits for the commit; django-rq must not wait again.
        queue = django_rq.get_queue(name, connection=_client(QUEUES[name]["URL"]), commit_mode="auto")
        queue = _QUEUES.setdefault(key, queue)
    return queue


_QUEUES: dict[tuple[str, str], Any] = {}


class RedisUnreachable(RedisConnectionError):
    """Redis could not be connected to (refused, no answer to the handshake): nothing was sent."""


def _client(url: str):
    """A Redis client for the request's side of the queue. A request should not stall on an
    unanswering Redis: JOBS_REDIS_CONNECT_TIMEOUT_SECONDS to connect and
    JOBS_REDIS_READ_TIMEOUT_SECONDS for each answer (redis-py waits 5 s by default). Nothing
    is retried: a MULTI/EXEC re-sent after an unanswered one could queue a job twice, and a
    job runs in place anyway when Redis cannot be reached."""
    import redis
    from redis.backoff import NoBackoff
    from redis.connection import Connection, parse_url
    from redis.retry import Retry as RedisRetry

    base = parse_url(url).get("connection_class", Connection)

    class QueueConnection(base):
        def connect_check_health(self, *args, **kwargs):
            # The socket's connect and the handshake (AUTH, SELECT, ...): no job is sent yet.
            try:
                return super().connect_check_health(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError) as problem:
                raise RedisUnreachable(str(problem)) from problem

    return redis.Redis.from_url(
        url,
        connection_class=QueueConnection,
        socket_connect_timeout=settings.JOBS_REDIS_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=settings.JOBS_REDIS_READ_TIMEOUT_SECONDS,
        retry=RedisRetry(NoBackoff(), 0),
    )


def job_status(job_id: str, *, queue: str = "default") -> str | None:
    """RQ's status of a queued job ("queued", "started", "failed", ...); None if unknown
    (never queued, expired, or the embedded shape, which has no queue)."""
    if settings.JOBS_INLINE:
        return None
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        status = Job.fetch(job_id, connection=get_queue(queue).connection).get_status(refresh=False)
    except NoSuchJobError:
        return None
    return str(getattr(status, "value", status)) if status else None


def job_error(job_id: str, *, queue: str = "default") -> str:
    """The last line of a failed RQ job's error, or ""."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        result = Job.fetch(job_id, connection=get_queue(queue).connection).latest_result()
    except NoSuchJobError:
        return ""
    text = (getattr(result, "exc_string", None) or "").strip()
    return text.splitlines()[-1] if text else ""


def reconcile_abandoned(*, now: float | None = None) -> list[str]:
    """Retry or fail the jobs whose worker died mid-job; returns their ids.

    A live worker renews its running job's entry in RQ's started registry at least every
    90 seconds; an entry older than that (`now`, seconds since the epoch, defaults to the
    current time) belongs to a worker that was killed. RQ's own clean-up then puts the
    job back in its queue if it has retries left (after its backoff) or moves it to the
    failed registry. Workers do this themselves only every ten minutes, and only while one
    is alive, hence this pass on the periodic runner.
    """
    if settings.JOBS_INLINE:
        return []
    timestamp = now if now is not None else time.time()
    abandoned = []
    for name in settings.RQ_QUEUES:
        registry = get_queue(name).started_job_registry
        expired = registry.get_expired_job_ids(timestamp)
        if expired:
            registry.cleanup(timestamp)
            logger.warning("Worker stopped mid-job; retried or failed: %s", ", ".join(expired))
            abandoned.extend(expired)
    return abandoned


def queue_metrics():
    """Scrape-time figures of each queue (`kangaroo.metrics`): jobs waiting, running,
    waiting out a retry's backoff, failed, and how long the job at the head has waited.
    Read from Redis with the probes' short timeouts; nothing in the embedded shape."""
    if settings.JOBS_INLINE:
        return []
    from datetime import UTC, datetime

    from prometheus_client.core import GaugeMetricFamily
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from kangaroo.ops import probe_client

    families = {
        name: GaugeMetricFamily(f"kangaroo_jobs_{name}", text, labels=["queue"])
        for name, text in [
            ("queued", "Jobs waiting in the queue."),
            ("started", "Jobs a worker is running."),
            ("scheduled", "Jobs waiting out a retry's backoff."),
            ("failed", "Jobs in the failed registry (out of retries)."),
            ("oldest_age_seconds", "How long the job at the head of the queue has waited (0: empty)."),
        ]
    }
    now = datetime.now(UTC)
    for name, config in settings.RQ_QUEUES.items():
        queue = Queue(name, connection=probe_client(config["URL"]))
        families["queued"].add_metric([name], queue.count)
        families["started"].add_metric([name], queue.started_job_registry.count)
        families["scheduled"].add_metric([name], queue.scheduled_job_registry.count)
        families["failed"].add_metric([name], queue.failed_job_registry.count)
        age = 0.0
        for job_id in queue.get_job_ids(0, 1):
            try:
                enqueued_at = Job.fetch(job_id, connection=queue.connection).enqueued_at
            except NoSuchJobError:  # taken and finished (and expired) meanwhile
                continue
            if enqueued_at is not None:
                enqueued_at = enqueued_at if enqueued_at.tzinfo else enqueued_at.replace(tzinfo=UTC)
                age = max((now - enqueued_at).total_seconds(), 0.0)
        families["oldest_age_seconds"].add_metric([name], age)
    return list(families.values())
