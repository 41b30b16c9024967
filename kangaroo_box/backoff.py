"""Exponential backoff with jitter, for talking to a portal that is down or overloaded.

The wait doubles with each failure, from `base` up to `cap` seconds, and is drawn from its
upper half at random ("equal jitter"): boxes that lost the portal together do not all come
back in the same second when it returns, and none waits less than half the nominal delay,
so a dead portal is not hammered.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, *, base: float = 1.0, cap: float = 60.0, rand: Callable[[], float] = random.random):
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rand = rand
        self.failures = 0
        self.retry_at = 0.0  # monotonic seconds; 0: no wait

    def nominal(self) -> float:
        """The delay before jitter after the failures so far."""
        if not self.failures:
            return 0.0
        # min() before the power would overflow nothing either, but 2**1000 is pointless work.
        return min(self.cap, self.base * 2 ** min(self.failures - 1, 32))

    def failed(self, now: float, *, at_least: float = 0.0) -> float:
        """Record a failure at `now`; answers the wait before the next try (at least
        `at_least`, e.g. a portal's Retry-After)."""
        self.failures += 1
        nominal = self.nominal()
        delay = max(nominal / 2 + self._rand() * nominal / 2, min(at_least, self.cap))
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.retry_at
