"""The periodic runner: every task once per interval, even with two runners racing."""

import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from kangaroo.models import PeriodicTask
from kangaroo.periodic import Task, run_due
from kangaroo.schedule import periodic_tasks
from tests import jobs_for_tests

COUNT = Task("tests.count", "tests.jobs_for_tests.periodic_count", every=60)
FAIL = Task("tests.fail", "tests.jobs_for_tests.periodic_fail", every=60)
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _runs():
    jobs_for_tests.PERIODIC_RUNS.clear()
    yield jobs_for_tests.PERIODIC_RUNS
    jobs_for_tests.PERIODIC_RUNS.clear()


@pytest.mark.django_db
def test_a_task_runs_at_once_then_once_per_interval(_runs):
    assert [run.name for run in run_due([COUNT], now=NOW)] == ["tests.count"]
    assert run_due([COUNT], now=NOW) == []
    assert run_due([COUNT], now=NOW + timedelta(seconds=59)) == []
    assert [run.result for run in run_due([COUNT], now=NOW + timedelta(seconds=60))] == [2]
    row = PeriodicTask.objects.get(name="tests.count")
    assert (row.runs, row.next_run_at, row.last_error) == (2, NOW + timedelta(seconds=120), "")


@pytest.mark.django_db
def test_a_shortened_interval_takes_effect_at_once(_runs):
    run_due([Task(COUNT.name, COUNT.func, every=3600)], now=NOW)
    assert len(run_due([COUNT], now=NOW + timedelta(seconds=60))) == 1


@pytest.mark.django_db
def test_a_failing_task_is_recorded_and_does_not_stop_the_others(_runs, caplog):
    runs = run_due([FAIL, COUNT], now=NOW)
    assert [(run.name, run.error) for run in runs] == [
        ("tests.fail", "RuntimeError: the task broke"),
        ("tests.count", ""),
    ]
    assert PeriodicTask.objects.get(name="tests.fail").last_error == "RuntimeError: the task broke"
    assert "Periodic task tests.fail failed" in caplog.text
    assert run_due([FAIL], now=NOW + timedelta(seconds=60))[0].error  # and it runs again next interval


@pytest.mark.django_db
def test_once_runs_the_schedule_and_a_failure_is_a_nonzero_exit(monkeypatch, capsys, _runs):
    monkeypatch.setattr("kangaroo.management.commands.periodic.periodic_tasks", lambda: [COUNT, FAIL])
    with pytest.raises(CommandError, match=r"tests\.fail: RuntimeError: the task broke"):
        call_command("periodic", "--once")
    assert "tests.count: 1" in capsys.readouterr().out
    call_command("periodic", "--once")  # nothing due: nothing runs, nothing fails
    assert _runs == ["count", "fail"]


@pytest.mark.django_db
def test_the_loop_survives_a_failing_pass_and_stops_on_request(monkeypatch, capsys):
    from kangaroo.management.commands import periodic

    passes = []
    command = periodic.Command()

    def fake_run_due(tasks):
        passes.append(len(tasks))
        if len(passes) == 1:
            raise RuntimeError("database went away")
        return []

    def fake_sleep(seconds):
        if len(passes) >= 3:
            command._stop(None, None)  # as SIGTERM would

    monkeypatch.setattr(periodic, "run_due", fake_run_due)
    monkeypatch.setattr(periodic.time, "sleep", fake_sleep)
    monkeypatch.setattr(periodic.signal, "signal", lambda *args: None)
    monkeypatch.setattr(periodic, "close_old_connections", lambda: None)
    call_command(command, "--tick", "1")
    assert passes == [len(periodic_tasks())] * 3
    assert "pass failed: database went away" in capsys.readouterr().err


def test_the_schedule_names_importable_functions():
    from django.utils.module_loading import import_string

    for task in periodic_tasks():
        assert callable(import_string(task.func)) and task.every >= 1, task.name


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runners_racing_on_postgresql_run_each_interval_exactly_once(_runs):
    """Two runners (threads, each with its own database connection) wake at the same
    instant, interval after interval; the task runs once per interval."""
    intervals = 25
    barrier = threading.Barrier(2)
    problems = []

    def runner():
        try:
            for n in range(intervals):
                barrier.wait(timeout=30)
                run_due([COUNT], now=NOW + timedelta(seconds=60 * n))
        except Exception as exc:  # pragma: no cover - reported below
            problems.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert problems == []
    assert _runs == ["count"] * intervals
    assert PeriodicTask.objects.get(name="tests.count").runs == intervals
