"""Backoff: doubling waits, capped, drawn from their upper half."""

from __future__ import annotations

import pytest

from kangaroo_box.backoff import Backoff


def test_the_wait_doubles_up_to_the_cap():
    backoff = Backoff(base=1, cap=10, rand=lambda: 1.0)
    waits = [backoff.failed(0) for _ in range(6)]
    assert waits == [1, 2, 4, 8, 10, 10]


def test_the_jitter_keeps_at_least_half_the_wait():
    lows = Backoff(base=2, cap=60, rand=lambda: 0.0)
    assert [lows.failed(0) for _ in range(3)] == [1, 2, 4]
    middle = Backoff(base=2, cap=60, rand=lambda: 0.5)
    assert [middle.failed(0) for _ in range(3)] == [1.5, 3, 6]


def test_random_waits_stay_between_half_and_the_whole():
    backoff = Backoff(base=1, cap=8)
    for failures in range(1, 30):
        wait = backoff.failed(100.0)
        nominal = min(8, 2 ** (failures - 1))
        assert nominal / 2 <= wait <= nominal
        assert backoff.retry_at == 100.0 + wait


def test_it_waits_until_the_retry_time_and_a_success_resets_it():
    backoff = Backoff(base=4, cap=60, rand=lambda: 1.0)
    assert backoff.ready(0)
    backoff.failed(10)
    backoff.failed(10)
    assert not backoff.ready(17.9) and backoff.ready(18)
    backoff.succeeded()
    assert backoff.ready(10) and backoff.failed(20) == 4


def test_a_portals_retry_after_is_honoured_up_to_the_cap():
    backoff = Backoff(base=1, cap=30, rand=lambda: 0.0)
    assert backoff.failed(0, at_least=12) == 12
    assert backoff.failed(0, at_least=3600) == 30


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=10, cap=5)
