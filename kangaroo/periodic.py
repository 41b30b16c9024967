"""The periodic runner: runs each task of the schedule once per interval, wherever it runs.

Why a loop over a database table, and not RQ's scheduler or cron: the embedded shape has
no Redis, so anything built on RQ would need a second way to run the same work there; a
table works the same on SQLite and PostgreSQL. Each task has a row with `next_run_at`. A
runner that finds a task due claims it with one conditional UPDATE
(`... SET next_run_at = now + interval WHERE name = ... AND next_run_at <= now`); the
database lets exactly one of two racing runners change the row (on PostgreSQL the second
UPDATE waits for the first to commit, re-reads the row and no longer matches; SQLite
writes one at a time), so two copies started by mistake, or a copy per host, still run
each task once per interval. The claim is taken before the run: a runner killed mid-task
loses that interval's run rather than repeating it twice, and the next interval runs again.
Runners' clocks should agree (NTP), since each claims with its own `now`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from kangaroo.models import PeriodicTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    name: str
    func: str  # dotted path of a function called without arguments
    every: int  # seconds


@dataclass(frozen=True)
class Run:
    name: str
    result: Any = None
    error: str = ""


def run_due(tasks: list[Task], *, now: datetime | None = None) -> list[Run]:
    """Run every task that is due and that this runner wins the claim for."""
    now = now or timezone.now()
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=task.name, next_run_at=now) for task in tasks], ignore_conflicts=True
    )
    runs = []
    for task in tasks:
        if claim(task, now=now):
            runs.append(_run(task))
    return runs


def claim(task: Task, *, now: datetime) -> bool:
    """Take the run of `task` for the interval starting at `now`; False if another runner
    has it. A row whose next run is further away than one interval (the interval was
    shortened since) is due as well."""
    interval = timedelta(seconds=task.every)
    due = Q(next_run_at__lte=now) | Q(next_run_at__gt=now + interval)
    return PeriodicTask.objects.filter(due, name=task.name).update(next_run_at=now + interval, last_started_at=now) == 1


def _run(task: Task) -> Run:
    try:
        result = import_string(task.func)()
        run = Run(task.name, result=result)
    except Exception as exc:  # one failing task must not stop the others, nor the runner
        logger.exception("Periodic task %s failed", task.name)
        run = Run(task.name, error=f"{type(exc).__name__}: {exc}"[:2000])
    PeriodicTask.objects.filter(name=task.name).update(
        last_finished_at=timezone.now(), last_error=run.error, runs=F("runs") + 1
    )
    return run
