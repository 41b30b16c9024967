"""The RQ workers `manage.py rqworker` runs (settings `RQ["WORKER_CLASS"]`): RQ's own, except
that each job runs, its success or failure handling included, under the id of the request
that queued it (`kangaroo.jobs.enqueue` puts it in the job's `meta`), so the job's log lines
and the request's share one id. A module of its own: web processes never import RQ's worker.
"""

from rq import SimpleWorker as RQSimpleWorker
from rq import Worker as RQWorker

from kangaroo import logs
from kangaroo.jobs import REQUEST_ID_META


class RequestIdMixin:
    def perform_job(self, job, queue) -> bool:
        # Called in the work horse, the forked process that runs one job.
        with logs.bound((job.meta or {}).get(REQUEST_ID_META)):
            return super().perform_job(job, queue)


class Worker(RequestIdMixin, RQWorker):
    """Forks a work horse per job, as RQ's default worker does."""


class SimpleWorker(RequestIdMixin, RQSimpleWorker):
    """Runs jobs in its own process (tests, one-off runs)."""
