"""Ingest: turning what devices post into stored events, then announcing them.

Built for batches: one query for the subjects (with their first photo), one for the screens,
one for the uids seen before, one bulk insert. Each item gets its own answer (`created`,
`duplicate` or an error with its code), and a bad item never rejects the good ones.

Three steps: `events.parsing` checks each item and classifies the batch into event rows,
`events.storing` stores them, and `events.hooks.events_recorded` announces them after commit
(to the live pages, webhooks, notifications).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Company
from devices.models import Device, DeviceStatusChange, Direction, Screen
from events.hooks import events_recorded_on_commit
from events.models import Event, EventCorrection, EventKind
from events.parsing import (
    ITEM_OVERHEAD_BYTES,
    ItemResult,
    ParsedItem,
    classify,
    parse_items,
    snapshot_max_base64_chars,
)
from events.storing import MAX_BATCH, store_events
from kangaroo import errors, metrics
from kangaroo.errors import KangarooError
from kangaroo.images import jpeg_of
from kangaroo.media import media_delete_on_commit
from subjects.face_lookup import face_identify, face_in, read_image
from subjects.models import Photo, Subject


def batch_max_bytes() -> int:
    """The largest body the event endpoint reads: a full batch of MAX_BATCH events, each
    with a snapshot of the largest size, and room for the other fields."""
    return MAX_BATCH * (snapshot_max_base64_chars() + ITEM_OVERHEAD_BYTES) + 4096


def event_ingest(*, device: Device, items: list[Any], now: datetime | None = None) -> list[ItemResult]:
    """Store the events a device posted; answer each one. The stored events are announced
    (`events_recorded`) after commit."""
    if len(items) > MAX_BATCH:
        raise KangarooError(errors.EVENT_BATCH_TOO_LARGE)
    now = now or timezone.now()
    try:
        # A single post is almost always new: insert first and let the unique index catch a
        # retry, rather than asking for its uid first (one round trip less per post).
        return _ingest(device=device, items=items, now=now, look_up_uids=len(items) != 1)
    except IntegrityError:
        # The uid is stored already (a retry, perhaps racing us): the second pass looks the
        # uids up and answers `duplicate` with the stored event's id.
        return _ingest(device=device, items=items, now=now, look_up_uids=True)


def _ingest(*, device: Device, items: list[Any], now: datetime, look_up_uids: bool) -> list[ItemResult]:
    parsed, results = parse_items(items, now=now)
    _store_parsed(device=device, parsed=parsed, results=results, now=now, look_up_uids=look_up_uids)
    return [r for r in results if r is not None]


def _store_parsed(
    *, device: Device, parsed: list[ParsedItem], results: list[ItemResult | None], now: datetime, look_up_uids: bool
) -> list[Event]:
    """Classify, store and announce parsed items, answering each in `results`; the one way
    every device's event is stored (a batch, a single post, a recognised snapshot)."""
    batch = classify(device=device, parsed=parsed, results=results, now=now, look_up_uids=look_up_uids)
    created = store_events(company=device.company, to_create=batch.to_create, results=results)
    for event in created:  # for the welcome cards' thumbnails, as `with_first_photo_id` would
        event.first_photo_id = batch.subjects[event.subject_id].first_photo_id if event.subject_id else None
    events_recorded_on_commit(company=device.company, events=created)
    _count_ingested(created, results)

    ids_by_uid = {r.uid: r.id for r in results if r is not None and r.status == "created"}
    for result in results:
        if result is not None and result.status == "duplicate" and result.id is None:
            result.id = ids_by_uid.get(result.uid)
    return created


def _count_ingested(created: list[Event], results: list[ItemResult | None]) -> None:
    """Metrics of what devices posted, once it is committed (a rolled back batch stored nothing)."""
    tally = Counter(("created", event.kind) for event in created)
    tally.update((result.status, "") for result in results if result is not None and result.status != "created")

    def count() -> None:
        for (status, kind), number in tally.items():
            metrics.EVENTS_INGESTED.labels(status=status, kind=kind).inc(number)

    transaction.on_commit(count, robust=True)


@dataclass(frozen=True)
class Recognition:
    event: Event
    created: bool  # False: a retry of a uid already stored, answered with its event


def event_recognize(
    *, device: Device, image: Any, uid: str = "", screen_id: int | None = None, now: datetime | None = None
) -> Recognition:
    """Recognise the face in a pad's (or a box's) snapshot among the device's company's faces
    and store the event, as ingest stores a posted one: `recognized` (or
    `visitor_outside_window`) with the subject and the distance, or `stranger` with the
    snapshot. Announced after commit like every event.

    With a `uid`, a retry answers the event stored the first time, without recognising
    again. The image is refused with `photo_invalid` (its reason) or `no_face`; a box must
    name one of its screens (`not_found` otherwise), a pad reports for its own."""
    now = now or timezone.now()
    if uid:
        stored = _event_by_uid(device, uid)
        if stored is not None:
            return Recognition(stored, created=False)
    picture = read_image(image)
    face = face_in(picture)
    match = face_identify(company=device.company, embedding=face.embedding)
    item = ParsedItem(
        index=0,
        uid=uid,
        happened_at=now,
        subject_id=match.subject_id if match else None,
        screen_id=screen_id,
        confidence=None,
        # A stranger's face is kept for the people at the door to see; a known one is not.
        snapshot=None if match else jpeg_of(picture),
        distance=round(match.distance, 4) if match else None,
    )
    results: list[ItemResult | None] = [None]
    try:
        created = _store_parsed(device=device, parsed=[item], results=results, now=now, look_up_uids=False)
    except IntegrityError:
        stored = _event_by_uid(device, uid) if uid else None
        if stored is None:
            raise
        return Recognition(stored, created=False)  # a concurrent retry stored it first
    [result] = results
    assert result is not None  # store_events answers every item it was given
    if result.status == "error":  # a box's screen that is not its own
        error = result.error
        raise KangarooError(errors.REGISTRY[error["code"]], error["message"], fields=error["fields"])
    return Recognition(created[0], created=True)


def _event_by_uid(device: Device, uid: str) -> Event | None:
    return (
        Event.objects.for_company(device.company)
        .filter(device_kind=device.kind, device_id=device.pk, uid=uid)
        .exclude(uid="")  # as `classify` says: the unique index holds only non-blank uids
        .order_by()  # the unique (company, device, uid) index finds it
        .first()
    )


def event_from_status_change(change: DeviceStatusChange) -> Event:
    """A device came online or went offline: an event for the history and the dashboards."""
    event = Event.objects.create(
        company_id=change.company_id,
        kind=change.change,
        device_kind=change.device_kind,
        device_id=change.device_id,
        device_name=change.device_name,
        happened_at=change.at,
        received_at=timezone.now(),
    )
    events_recorded_on_commit(company=change.company, events=[event])
    return event


def event_record_check_in(*, company: Company, subject: Subject, at: datetime) -> Event:
    """Reception checked `subject` in by hand at `at`: an event of kind `checked_in`,
    announced after commit like every event (`events_recorded`), so the live dashboards and
    the welcome TVs greet the person as they would a door's recognition.

    A TV box shows what its screens see (it hears their groups only), so the event is placed
    at the first entrance camera a TV box shows, where the desk stands; with none, it has no
    screen and only the dashboards hear it. It is not a recognition: attendance, the door's
    arrival logic and the `event.*` webhooks take `recognized` only, and the visit announces
    its own arrival."""
    screen = (
        Screen.objects.for_company(company)
        .filter(tv_boxes__isnull=False, direction__in=[Direction.IN, Direction.BOTH])
        .order_by("pk")
        .first()
    )
    first_photo = Photo.objects.for_company(company).filter(subject=subject).order_by("pk").values_list("pk", flat=True)
    event = Event.objects.create(
        company=company,
        kind=EventKind.CHECKED_IN,
        subject=subject,
        subject_name=subject.name,
        subject_type=subject.subject_type,
        subject_job_number=subject.job_number,
        screen=screen,
        happened_at=at,
        received_at=timezone.now(),
    )
    event.first_photo_id = first_photo.first()  # the greeting card's thumbnail, as for a recognition
    events_recorded_on_commit(company=company, events=[event])
    return event


@transaction.atomic
def event_delete_many(*, company: Company, events: QuerySet[Event]) -> int:
    """Delete the company's rows among `events`, and their snapshot files once that commits;
    returns how many events were deleted.

    Every deletion of events goes through here (a company's deletion aside: its media purge
    takes the files), because a plain queryset delete would leave the snapshots behind. A
    post_delete handler would catch every path, but it would also make Django load each
    event into memory to delete a company, instead of one DELETE for millions of rows.
    """
    scoped = events.filter(company=company)
    names = list(scoped.exclude(snapshot="").values_list("snapshot", flat=True))
    _, per_model = scoped.delete()
    media_delete_on_commit(names)
    return per_model.get(Event._meta.label, 0)


@transaction.atomic
def event_anonymise_subjects(*, company: Company, subject_ids: list[int]) -> int:
    """Make the company's events of these subjects anonymous: each keeps its kind, time,
    door, direction and the subject's type, so attendance totals and the dashboards' counts
    stay right, but loses the name and job number it copied, and the corrections of those
    events lose the names they kept. Returns how many events were anonymised.

    Call it before the subjects are deleted (their events still name them then). Snapshots
    are not touched here: deleting the subject deletes them (`events.signals`). An event
    with `kind` recognised and no name is shown as an erased person (`Event.is_anonymous`).
    """
    events = Event.objects.for_company(company).filter(subject_id__in=subject_ids)
    count = events.update(subject_name="", subject_job_number="")
    corrections = EventCorrection.objects.for_company(company)
    corrections.filter(original_subject_id__in=subject_ids).update(original_subject_name="")
    corrections.filter(subject_id__in=subject_ids).update(subject_name="")
    return count
