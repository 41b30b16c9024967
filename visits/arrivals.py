"""A visit is marked arrived when a door first recognises its visitor within its window, and
left when, after that, a camera that looks at people going out (`Direction.OUT`) recognises
them.

The listener of `events.hooks.events_recorded` (after commit: the events are stored) takes
the batch's recognitions of visitors (kind `recognized`: a visitor seen outside their window
is `visitor_outside_window` and marks nothing) and, for each, the visitor's invited visit
whose window holds the moment of the event. `visit_mark_arrived` is one conditional UPDATE,
so a retried event, a second door or two workers ingesting at once mark a visit once, and
only the call that marked it announces `visit.arrived` to the company's webhooks, in the
same transaction as the mark. Reception's check-in by hand (`services.visit_check_in`) goes
through the same UPDATE, so a door after the desk, or the desk after a door, marks nothing more.

A departure is the first recognition at an exit after the arrival (an exit at the arrival's
own moment marks only the arrival), of the visitor's latest arrived visit that has not
ended its stay: also after the window (the event is then `visitor_outside_window`, and the
visitor still leaves). `visit_mark_left` is one conditional UPDATE as well and announces
`visit.left`. A camera that sees both ways says nothing of leaving; reception marks a
departure there by hand (admin, same service).

The host's e-mail is not sent here: `integrations.arrivals` already e-mails a visitor's host
once per visitor and window (a unique row, written with the e-mail), and a visitor's window
and host at the doors are those of the visit they are expected for (`services`), so that one
e-mail is the visit's. A second mail path here could only add a second e-mail. Reception's
check-in, which no door sees, writes the same row through `integrations.arrivals.host_tell_checked_in`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from devices.models import Direction
from events.models import Event, EventKind
from kangaroo.compiled import CompiledQuery
from subjects.models import SubjectType
from visits.models import Visit, VisitStatus
from visits.services import visit_mark_arrived, visit_mark_left

logger = logging.getLogger(__name__)


def _visitor_recognitions(events: Sequence[Event]) -> list[Event]:
    found = [
        event
        for event in events
        if event.kind == EventKind.RECOGNIZED and event.subject_type == SubjectType.VISITOR and event.subject_id
    ]
    return sorted(found, key=lambda event: (event.happened_at, event.pk))


# A visitor recognised going out after their window is still a visitor going out.
DEPARTURE_KINDS = (EventKind.RECOGNIZED, EventKind.VISITOR_OUTSIDE_WINDOW)


def _visitor_departures(events: Sequence[Event]) -> list[Event]:
    found = [
        event
        for event in events
        if event.kind in DEPARTURE_KINDS
        and event.subject_type == SubjectType.VISITOR
        and event.subject_id
        and event.direction == Direction.OUT
    ]
    return sorted(found, key=lambda event: (event.happened_at, event.pk))


# Asked for every event post that recognises a visitor: compiled once (`kangaroo.compiled`).
_ARRIVAL_CANDIDATES = CompiledQuery(
    Visit,
    lambda company_id, visitor_ids, last, first: (
        Visit.objects.for_company(company_id)
        .filter(
            visitor_id__in=visitor_ids,
            status=VisitStatus.INVITED,
            arrived_at__isnull=True,
            starts_at__lte=last,
            ends_at__gte=first,
        )
        .order_by("starts_at", "id")
    ),
)
_DEPARTURE_CANDIDATES = CompiledQuery(
    Visit,
    lambda company_id, visitor_ids, last: (
        Visit.objects.for_company(company_id)
        .filter(visitor_id__in=visitor_ids, status=VisitStatus.INVITED, arrived_at__lt=last, left_at__isnull=True)
        .order_by("-arrived_at", "-id")
    ),
)


def visits_mark_arrivals(sender, *, company, events: Sequence[Event], **kwargs) -> list[Visit]:
    """The `events_recorded` listener: arrivals, then departures (an exit seen in the same
    batch after the entrance marks both); returns the visits this batch marked arrived."""
    marked = _mark_arrivals(company, events)
    _mark_departures(company, events)
    return marked


def _mark_departures(company, events: Sequence[Event]) -> list[Visit]:
    departures = _visitor_departures(events)
    if not departures:
        return []
    candidates = _DEPARTURE_CANDIDATES(
        company.pk, list({event.subject_id for event in departures}), departures[-1].happened_at
    )
    return _mark_each(
        company,
        departures,
        candidates,
        fits=lambda visit, at: visit.left_at is None and visit.arrived_at < at,
        mark=lambda visit, at: visit_mark_left(company=company, actor=None, visit=visit, at=at),
        field="left_at",
    )


def _mark_arrivals(company, events: Sequence[Event]) -> list[Visit]:
    recognised = _visitor_recognitions(events)
    if not recognised:
        return []
    candidates = _ARRIVAL_CANDIDATES(
        company.pk,
        list({event.subject_id for event in recognised}),
        recognised[-1].happened_at,
        recognised[0].happened_at,
    )
    return _mark_each(
        company,
        recognised,
        candidates,
        # The same bounds as the door's (`Subject.visit_state`): start and end included.
        fits=lambda visit, at: visit.arrived_at is None and visit.starts_at <= at <= visit.ends_at,
        mark=lambda visit, at: visit_mark_arrived(visit=visit, at=at),
        field="arrived_at",
    )


def _mark_each(company, events: Sequence[Event], candidates, *, fits, mark, field: str) -> list[Visit]:
    """For each event in order, `mark` the first of the visitor's candidate visits that `fits`
    its moment; returns the visits this call marked. The mark sets `field` on the visit; a
    visit marked meanwhile (another ingest, reception) gets it here, so later events skip it."""
    marked: list[Visit] = []
    for event in events:
        visit = next(
            (visit for visit in candidates if visit.visitor_id == event.subject_id and fits(visit, event.happened_at)),
            None,
        )
        if visit is None:
            continue
        visit.company = company
        if mark(visit, event.happened_at):
            marked.append(visit)
        else:
            setattr(visit, field, event.happened_at)
    return marked
