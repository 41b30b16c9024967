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
