"""`events_recorded`: the one announcement that events were stored.

Every stored event goes through it, whatever made it (a box's batch, a pad's single post, a
device going offline), once, after its transaction commits: a listener never sees a row
that may still roll back. The live pages listen here (`events.live`); webhooks and
notifications, which live in apps above this one, connect their receivers the same way, so
events never import them.

Listeners are called with `company` and `events` (the stored `Event` rows, in the order they
were stored; an event naming a subject carries `first_photo_id`, its first photo's id or
None). A listener must not fail ingest: its exception is logged and the other listeners
still run, and the device gets its normal answer. Listeners that do slow work (an HTTP
call) enqueue a job rather than do it here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.dispatch import Signal

from accounts.models import Company
from events.models import Event

logger = logging.getLogger(__name__)

events_recorded = Signal()

# Sent after commit, with `company` and `event` (the corrected `Event`, its `first_photo_id`
# set), when an admin changed who an event is about (`events.corrections`). Same rules as
# `events_recorded`: a failing listener is logged and never undoes the correction.
event_corrected = Signal()


def events_recorded_on_commit(*, company: Company, events: Sequence[Event]) -> None:
    """Announce `events` once the current transaction commits (at once outside one)."""
    if not events:
        return
    events = list(events)
    transaction.on_commit(lambda: send_events_recorded(company=company, events=events), robust=True)


def send_events_recorded(*, company: Company, events: list[Event]) -> None:
    for receiver, result in events_recorded.send_robust(sender=Event, company=company, events=events):
        if isinstance(result, Exception):
            logger.error(
                "A listener of events_recorded (%s) failed on %d event(s) of company %s",
                getattr(receiver, "__qualname__", receiver),
                len(events),
                company.pk,
                exc_info=result,
            )


def send_event_corrected(*, company: Company, event: Event) -> None:
    for receiver, result in event_corrected.send_robust(sender=Event, company=company, event=event):
        if isinstance(result, Exception):
            logger.error(
                "A listener of event_corrected (%s) failed on event %s",
                getattr(receiver, "__qualname__", receiver),
                event.pk,
                exc_info=result,
            )


# Panels the apps above add to the live dashboard's side column (the visits app's "expected
# today"), so the dashboard shows them without importing those apps: each is a callable
# `(request, company) -> str`, safe HTML rendered on the server, shown in the order registered.
# A panel that fails is logged and left out; the dashboard still opens.
dashboard_panels: list = []


def dashboard_panel_register(panel) -> None:
    if panel not in dashboard_panels:
        dashboard_panels.append(panel)


def dashboard_panels_render(request, company: Company) -> list[str]:
    rendered = []
    for panel in dashboard_panels:
        try:
            rendered.append(panel(request, company))
        except Exception:
            logger.exception("The dashboard panel %s failed", getattr(panel, "__qualname__", panel))
    return rendered
