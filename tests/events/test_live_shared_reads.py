"""The figures every socket's tick reads are read once per company and process."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from events import consumers, selectors


def test_the_lagging_count_is_read_once_for_every_socket_that_asks_within_half_a_tick(settings, monkeypatch):
    settings.LIVE_TICK_SECONDS = 0.4
    reads = []

    def counting(*, company):
        reads.append(company.pk)
        return {1: 2, 2: 0}[company.pk]

    monkeypatch.setattr(selectors, "lagging_box_count", counting)
    monkeypatch.setattr(consumers, "_lagging_reads", {})
    ours, theirs = SimpleNamespace(pk=1), SimpleNamespace(pk=2)

    async def sockets():
        first = await asyncio.gather(*(consumers.shared_lagging_count(ours) for _ in range(50)))
        other = await consumers.shared_lagging_count(theirs)  # another company's is its own
        again = await consumers.shared_lagging_count(ours)
        await asyncio.sleep(0.25)  # half a tick later: read afresh
        later = await consumers.shared_lagging_count(ours)
        return first, other, again, later

    first, other, again, later = asyncio.run(sockets())
    assert first == [2] * 50 and (other, again, later) == (0, 2, 2)
    assert reads == [1, 2, 1]
