"""A job as real ones are written: takes ids, loads, calls a service."""

import logging
import os
import time
from pathlib import Path

from accounts.jobs import job_progress
from accounts.models import Company
from subjects.services import department_create


def create_department_job(company_id: int, name: str) -> None:
    company = Company.objects.get(pk=company_id)
    department_create(company=company, actor=None, name=name)


def logged_department_job(company_id: int, name: str) -> None:
    """Creates the department and says so in the log, as a job's lines would."""
    logging.getLogger("tests.jobs").info("creating department %s", name)
    create_department_job(company_id, name)


def count_attempt(path: str) -> int:
    """Which attempt this is, counted in a file, so it works across worker processes."""
    counter = Path(path)
    attempt = int(counter.read_text() or 0) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    return attempt


def flaky_department_job(company_id: int, name: str, counter: str, failures: int) -> None:
    """Fails its first `failures` attempts, then creates the department, reporting progress."""
    attempt = count_attempt(counter)
    job_progress(done=0, total=2)
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails")
    job_progress(done=1)
    create_department_job(company_id, name)
    job_progress(done=2)


def slow_first_attempt_job(company_id: int, name: str, counter: str, pid_file: str) -> None:
    """The first attempt writes its process id and hangs (to be killed); later ones finish."""
    attempt = count_attempt(counter)
    if attempt == 1:
        Path(f"{pid_file}.part").write_text(str(os.getpid()))
        os.replace(f"{pid_file}.part", pid_file)  # whole, or not there yet
        time.sleep(300)
    create_department_job(company_id, name)


# Periodic tasks for the runner's tests: they count their runs in this list.
PERIODIC_RUNS: list[str] = []


def periodic_count() -> int:
    PERIODIC_RUNS.append("count")
    return len(PERIODIC_RUNS)


def periodic_fail() -> None:
    PERIODIC_RUNS.append("fail")
    raise RuntimeError("the task broke")


def touch_after(seconds: float, started: str, done: str) -> None:
    """Marks `started`, works `seconds`, then marks `done`: a job to be caught mid-run."""
    Path(started).touch()
    time.sleep(seconds)
    Path(done).touch()
