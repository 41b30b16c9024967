"""Device jobs. Jobs take ids (here: none), load what they need and call a service."""

from __future__ import annotations

import logging

from devices import services

logger = logging.getLogger(__name__)


def devices_mark_offline() -> int:
    """Record `device_offline` for every device whose heartbeats stopped; returns how many.

    Run by the periodic runner (`kangaroo/schedule.py`, README "Background and periodic jobs").
    """
    changes = services.devices_mark_offline()
    if changes:
        logger.info("Marked %d device(s) offline", len(changes))
    return len(changes)


def gallery_compact() -> int:
    """Fold every company's gallery change log; returns how many rows went.

    Run by the periodic runner (`kangaroo/schedule.py`). A box whose cursor is then below
    a dropped tombstone is told to resync from 0 by the gallery feed.
    """
    done = services.gallery_compact_companies()
    dropped = sum(result["folded"] + result["tombstones"] for result in done.values())
    if dropped:
        logger.info("Compacted the gallery change log of %d companies: %d rows dropped", len(done), dropped)
    return dropped
