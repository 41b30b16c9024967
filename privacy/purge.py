"""The retention purge: deletes each company's data past its window (`privacy.selectors`).

- **Batched.** Each rule deletes at most `BATCH` rows per transaction, until none is left, so
  a first run over years of data never holds one huge transaction (nor its locks) open, and
  a run stopped half-way has committed whole batches only.
- **Idempotent.** A rule selects what is past its window *now*; what an earlier run removed is
  no longer there. Running it again removes nothing more.
- **One at a time per company.** On PostgreSQL a run holds a session advisory lock on the
  company; a second run that finds it taken skips that company (the first removes
  everything anyway). SQLite writes one transaction at a time.
- **Files** (photos, thumbnails, snapshots) go through the media owner once their batch
  commits; a rolled-back batch keeps its files. Photos announce their removal inside the
  batch, so the gallery change log (`subjects.gallery`) tells the boxes in the same
  transaction.
- **Events** are anonymised into `events.models.EventDailyCount` in the transaction that
  deletes them (and the company records up to which day they are purged,
  `Company.events_purged_before`, which attendance reads), and each subject's latest
  sighting is kept (`SubjectLastSeen`) so that the inactivity window still reads it.
- **Signed consent forms** lose their file only (`Consent.evidence` emptied, the file
  deleted after commit); the consent row stays in the subject's history.
- **Audit.** Each run that removed something, or that an owner asked for, leaves one entry:
  per rule how many rows, and the windows applied. Counts only, never the data.
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from accounts.models import RETENTION_FIELDS, AuditLog, Company, User
from accounts.services import audit_record
from events.models import Event, EventDailyCount, UnknownPerson, UnknownSnapshot
from events.services import event_delete_many
from kangaroo import metrics
from kangaroo.media import media_delete_on_commit
from privacy.models import SubjectLastSeen
from privacy.selectors import PURGE_ACTION, RULES, purge_candidates, purge_cutoffs
from subjects.domain_signals import announce_photos_removed
from subjects.models import Consent, Photo, Subject

logger = logging.getLogger(__name__)

BATCH = 500
# The first key of the advisory lock: the purge's own space, the company id is the second.
LOCK_SPACE = 0x5052_4756  # "PRGV"


@contextmanager
def company_lock(company_id: int) -> Iterator[bool]:
    """True while this connection holds the company's purge lock; False if another run has
    it. Always True on SQLite, whose writers take turns anyway."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_SPACE, int(company_id)])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, int(company_id)])


def purge_company(
    *, company: Company, actor: User | None = None, now: datetime.datetime | None = None, trigger: str = "schedule"
) -> dict[str, Any]:
    """Delete everything of `company` past its window at `now`; returns `{"skipped": bool,
    "removed": {rule: count}}`. `trigger`: "schedule" or "manual" (kept in the audit entry)."""
    now = now or timezone.now()
    company = Company.objects.get(pk=company.pk)  # the windows as saved now
    with company_lock(company.pk) as held:
        if not held:
            return {"skipped": True, "removed": dict.fromkeys(RULES, 0)}
        candidates = purge_candidates(company=company, now=now)
        removed = {rule: _in_batches(candidates[rule], HANDLERS[rule], company) for rule in RULES}
        # Every day before the events' cut is now purged, with events or not: attendance reads it.
        cut = purge_cutoffs(company=company, now=now).events.astimezone(company.zone).date()
        if company.events_purged_before is None or company.events_purged_before < cut:
            Company.objects.filter(pk=company.pk).update(events_purged_before=cut)
    if any(removed.values()) or trigger != "schedule":
        audit_record(
            company=company,
            actor=actor,
            action=PURGE_ACTION,
            changes={
                "trigger": trigger,
                "removed": removed,
                "windows": {field: getattr(company, field) for field in RETENTION_FIELDS},
                "as_of": now,
            },
        )
    for rule, number in removed.items():
        if number:
            metrics.PURGED.labels(rule=rule).inc(number)
    return {"skipped": False, "removed": removed}


def purge_all(*, now: datetime.datetime | None = None) -> dict[int, dict[str, int]]:
    """Run the purge for every company; one company failing does not stop the others."""
    now = now or timezone.now()
    results = {}
    # Deactivated companies too: their people's data is no less past its window.
    for company in Company.objects.order_by("pk"):
        try:
            results[company.pk] = purge_company(company=company, now=now)["removed"]
        except Exception:
            logger.exception("retention purge of company %s failed", company.pk)
    return results


def _in_batches(queryset: QuerySet, handle: Callable[[Company, list[int]], int], company: Company) -> int:
    total = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:BATCH])
            if not ids:
                return total
            done = handle(company, ids)
        total += done
        if done == 0:  # nothing of the batch could go: do not spin on it
            return total


def _photos(company: Company, ids: list[int]) -> int:
    photos = Photo.objects.for_company(company).filter(pk__in=ids)
    removed = list(photos.values_list("pk", "subject_id"))
    photos.delete()  # the post_delete handler removes each photo's files after commit
    announce_photos_removed(company=company, photos=removed)  # gallery change log, face index
    return len(removed)


def _subject_snapshots(company: Company, ids: list[int]) -> int:
    """A subject's snapshots, and any copy an unknown person kept of them: pictures of them."""
    events = Event.objects.for_company(company).filter(pk__in=ids).exclude(snapshot="")
    copies = UnknownSnapshot.objects.for_company(company).filter(event__in=ids)
    names = list(events.values_list("snapshot", flat=True)) + list(copies.values_list("image", flat=True))
    copies.delete()
    cleared = events.update(snapshot="")
    media_delete_on_commit(names)
    return cleared


def _stranger_snapshots(company: Company, ids: list[int]) -> int:
    """The event's own snapshot only: an unknown person's copies follow that person's window."""
    events = Event.objects.for_company(company).filter(pk__in=ids).exclude(snapshot="")
    names = list(events.values_list("snapshot", flat=True))
    cleared = events.update(snapshot="")
    media_delete_on_commit(names)
    return cleared


def _unknown_people(company: Company, ids: list[int]) -> int:
    snapshots = UnknownSnapshot.objects.for_company(company).filter(person__in=ids)
    media_delete_on_commit(list(snapshots.values_list("image", flat=True)))
    snapshots.delete()
    deleted, _ = UnknownPerson.objects.for_company(company).filter(pk__in=ids).delete()
    return len(ids) if deleted else 0


def _events(company: Company, ids: list[int]) -> int:
    events = Event.objects.for_company(company).filter(pk__in=ids)
    rows = list(events.values_list("happened_at", "kind", "subject_type", "subject_id"))
    zone = company.zone
    counted: Counter = Counter()
    last_seen: dict[int, datetime.datetime] = {}
    for happened_at, kind, subject_type, subject_id in rows:
        counted[(happened_at.astimezone(zone).date(), kind, subject_type)] += 1
        if subject_id is not None:
            last_seen[subject_id] = max(happened_at, last_seen.get(subject_id, happened_at))
    _count_new_days(company, {day for day, _, _ in counted})
    for (day, kind, subject_type), number in counted.items():
        key = {"day": day, "kind": kind, "subject_type": subject_type}
        EventDailyCount.objects.bulk_create(  # tenant: the purged company's own counts
            [EventDailyCount(company=company, **key)], ignore_conflicts=True
        )
        EventDailyCount.objects.for_company(company).filter(**key).update(events=F("events") + number)
    _remember_last_seen(company, last_seen)
    return event_delete_many(company=company, events=events)


def _count_new_days(company: Company, days: set[datetime.date]) -> None:
    """The people of each day met for the first time, counted over the whole day (which the
    batch may only begin): distinct subjects of its recognised passes, per subject type."""
    known = set(EventDailyCount.objects.for_company(company).filter(day__in=days).values_list("day", flat=True))
    zone = company.zone
    for day in sorted(days - known):
        start = datetime.datetime.combine(day, datetime.time(), zone)
        end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), zone)
        groups = (
            Event.objects.for_company(company)
            .filter(happened_at__gte=start, happened_at__lt=end)
            .values("kind", "subject_type")
            .annotate(people=Count("subject_id", distinct=True))
        )
        EventDailyCount.objects.bulk_create(  # tenant: the purged company's own counts
            [
                EventDailyCount(
                    company=company,
                    day=day,
                    kind=group["kind"],
                    subject_type=group["subject_type"],
                    people=group["people"],
                )
                for group in groups
            ]
        )


def _remember_last_seen(company: Company, last_seen: dict[int, datetime.datetime]) -> None:
    if not last_seen:
        return
    known = dict(
        SubjectLastSeen.objects.for_company(company).filter(subject__in=last_seen).values_list("subject_id", "at")
    )
    alive = set(Subject.objects.for_company(company).filter(pk__in=last_seen).values_list("pk", flat=True))
    for subject_id, at in last_seen.items():
        if subject_id not in alive:
            continue
        if subject_id not in known:
            SubjectLastSeen.objects.bulk_create(  # tenant: the purged company's own subjects
                [SubjectLastSeen(company=company, subject_id=subject_id, at=at)], ignore_conflicts=True
            )
        SubjectLastSeen.objects.for_company(company).filter(subject_id=subject_id, at__lt=at).update(at=at)


def _audit_entries(company: Company, ids: list[int]) -> int:
    deleted, _ = AuditLog.objects.for_company(company).filter(pk__in=ids).delete()
    return deleted


def _consent_evidence(company: Company, ids: list[int]) -> int:
    consents = Consent.objects.for_company(company).filter(pk__in=ids).exclude(evidence="")
    names = list(consents.values_list("evidence", flat=True))
    cleared = consents.update(evidence="")
    media_delete_on_commit(names)
    return cleared


HANDLERS: dict[str, Callable[[Company, list[int]], int]] = {
    "visitor_photos": _photos,
    "visitor_snapshots": _subject_snapshots,
    "stranger_snapshots": _stranger_snapshots,
    "unknown_people": _unknown_people,
    "inactive_photos": _photos,
    "inactive_snapshots": _subject_snapshots,
    "events": _events,
    "audit_entries": _audit_entries,
    "consent_evidence": _consent_evidence,
}
