"""A box that has read the log up to N never misses a change committed later with a number
at or below N, even when two writers of one company race (PostgreSQL, real connections).

The danger this guards against: writer A takes number 1, writer B takes 2 and commits
first, a reader sees 2 and moves its cursor there, then A commits 1 behind the cursor. The
company's counter row, locked by the appending transaction, makes B wait for A's commit
before it can take a number, so numbers become visible in order.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, transaction

from subjects import services
from subjects.models import GalleryChange
from tests.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def read_after(company, cursor: int) -> list[int]:
    """What a box reading after `cursor` gets, on its own connection."""
    rows = GalleryChange.objects.for_company(company).filter(sequence__gt=cursor).order_by("sequence")
    return list(rows.values_list("sequence", flat=True))


def waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def eventually(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_a_second_writer_waits_for_the_first_and_a_reader_never_skips_a_number(tenant_a):
    company = tenant_a.company
    a_appended, a_may_commit, b_started = threading.Event(), threading.Event(), threading.Event()
    pids = {}

    def writer_a():
        with transaction.atomic():
            subject = services.subject_create(company=company, actor=None, name="A", job_number="E1")
            a_appended.set()
            assert a_may_commit.wait(60)
        return subject.pk

    def writer_b():
        assert a_appended.wait(60)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids["b"] = cursor.fetchone()[0]
        b_started.set()
        return services.subject_create(company=company, actor=None, name="B", job_number="E2").pk

    def reader_and_conductor():
        assert b_started.wait(60)
        eventually(lambda: waiting_on_a_lock(pids["b"]), "writer B waits for A's counter lock")
        # A holds number 1 uncommitted, B waits: a reader sees nothing yet, its cursor stays.
        seen_before = read_after(company, 0)
        a_may_commit.set()
        eventually(lambda: len(read_after(company, 0)) == 2, "both changes committed")
        return seen_before, read_after(company, 0)

    a, b, reader = run_together(writer_a, writer_b, reader_and_conductor)
    assert not isinstance(reader, Exception), reader
    seen_before, seen_after = reader
    assert seen_before == []
    assert seen_after == [1, 2]
    log = dict(GalleryChange.objects.for_company(company).values_list("subject_ref", "sequence"))
    assert log == {a: 1, b: 2}  # B, blocked until A committed, numbered after it


def test_racing_writers_and_a_polling_reader_see_every_number_once_in_order(tenant_a):
    company = tenant_a.company
    writers, per_writer = 4, 15
    done = threading.Event()

    def writer(index):
        def run():
            rng = random.Random(index)
            for n in range(per_writer):
                with transaction.atomic():
                    services.subject_create(
                        company=company, actor=None, name=f"W{index}-{n}", job_number=f"E{index}-{n}"
                    )
                    time.sleep(rng.random() * 0.01)  # commit at a random moment after taking a number
            return per_writer

        return run

    def reader():
        cursor, seen = 0, []
        while True:
            finished = done.is_set()
            for sequence in read_after(company, cursor):
                seen.append(sequence)
                cursor = sequence
            if finished:
                return seen

    def writers_then_stop():
        results = run_together(*(writer(i) for i in range(writers)))
        done.set()
        return results

    results, seen = run_together(writers_then_stop, reader)
    assert results == [per_writer] * writers
    assert seen == list(range(1, writers * per_writer + 1))
