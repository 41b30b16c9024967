"""The RQ workers `manage.py rqworker` runs (settings `RQ["WORKER_CLASS"]`): RQ's own, except
that each job runs, its success or failure handling included, under the id of the request
that queued it (`kangaroo.jobs.enqueue` puts it in the job's `meta`), so the job's log lines
and the request's share one id. A module of its own: web processes never import RQ's worker.

A Redis restart (an upgrade, a failover, a crash) takes seconds, and RQ's worker quits at the
first command that finds Redis gone: a job that ends meanwhile, a look at the queue. Left
so, the queue piles up until someone restarts every worker. Each command of a worker (its
work horses and scheduler included: they copy its connection's settings) instead waits for
Redis to come back, for about a minute, before it gives up as RQ would.
"""

from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import SimpleWorker as RQSimpleWorker
from rq import Worker as RQWorker

from kangaroo import logs
from kangaroo.jobs import REQUEST_ID_META

# 0.25 s, 0.5 s, 1 s ... then every 4 s: about 60 s in all.
REDIS_RESTART_RETRY = Retry(ExponentialBackoff(cap=4.0, base=0.25), retries=18)


class RedisRestartMixin:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for connection in {id(c): c for c in [self.connection, *(q.connection for q in self.queues)]}.values():
            connection.set_retry(REDIS_RESTART_RETRY)


class RequestIdMixin:
    def perform_job(self, job, queue) -> bool:
        # Called in the work horse, the forked process that runs one job.
        with logs.bound((job.meta or {}).get(REQUEST_ID_META)):
            return super().perform_job(job, queue)


class Worker(RequestIdMixin, RedisRestartMixin, RQWorker):
    """Forks a work horse per job, as RQ's default worker does."""


class SimpleWorker(RequestIdMixin, RedisRestartMixin, RQSimpleWorker):
    """Runs jobs in its own process (tests, one-off runs)."""
