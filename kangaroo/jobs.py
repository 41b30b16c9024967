"""The one way to run work in the background.

With REDIS_URL set, jobs go to django-rq queues and `manage.py rqworker` processes run
them. Without it (the embedded default) they run inline, in the calling process. Either
way a job starts only after the surrounding transaction commits, so it never sees rows
that were rolled back, nor misses rows that are not yet committed.

Jobs take ids, load what they need and call a service; they never take model instances.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(func: Callable[..., Any], *args: Any, queue: str = "default", **kwargs: Any) -> None:
    def dispatch() -> None:
        if settings.JOBS_INLINE:
            try:
                func(*args, **kwargs)
            except Exception:
                # Same contract as a worker: a failed job is logged, the request goes on.
                logger.exception("Inline job %s failed", getattr(func, "__name__", func))
            return
        import django_rq

        django_rq.get_queue(queue).enqueue(func, *args, **kwargs)

    transaction.on_commit(dispatch)
