"""Marks devices offline when their heartbeats stop: `manage.py devices_watch`.

Why a loop and not a queue scheduler: RQ has no built-in periodic scheduler, and adding
one (rq-scheduler, cron in containers) would be a second moving part for a single cheap
query. A loop that sleeps works the same in both shapes: `make run` starts it next to the
web server (embedded, SQLite), production runs it as one more process next to the
rqworkers, or runs `--once` from cron. Running two by mistake is harmless: a device is
flipped offline only if it is still recorded online, row by row, so each change is
recorded once.

The interval is a fraction of DEVICE_OFFLINE_AFTER, so an offline device is announced at
most a third of the grace period late.
"""

from __future__ import annotations

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from devices.jobs import devices_mark_offline

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Mark devices offline when their heartbeats stop (loops; --once for cron)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one pass and exit (for cron).")
        parser.add_argument(
            "--interval",
            type=int,
            default=None,
            help="Seconds between passes (default: a third of DEVICE_OFFLINE_AFTER).",
        )

    def handle(self, *args, once: bool = False, interval: int | None = None, **options):
        interval = interval or max(settings.DEVICE_OFFLINE_AFTER // 3, 1)
        if once:  # cron: a failure must end with a non-zero exit, so it is not caught here
            self._report(devices_mark_offline())
            return
        self.running = True
        # Stop between passes on SIGTERM (container stop, `make run` ending), never halfway.
        signal.signal(signal.SIGTERM, self._stop)
        self.stdout.write(f"devices_watch: checking every {interval} s")
        while self.running:
            close_old_connections()  # a long-lived process must not keep a dead connection
            self._pass()
            deadline = time.monotonic() + interval
            while self.running and time.monotonic() < deadline:
                time.sleep(min(1.0, interval))

    def _pass(self) -> None:
        try:
            self._report(devices_mark_offline())
        except Exception:  # a database hiccup must not end the watcher; the next pass retries
            logger.exception("devices_watch: pass failed")

    def _report(self, count: int) -> None:
        if count:
            self.stdout.write(f"devices_watch: {count} device(s) went offline")

    def _stop(self, signum, frame) -> None:
        self.running = False
