"""Runs the periodic tasks of `kangaroo/schedule.py`: `manage.py periodic` (loops) or
`manage.py periodic --once` (from cron).

One process for all periodic work, in both shapes: `make run` starts it next to the web
server; production runs it as one more long-lived process next to the RQ workers, or runs
`--once` from cron every minute. Two copies by mistake are harmless: each task's run for an
interval is claimed in the database by exactly one of them (see `kangaroo/periodic.py`).
"""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from kangaroo.periodic import Run, run_due
from kangaroo.schedule import periodic_tasks


class Command(BaseCommand):
    help = "Run the periodic tasks (loops; --once runs what is due and exits, for cron)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run the due tasks once and exit (for cron).")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between looks at the schedule.")

    def handle(self, *args, once: bool = False, tick: float = 5.0, **options):
        if once:
            failed = [run for run in self._pass() if run.error]
            if failed:  # cron must see a failure as a non-zero exit
                raise CommandError("; ".join(f"{run.name}: {run.error}" for run in failed))
            return
        self.running = True
        # Stop between passes on SIGTERM (container stop, `make run` ending), never halfway.
        signal.signal(signal.SIGTERM, self._stop)
        tasks = ", ".join(f"{task.name} every {task.every} s" for task in periodic_tasks())
        self.stdout.write(f"periodic: {tasks}")
        while self.running:
            close_old_connections()  # a long-lived process must not keep a dead connection
            try:
                self._pass()
            except Exception as exc:  # the database went away: the next pass tries again
                self.stderr.write(f"periodic: pass failed: {exc}")
            deadline = time.monotonic() + tick
            while self.running and time.monotonic() < deadline:
                time.sleep(min(1.0, tick))

    def _pass(self) -> list[Run]:
        runs = run_due(periodic_tasks())
        for run in runs:
            if run.error:
                self.stderr.write(f"periodic: {run.name} failed: {run.error}")
            elif run.result:
                self.stdout.write(f"periodic: {run.name}: {run.result}")
        return runs

    def _stop(self, signum, frame) -> None:
        self.running = False
