"""Writes on the gallery change log: appending (from the domain signals) and compaction.

The log is what recognition boxes pull (see `subjects.models.GalleryChange` for why it
holds subject ids and reasons rather than values). Rows are appended by the listeners at
the bottom of this module, which hear every change the subject services announce, inside
the service's transaction; nothing else writes the log, so whatever the entry point
(admin, API, import, enrolment jobs) a change reaches the boxes.

What a box must know of a subject, and so what appends a row:

- the subject created, deleted, archived or restored (`archived`);
- its name, type or job number changed (the box shows and reports them);
- its visit window changed (`visit_start`, `visit_end`: the box checks it at the door);
- a photo enrolled by the face engine or removed (its faces changed).

E-mail, phone, department, title, remark, start date, host and purpose stay on the portal;
changing them appends nothing. A photo merely uploaded appends nothing either: it has no
face until the engine enrols it, which `photo_enrolled` announces.

Consent withdrawal (biometric privacy) changes what a box may match without changing the
subject: the service that records it calls `gallery_append(..., reason=CONSENT_WITHDRAWN)`
inside its transaction, and `subjects.selectors.usable_photos` leaves the withdrawn faces
out of the feed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from subjects import domain_signals
from subjects.models import GalleryChange, GalleryCounter, GalleryOp

# Subject fields a box holds; a change to any other field is not the box's business.
BOX_SUBJECT_FIELDS = frozenset({"name", "subject_type", "job_number", "visit_start", "visit_end", "archived"})

# Why a row was appended (kept for people reading the log; the feed sends current state).
SUBJECT_CREATED = "subject_created"
SUBJECT_UPDATED = "subject_updated"
SUBJECT_DELETED = "subject_deleted"
PHOTO_ENROLLED = "photo_enrolled"
PHOTO_REMOVED = "photo_removed"
CONSENT_WITHDRAWN = "consent_withdrawn"

BATCH_SIZE = 2000


def _counter_locked(company_id: int) -> GalleryCounter:
    """The company's counter row, locked until the transaction ends (created on first use;
    two first writers racing both end up locking the one row)."""
    counters = GalleryCounter.objects.for_company(company_id)
    counter = counters.select_for_update().first()
    if counter is None:
        GalleryCounter.objects.bulk_create(  # tenant: the company's own counter
            [GalleryCounter(company_id=company_id)], ignore_conflicts=True
        )
        counter = counters.select_for_update().get()
    return counter


@transaction.atomic
def gallery_append(
    *, company_id: int, subject_ids: Iterable[int], reason: str, op: str = GalleryOp.UPSERT, now: datetime | None = None
) -> int:
    """Append one row per subject to the company's log; returns the company's new sequence.

    Must run inside the transaction of the change it records (the domain signals' contract),
    so the rows commit or vanish with it. The company's counter stays locked until then:
    a second writer of the same company waits for this commit before it numbers its rows.
    However many subjects, it costs one counter read, one counter write and one INSERT per
    2,000 rows.
    """
    subject_ids = list(dict.fromkeys(subject_ids))
    counter = _counter_locked(company_id)
    if not subject_ids:
        return counter.sequence
    now = now or timezone.now()
    first = counter.sequence + 1
    GalleryChange.objects.bulk_create(  # tenant: rows of `company_id`, numbered from its locked counter
        [
            GalleryChange(company_id=company_id, sequence=first + index, subject_ref=pk, op=op, reason=reason, at=now)
            for index, pk in enumerate(subject_ids)
        ],
        batch_size=BATCH_SIZE,
    )
    counter.sequence = first + len(subject_ids) - 1
    counter.save(update_fields=["sequence"])
    return counter.sequence


@transaction.atomic
def gallery_compact(
    *, company_id: int, oldest_cursor: int | None, tombstone_days: int = 30, now: datetime | None = None
) -> dict[str, int]:
    """Fold the company's log: drop every row of a subject but its latest, and tombstones
    every box has read (at or below `oldest_cursor`, the lowest cursor of the company's
    boxes; None when it has none) or older than `tombstone_days`.

    Dropping a superseded row changes nothing a box reads (the feed sends each subject's
    current state at its latest row). Dropping a tombstone does: a box still below it
    would never hear of the deletion, so `compacted_through` moves up to the highest
    tombstone dropped, and the feed tells a box whose cursor is below that to resync from 0.
    Runs under the counter's lock, so no change is appended meanwhile.
    """
    now = now or timezone.now()
    counter = _counter_locked(company_id)
    rows = GalleryChange.objects.for_company(company_id)
    superseded = rows.filter(
        Exists(rows.filter(subject_ref=OuterRef("subject_ref"), sequence__gt=OuterRef("sequence")))
    )
    folded, _ = superseded.delete()
    old = Q(at__lt=now - timedelta(days=tombstone_days))
    if oldest_cursor is not None:
        old |= Q(sequence__lte=oldest_cursor)
    tombstones = rows.filter(old, op=GalleryOp.DELETE)
    highest = tombstones.order_by("-sequence").values_list("sequence", flat=True).first()
    dropped = 0
    if highest is not None:
        dropped, _ = tombstones.delete()
        counter.compacted_through = max(counter.compacted_through, highest)
    counter.compacted_at = now
    counter.save(update_fields=["compacted_through", "compacted_at"])
    return {"folded": folded, "tombstones": dropped, "compacted_through": counter.compacted_through}


# --- Listeners: the domain signals append rows --------------------------------------------------


def _on_subject_changed(sender, *, company, ids, action, fields=(), **kwargs) -> None:
    if action == domain_signals.CREATED:
        gallery_append(company_id=company.pk, subject_ids=ids, reason=SUBJECT_CREATED)
    elif action == domain_signals.DELETED:
        gallery_append(company_id=company.pk, subject_ids=ids, reason=SUBJECT_DELETED, op=GalleryOp.DELETE)
    elif BOX_SUBJECT_FIELDS.intersection(fields):
        gallery_append(company_id=company.pk, subject_ids=ids, reason=SUBJECT_UPDATED)


def _on_photo_enrolled(sender, *, company, subject_ids, **kwargs) -> None:
    gallery_append(company_id=company.pk, subject_ids=subject_ids, reason=PHOTO_ENROLLED)


def _on_photo_removed(sender, *, company, subject_ids, **kwargs) -> None:
    gallery_append(company_id=company.pk, subject_ids=subject_ids, reason=PHOTO_REMOVED)


def connect() -> None:
    domain_signals.subject_changed.connect(_on_subject_changed, dispatch_uid="gallery.subject_changed")
    domain_signals.photo_enrolled.connect(_on_photo_enrolled, dispatch_uid="gallery.photo_enrolled")
    domain_signals.photo_removed.connect(_on_photo_removed, dispatch_uid="gallery.photo_removed")
