"""Ingest, first half: what a device posted, checked and turned into event rows.

`parse_item` checks one posted item without touching the database. `classify` then looks up,
for a whole batch at once, the subjects, the screens and the uids stored before (one query
each; a box's screens are kept per process until the box changes), and decides each item's
fate: a new `Event` row (not saved), a `duplicate`, or an error. Storing the rows is
`events.storing`'s job; recognising a pad's snapshot fits between the two halves, by setting
the parsed item's `subject_id` before `classify`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from devices.models import Device, DeviceKind, Pad, Screen
from events.models import Event, EventKind
from kangaroo import errors
from kangaroo.api.filters import MAX_ID, utc_offset_in_range
from kangaroo.api.parsers import CONTROL_CHARACTER_MESSAGE, text_problem
from kangaroo.compiled import CompiledQuery
from kangaroo.errors import KangarooError
from subjects.models import Subject, SubjectType
from subjects.selectors import with_first_photo

FUTURE_TOLERANCE = timedelta(minutes=5)
ITEM_OVERHEAD_BYTES = 1024  # an item's fields other than its snapshot, generously
ITEM_FIELDS = {"uid", "happened_at", "subject_id", "screen_id", "confidence", "snapshot"}


@dataclass
class ItemResult:
    uid: str | None
    status: str  # created | duplicate | error
    id: int | None = None
    error: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uid": self.uid, "status": self.status}
        if self.id is not None:
            out["id"] = self.id
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class ParsedItem:
    index: int
    uid: str
    happened_at: datetime
    subject_id: int | None
    screen_id: int | None
    confidence: float | None
    snapshot: bytes | None
    extra: dict[str, Any] = field(default_factory=dict)
    distance: float | None = None  # set by the portal's own recognition (event_recognize)


def item_error(
    error: errors.ErrorCode, message=None, fields: dict | None = None, extra: dict | None = None
) -> KangarooError:
    return KangarooError(error, message, fields=fields or {}, extra=extra)


def snapshot_max_base64_chars() -> int:
    """The longest base64 text of a snapshot of EVENT_SNAPSHOT_MAX_BYTES."""
    return 4 * -(-settings.EVENT_SNAPSHOT_MAX_BYTES // 3)


def error_dict(exc: KangarooError, field: str | None = None) -> dict[str, Any]:
    """The error envelope's body for one item; `field` gathers all the messages under it."""
    fields = exc.fields
    if field and fields and field not in fields:
        fields = {field: [message for messages in fields.values() for message in messages]}
    return {"code": exc.code, "message": str(exc.message), "fields": fields or {}, **exc.extra}


def _as_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise item_error(errors.VALIDATION_ERROR, fields={name: [_("Must be an id (a positive integer) or null.")]})
    return value


def parse_item(index: int, raw: Any, *, now: datetime) -> ParsedItem:
    """Validate one posted event (no database access)."""
    if not isinstance(raw, dict):
        raise item_error(errors.VALIDATION_ERROR, _("Each event must be an object."))
    unknown = sorted(set(raw) - ITEM_FIELDS)
    if unknown:
        raise item_error(errors.UNKNOWN_FIELDS, fields={name: [_("Unknown field.")] for name in unknown})
    bad_text = text_problem(raw)
    if bad_text is not None:
        raise item_error(errors.VALIDATION_ERROR, fields={bad_text: [str(CONTROL_CHARACTER_MESSAGE)]})
    uid = raw.get("uid")
    if not isinstance(uid, str) or not 1 <= len(uid) <= 64:
        raise item_error(errors.VALIDATION_ERROR, fields={"uid": [_("A text of 1 to 64 characters is required.")]})
    happened_raw = raw.get("happened_at")
    try:
        happened_at = parse_datetime(happened_raw) if isinstance(happened_raw, str) else None
    except ValueError:  # well formed but impossible, like February 30th
        happened_at = None
    if happened_at is None or timezone.is_naive(happened_at) or not utc_offset_in_range(happened_at):
        raise item_error(
            errors.VALIDATION_ERROR,
            fields={"happened_at": [_("An ISO 8601 date and time with a time zone is required.")]},
        )
    if happened_at > now + FUTURE_TOLERANCE:
        raise item_error(errors.EVENT_FROM_FUTURE, fields={"happened_at": [str(errors.EVENT_FROM_FUTURE.message)]})
    if happened_at < now - timedelta(days=settings.EVENT_MAX_AGE_DAYS):
        raise item_error(errors.EVENT_TOO_OLD, fields={"happened_at": [str(errors.EVENT_TOO_OLD.message)]})
    confidence = raw.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1
    ):
        raise item_error(errors.VALIDATION_ERROR, fields={"confidence": [_("A number from 0 to 1.")]})
    snapshot = raw.get("snapshot")
    if snapshot is not None:
        if not isinstance(snapshot, str):
            raise item_error(errors.VALIDATION_ERROR, fields={"snapshot": [_("Base64-encoded image expected.")]})
        if len(snapshot) > snapshot_max_base64_chars():
            raise item_error(
                errors.EVENT_SNAPSHOT_TOO_LARGE,
                fields={"snapshot": [str(errors.EVENT_SNAPSHOT_TOO_LARGE.message)]},
                extra={"limit": settings.EVENT_SNAPSHOT_MAX_BYTES},
            )
        try:
            snapshot = base64.b64decode(snapshot, validate=True)
        except (binascii.Error, ValueError):
            raise item_error(
                errors.VALIDATION_ERROR, fields={"snapshot": [_("Base64-encoded image expected.")]}
            ) from None
    return ParsedItem(
        index=index,
        uid=uid,
        happened_at=happened_at,
        subject_id=_as_int(raw.get("subject_id"), "subject_id"),
        screen_id=_as_int(raw.get("screen_id"), "screen_id"),
        confidence=float(confidence) if confidence is not None else None,
        snapshot=snapshot,
    )


def parse_items(items: list[Any], *, now: datetime) -> tuple[list[ParsedItem], list[ItemResult | None]]:
    """The items that parsed, and a result slot per posted item (set for those that did not)."""
    results: list[ItemResult | None] = [None] * len(items)
    parsed: list[ParsedItem] = []
    for index, raw in enumerate(items):
        try:
            parsed.append(parse_item(index, raw, now=now))
        except KangarooError as exc:
            uid = raw.get("uid") if isinstance(raw, dict) and isinstance(raw.get("uid"), str) else None
            results[index] = ItemResult(uid, "error", error=error_dict(exc))
    return parsed, results


def event_kind(subject: Subject | None, happened_at: datetime) -> str:
    if subject is None:
        return EventKind.STRANGER
    if subject.subject_type == SubjectType.VISITOR and subject.visit_state(happened_at) not in (None, "current"):
        return EventKind.VISITOR_OUTSIDE_WINDOW
    return EventKind.RECOGNIZED


@dataclass(frozen=True)
class ScreenRef:
    """What an event copies of its screen."""

    pk: int
    direction: str


def _screens_for(device: Device, screen_ids: set[int]) -> dict[int, ScreenRef]:
    """The screens this device may report for, among `screen_ids`: a box its own cameras, a
    pad its screen."""
    if isinstance(device, Pad):
        screen = device.screen
        return {screen.pk: ScreenRef(screen.pk, screen.direction)} if screen is not None else {}
    screens = _box_screens(device)
    return {pk: screens[pk] for pk in screen_ids if pk in screens}


# A box's screens, by the box's id, `updated_at` and key hash, per process. Every post of a
# box named them, so they were read on every post (a query, 4 % of a busy worker's samples);
# they change seldom, and whatever changes them moves the box's `updated_at`
# (`devices.services`), which each post reads anyway with the box's key. The key's hash,
# random per box, keeps a box apart from an earlier one that had the same id and time.
_BOX_SCREENS_KEPT: dict[tuple[int, datetime, str], dict[int, ScreenRef]] = {}
_BOX_SCREENS_KEPT_MAX = 10_000


def _box_screens(box: Device) -> dict[int, ScreenRef]:
    key = (box.pk, box.updated_at, box.key_hash)
    screens = _BOX_SCREENS_KEPT.get(key)
    if screens is None:
        screens = {screen.pk: ScreenRef(screen.pk, screen.direction) for screen in _BOX_SCREENS(box.company_id, box.pk)}
        if len(_BOX_SCREENS_KEPT) >= _BOX_SCREENS_KEPT_MAX:
            _BOX_SCREENS_KEPT.clear()
        _BOX_SCREENS_KEPT[key] = screens
    return screens


def _subjects_for(company, subject_ids: set[int]) -> dict[int, Subject]:
    """The company's subjects among `subject_ids` (any other id is a stranger), with the
    fields an event copies and `first_photo_id`, the id of the subject's first photo (None
    without one), for the welcome cards' thumbnails."""
    if not subject_ids:
        return {}
    return {subject.pk: subject for subject in _SUBJECTS(company.pk, list(subject_ids))}


# Run often (the subjects on every post), so their SQL is compiled once per process (`kangaroo.compiled`).
_BOX_SCREENS = CompiledQuery(
    Screen,
    lambda company_id, box_id: (
        Screen.objects.for_company(company_id).filter(box_id=box_id).order_by().only("direction")
    ),
)
_SUBJECTS = CompiledQuery(
    Subject,
    lambda company_id, subject_ids: with_first_photo(
        Subject.objects.for_company(company_id)
        .filter(pk__in=subject_ids)
        .order_by()  # by primary key, not by walking the company's name index
        .only("company_id", "name", "subject_type", "job_number", "visit_start", "visit_end")
    ),
)


# Every column's default, in the model's order. An event is built positionally from these
# and its own values, as Django builds rows read from the database: with keywords, Event's
# __init__ was a third of `classify`'s CPU for a batch of 500.
_EVENT_DEFAULTS = {field.attname: field.get_default() for field in Event._meta.concrete_fields}


def _new_event(**values: Any) -> Event:
    if not values.keys() <= _EVENT_DEFAULTS.keys():
        raise TypeError(f"Event has no field {sorted(values.keys() - _EVENT_DEFAULTS.keys())}")
    return Event(*{**_EVENT_DEFAULTS, **values}.values())


def stored_uids(device: Device, uids: set[str]) -> list[tuple[str, int]]:
    """(uid, id) of the device's events stored with one of `uids`."""
    return [(event.uid, event.pk) for event in _STORED_UIDS(device.company_id, device.kind, device.pk, list(uids))]


def stored_uids_query(company_id: int, device_kind: str, device_id: int, uids: list[str]) -> QuerySet[Event]:
    """The events `stored_uids` reads (their uid only)."""
    return (
        Event.objects.for_company(company_id)
        .filter(device_kind=device_kind, device_id=device_id, uid__in=uids)
        # The unique (company, device, uid) index leaves out blank uids: without saying so
        # here, PostgreSQL cannot prove that `uid IN (...)` fits the index, and reads the
        # whole table instead (78 ms at 125,000 events, growing with the table; 4 ms with it).
        .exclude(uid="")
        .order_by()  # no sort: the index finds them
        .only("uid")
    )


# Every batch asks it: compiled once per process (`kangaroo.compiled`), as the lookups above.
_STORED_UIDS = CompiledQuery(Event, stored_uids_query)


@dataclass
class Classified:
    """A batch after `classify`: the rows to store (each with its parsed item) and the
    subjects they name (for the welcome cards' thumbnails)."""

    to_create: list[tuple[ParsedItem, Event]]
    subjects: dict[int, Subject]


def classify(
    *,
    device: Device,
    parsed: list[ParsedItem],
    results: list[ItemResult | None],
    now: datetime,
    look_up_uids: bool,
) -> Classified:
    """Decide each parsed item's fate: a duplicate or an error goes into `results`; a new
    event becomes an unsaved `Event` row built with the device's company."""
    company = device.company
    subjects = _subjects_for(company, {item.subject_id for item in parsed if item.subject_id is not None})
    screens = _screens_for(device, {item.screen_id for item in parsed if item.screen_id is not None})
    seen = dict(stored_uids(device, {item.uid for item in parsed})) if look_up_uids and parsed else {}

    to_create: list[tuple[ParsedItem, Event]] = []
    first_in_batch: dict[str, int] = {}
    for item in parsed:
        if item.uid in seen:
            results[item.index] = ItemResult(item.uid, "duplicate", id=seen[item.uid])
            continue
        if item.uid in first_in_batch:
            results[item.index] = ItemResult(item.uid, "duplicate")  # id filled after insert
            continue
        screen_id = device.screen_id if isinstance(device, Pad) else item.screen_id
        screen = screens.get(screen_id) if screen_id is not None else None
        if screen is None and (device.kind == DeviceKind.BOX or (item.screen_id is not None and not screens)):
            message = _("This device has no such screen.")
            results[item.index] = ItemResult(
                item.uid, "error", error=error_dict(item_error(errors.NOT_FOUND, message, {"screen_id": [message]}))
            )
            continue
        subject = subjects.get(item.subject_id) if item.subject_id is not None else None
        event = _new_event(  # ids rather than instances: the same row, without the relation descriptors' cost
            company_id=company.pk,
            kind=event_kind(subject, item.happened_at),
            subject_id=subject.pk if subject else None,
            subject_name=subject.name if subject else "",
            subject_type=subject.subject_type if subject else "",
            subject_job_number=subject.job_number if subject else "",
            device_kind=device.kind,
            device_id=device.pk,
            device_name=device.name,
            screen_id=screen.pk if screen else None,
            direction=screen.direction if screen else "",
            confidence=item.confidence,
            distance=item.distance,
            happened_at=item.happened_at,
            received_at=now,
            uid=item.uid,
        )
        first_in_batch[item.uid] = item.index
        to_create.append((item, event))
    return Classified(to_create=to_create, subjects=subjects)
