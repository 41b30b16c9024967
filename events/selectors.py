"""Reads on events: the live dashboards' catch-up and today's figures; unknown people and
correction rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Company
from devices.models import DEVICE_MODELS, Box, Status, offline_after
from devices.selectors import only_lagging
from events.models import Event, EventKind, UnknownPerson, UnknownSnapshot
from subjects.models import Photo

REPLAY_LIMIT = 500


def events_in_scope(*, company: Company, screen_ids: list[int] | None) -> QuerySet[Event]:
    """A dashboard's events: the whole company (screen_ids None) or some screens."""
    events = Event.objects.for_company(company)
    return events if screen_ids is None else events.filter(screen_id__in=screen_ids)


def id_count_and_sum(*, company: Company, screen_ids: list[int] | None, after_id: int, upto_id: int) -> tuple[int, int]:
    """How many events of a dashboard's scope have an id in (after_id, upto_id], and their
    ids' sum: read from the (company, id) index, without a row leaving the database."""
    scope = events_in_scope(company=company, screen_ids=screen_ids).filter(id__gt=after_id, id__lte=upto_id)
    found = scope.aggregate(count=Count("id"), total=Sum("id"))
    return found["count"], found["total"] or 0


def events_after(*, company: Company, screen_ids: list[int] | None, after_id: int) -> list[Event]:
    """What a reconnecting dashboard missed, oldest first (at most REPLAY_LIMIT)."""
    scope = events_in_scope(company=company, screen_ids=screen_ids)
    return list(scope.filter(id__gt=after_id).order_by("id")[:REPLAY_LIMIT])


def recent_today(*, company: Company, screen_ids: list[int] | None, limit: int) -> list[Event]:
    """Today's latest events in a dashboard's scope, oldest first: what a page that just
    opened shows before anything new arrives."""
    start, end = local_day_bounds(company)
    scope = events_in_scope(company=company, screen_ids=screen_ids)
    latest = list(scope.filter(happened_at__gte=start, happened_at__lt=end).order_by("-id")[:limit])
    return latest[::-1]


def first_photo_ids(*, company: Company, events: list[Event]) -> dict[int, int]:
    """subject id -> its first photo's id, for the cards' thumbnails (one query)."""
    subject_ids = {event.subject_id for event in events if event.subject_id}
    if not subject_ids:
        return {}
    rows = (
        Photo.objects.for_company(company)
        .filter(subject_id__in=subject_ids)
        .order_by("subject_id", "id")
        .values_list("subject_id", "id")
    )
    first: dict[int, int] = {}
    for subject_id, photo_id in rows:
        first.setdefault(subject_id, photo_id)
    return first


def with_first_photo_id(queryset: QuerySet[Event]) -> QuerySet[Event]:
    """Annotate each event with its subject's first photo's id (one correlated subquery, so a
    page of any length costs the same number of queries)."""
    first = (
        Photo.objects.filter(company=OuterRef("company"), subject=OuterRef("subject"))  # tenant: correlated to the row
        .order_by("id")
        .values("id")[:1]
    )
    return queryset.annotate(first_photo_id=Subquery(first))


def local_day_bounds(company: Company, day=None) -> tuple[datetime, datetime]:
    """Start and end of `day` (default: today) in the company's time zone, as aware datetimes."""
    zone = company.zone
    day = day or timezone.now().astimezone(zone).date()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def arrived_today(*, company: Company, screen_ids: list[int] | None) -> list[int]:
    """Ids of the subjects recognized today (company time), within the dashboard's scope."""
    start, end = local_day_bounds(company)
    scope = events_in_scope(company=company, screen_ids=screen_ids)
    return list(
        scope.filter(kind=EventKind.RECOGNIZED, happened_at__gte=start, happened_at__lt=end, subject__isnull=False)
        .order_by()  # the model's ordering would make DISTINCT count a person once per pass
        .values_list("subject_id", flat=True)
        .distinct()
    )


def device_counts_by_kind(*, company: Company) -> dict[str, dict[str, int]]:
    """Per kind of device (box, screen, pad, TV box), how many of the company's are online,
    offline and never seen, from their last heartbeat (a query per kind)."""
    online_since = timezone.now() - offline_after()
    by_kind = {}
    for kind, model in DEVICE_MODELS.items():
        counts = {Status.ONLINE.value: 0, Status.OFFLINE.value: 0, Status.NEVER_SEEN.value: 0}
        for last_seen in model.objects.for_company(company).values_list("last_seen_at", flat=True):
            if last_seen is None:
                counts[Status.NEVER_SEEN] += 1
            elif last_seen >= online_since:
                counts[Status.ONLINE] += 1
            else:
                counts[Status.OFFLINE] += 1
        by_kind[kind] = counts
    return by_kind


def device_counts(*, company: Company) -> dict[str, int]:
    """How many of the company's devices are online, offline, never seen (from timestamps),
    and how many of its boxes are lagging behind the gallery."""
    counts = {Status.ONLINE.value: 0, Status.OFFLINE.value: 0, Status.NEVER_SEEN.value: 0}
    for kind_counts in device_counts_by_kind(company=company).values():
        for state, count in kind_counts.items():
            counts[state] += count
    counts["lagging"] = lagging_box_count(company=company)
    return counts


def lagging_box_count(*, company: Company) -> int:
    """How many of the company's boxes are lagging behind the gallery (one query)."""
    return only_lagging(Box.objects.for_company(company)).count()


# --- Unknown people and corrections ----------------------------------------------------------


def unknown_people(*, company: Company) -> QuerySet[UnknownPerson]:
    """The company's unknown people, last seen first."""
    return UnknownPerson.objects.for_company(company).order_by("-last_seen_at", "-id")


def unknown_people_screens(*, company: Company, people: list[UnknownPerson]) -> dict[int, list[str]]:
    """person id -> the names of the screens where they were seen (the device's name for an
    event without a screen), in one query."""
    rows = (
        Event.objects.for_company(company)
        .filter(unknown_person__in=[p.pk for p in people])
        .values_list("unknown_person_id", "screen__name", "device_name")
        .distinct()
    )
    screens: dict[int, set[str]] = {}
    for person_id, screen_name, device_name in rows:
        if screen_name or device_name:
            screens.setdefault(person_id, set()).add(screen_name or device_name)
    return {person_id: sorted(names) for person_id, names in screens.items()}


def unknown_person_snapshots(*, company: Company, person: UnknownPerson) -> QuerySet[UnknownSnapshot]:
    """The person's best snapshots, best first."""
    return UnknownSnapshot.objects.for_company(company).filter(person=person).order_by("-quality", "id")


def unknown_person_events(*, company: Company, person: UnknownPerson) -> QuerySet[Event]:
    """The person's sightings (their stranger events), latest first."""
    return (
        Event.objects.for_company(company)
        .filter(unknown_person=person)
        .select_related("screen")
        .order_by("-happened_at", "-id")
    )


def unknown_person_sightings_by_day(*, company: Company, person: UnknownPerson) -> list[tuple[date, int]]:
    """(local day, sightings) for each day the person was seen, oldest first."""
    rows = (
        Event.objects.for_company(company)
        .filter(unknown_person=person)
        .annotate(day=TruncDate("happened_at", tzinfo=company.zone))
        .values("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    return [(row["day"], row["count"]) for row in rows]


@dataclass(frozen=True)
class CorrectionRate:
    """Corrected events per 1,000 recognitions and stranger events of one screen."""

    screen_id: int | None
    screen_name: str
    events: int
    corrected: int

    @property
    def per_thousand(self) -> float:
        return round(self.corrected * 1000 / self.events, 1) if self.events else 0.0


def correction_rates(*, company: Company, days: int = 30) -> list[CorrectionRate]:
    """Per screen, over the last `days` days: how many of its recognitions and stranger
    events were corrected (two grouped queries), the highest rate first. A camera with many
    corrections needs its threshold or its placement looked at."""
    since = timezone.now() - timedelta(days=days)
    events = Event.objects.for_company(company).filter(
        kind__in=[EventKind.RECOGNIZED, EventKind.STRANGER], happened_at__gte=since
    )
    totals = {
        row["screen_id"]: (row["name"] or "", row["n"])
        for row in events.values("screen_id").annotate(n=Count("id"), name=Max("screen__name")).order_by()
    }
    corrected = dict(
        events.filter(corrections__isnull=False)
        .values("screen_id")
        .annotate(n=Count("id", distinct=True))
        .values_list("screen_id", "n")
        .order_by()
    )
    rates = [
        CorrectionRate(screen_id, name, total, corrected.get(screen_id, 0))
        for screen_id, (name, total) in totals.items()
    ]
    return sorted(rates, key=lambda r: (-r.per_thousand, r.screen_name))
