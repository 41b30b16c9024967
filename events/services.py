"""Ingest: turning what devices post into stored events, then telling the dashboards.

Built for batches: one query for the subjects (with their first photo), one for the screens,
one for the uids seen before, one bulk insert. Each item gets its own answer (`created`,
`duplicate` or an error with its code), and a bad item never rejects the good ones.

On PostgreSQL a batch of COPY_MIN_ROWS or more is inserted with COPY (its ids drawn from the
table's sequence first), several times cheaper than an INSERT of the same rows; a smaller one
(a single event) with one INSERT ... RETURNING.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import operator
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connections, models, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from devices.models import Device, DeviceKind, DeviceStatusChange, Pad, Screen
from events.live import broadcast
from events.models import Event, EventKind
from kangaroo import errors
from kangaroo.api.filters import MAX_ID
from kangaroo.errors import KangarooError
from subjects.images import normalise_photo
from subjects.models import Subject, SubjectType
from subjects.selectors import with_first_photo
from subjects.services import photo_files_cleanup

MAX_BATCH = 500
COPY_MIN_ROWS = 20  # below this, one INSERT ... RETURNING beats fetching ids, then COPY
FUTURE_TOLERANCE = timedelta(minutes=5)
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


def _item_error(error: errors.ErrorCode, message=None, fields: dict | None = None) -> KangarooError:
    return KangarooError(error, message, fields=fields or {})


def _as_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise _item_error(errors.VALIDATION_ERROR, fields={name: [_("Must be an id (a positive integer) or null.")]})
    return value


def parse_item(index: int, raw: Any, *, now: datetime) -> ParsedItem:
    """Validate one posted event (no database access)."""
    if not isinstance(raw, dict):
        raise _item_error(errors.VALIDATION_ERROR, _("Each event must be an object."))
    unknown = sorted(set(raw) - ITEM_FIELDS)
    if unknown:
        raise _item_error(errors.UNKNOWN_FIELDS, fields={name: [_("Unknown field.")] for name in unknown})
    uid = raw.get("uid")
    if not isinstance(uid, str) or not 1 <= len(uid) <= 64:
        raise _item_error(errors.VALIDATION_ERROR, fields={"uid": [_("A text of 1 to 64 characters is required.")]})
    happened_raw = raw.get("happened_at")
    try:
        happened_at = parse_datetime(happened_raw) if isinstance(happened_raw, str) else None
    except ValueError:  # well formed but impossible, like February 30th
        happened_at = None
    if happened_at is None or timezone.is_naive(happened_at):
        raise _item_error(
            errors.VALIDATION_ERROR,
            fields={"happened_at": [_("An ISO 8601 date and time with a time zone is required.")]},
        )
    if happened_at > now + FUTURE_TOLERANCE:
        raise _item_error(errors.EVENT_FROM_FUTURE, fields={"happened_at": [str(errors.EVENT_FROM_FUTURE.message)]})
    if happened_at < now - timedelta(days=settings.EVENT_MAX_AGE_DAYS):
        raise _item_error(errors.EVENT_TOO_OLD, fields={"happened_at": [str(errors.EVENT_TOO_OLD.message)]})
    confidence = raw.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1
    ):
        raise _item_error(errors.VALIDATION_ERROR, fields={"confidence": [_("A number from 0 to 1.")]})
    snapshot = raw.get("snapshot")
    if snapshot is not None:
        if not isinstance(snapshot, str):
            raise _item_error(errors.VALIDATION_ERROR, fields={"snapshot": [_("Base64-encoded image expected.")]})
        try:
            snapshot = base64.b64decode(snapshot, validate=True)
        except (binascii.Error, ValueError):
            raise _item_error(
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


def _classify(subject: Subject | None, happened_at: datetime) -> str:
    if subject is None:
        return EventKind.STRANGER
    if subject.subject_type == SubjectType.VISITOR and subject.visit_state(happened_at) not in (None, "current"):
        return EventKind.VISITOR_OUTSIDE_WINDOW
    return EventKind.RECOGNIZED


def _screens_for(device: Device, screen_ids: set[int]) -> dict[int, Screen]:
    """The screens this device may report for: a box its own cameras, a pad its screen."""
    if isinstance(device, Pad):
        return {device.screen_id: device.screen} if device.screen_id else {}
    screens = Screen.objects.for_company(device.company).filter(pk__in=screen_ids, box_id=device.pk).order_by()
    return {screen.pk: screen for screen in screens}


def event_ingest(*, device: Device, items: list[Any], now: datetime | None = None) -> list[ItemResult]:
    """Store the events a device posted; answer each one. Broadcasts after commit."""
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
    company = device.company
    results: list[ItemResult | None] = [None] * len(items)
    parsed: list[ParsedItem] = []
    for index, raw in enumerate(items):
        try:
            parsed.append(parse_item(index, raw, now=now))
        except KangarooError as exc:
            uid = raw.get("uid") if isinstance(raw, dict) and isinstance(raw.get("uid"), str) else None
            results[index] = ItemResult(uid, "error", error=_error_dict(exc))

    subjects = _subjects_for(company, {item.subject_id for item in parsed if item.subject_id is not None})
    screens = _screens_for(device, {item.screen_id for item in parsed if item.screen_id is not None})
    seen = (
        dict(
            Event.objects.for_company(company)
            .filter(device_kind=device.kind, device_id=device.pk, uid__in={item.uid for item in parsed})
            .order_by()  # no sort: the unique (company, device, uid) index finds them
            .values_list("uid", "id")
        )
        if look_up_uids and parsed
        else {}
    )

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
                item.uid, "error", error=_error_dict(_item_error(errors.NOT_FOUND, message, {"screen_id": [message]}))
            )
            continue
        subject = subjects.get(item.subject_id) if item.subject_id is not None else None
        event = Event(  # ids rather than instances: the same row, without the relation descriptors' cost
            company_id=company.pk,
            kind=_classify(subject, item.happened_at),
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
            happened_at=item.happened_at,
            received_at=now,
            uid=item.uid,
        )
        first_in_batch[item.uid] = item.index
        to_create.append((item, event))

    connection = connections[router.db_for_write(Event)]
    atomic = transaction.atomic() if _needs_transaction(to_create, connection) else contextlib.nullcontext()
    with photo_files_cleanup() as stored, atomic:
        for item, event in to_create:
            if item.snapshot is not None:
                try:
                    image = normalise_photo(io.BytesIO(item.snapshot))
                except KangarooError as exc:
                    results[item.index] = ItemResult(item.uid, "error", error=_error_dict(exc, field="snapshot"))
                    continue
                name = default_storage.save(
                    f"snapshots/{company.pk}/{secrets.token_hex(16)}.jpg", ContentFile(image.image)
                )
                stored.append(name)
                event.snapshot.name = name
        valid = [(item, event) for item, event in to_create if results[item.index] is None]
        created = _insert(connection, [event for _, event in valid])  # each built above with the device's company
        for (item, _event), event in zip(valid, created, strict=True):
            results[item.index] = ItemResult(item.uid, "created", id=event.pk)
        photo_ids = {
            event.subject_id: subjects[event.subject_id].first_photo_id
            for event in created
            if event.subject_id and subjects[event.subject_id].first_photo_id
        }
        transaction.on_commit(lambda: broadcast(created, photo_ids))

    ids_by_uid = {r.uid: r.id for r in results if r is not None and r.status == "created"}
    for result in results:
        if result is not None and result.status == "duplicate" and result.id is None:
            result.id = ids_by_uid.get(result.uid)
    return [r for r in results if r is not None]


def _error_dict(exc: KangarooError, field: str | None = None) -> dict[str, Any]:
    fields = exc.fields
    if field and fields and field not in fields:
        fields = {field: [message for messages in fields.values() for message in messages]}
    return {"code": exc.code, "message": str(exc.message), "fields": fields or {}}


def _subjects_for(company, subject_ids: set[int]) -> dict[int, Subject]:
    """The company's subjects among `subject_ids` (any other id is a stranger), with the
    fields an event copies and `first_photo_id`, the id of the subject's first photo (None
    without one), for the welcome cards' thumbnails."""
    if not subject_ids:
        return {}
    subjects = with_first_photo(
        Subject.objects.for_company(company)
        .filter(pk__in=subject_ids)
        .order_by()  # by primary key, not by walking the company's name index
        .only("company_id", "name", "subject_type", "job_number", "visit_start", "visit_end")
    )
    return {subject.pk: subject for subject in subjects}


# Field types whose Python value psycopg writes as is; Event's other fields are handled below.
_COPY_AS_IS = (models.CharField, models.IntegerField, models.FloatField, models.DateTimeField, models.ForeignKey)


def _file_name_getter(attname: str):
    return lambda event: getattr(event, attname).name or ""


def _copy_columns() -> list[tuple[str, Any]] | None:
    """(column, value getter) for each of Event's columns but the id; None if a field needs
    a conversion that only the ORM knows (then bulk_create is used)."""
    columns = []
    for model_field in Event._meta.concrete_fields:
        if model_field.primary_key:
            continue
        if isinstance(model_field, models.FileField):
            columns.append((model_field.column, _file_name_getter(model_field.attname)))
        elif isinstance(model_field, _COPY_AS_IS):
            columns.append((model_field.column, operator.attrgetter(model_field.attname)))
        else:
            return None
    return columns


_COPY_COLUMNS = _copy_columns()


def _needs_transaction(to_create: list[tuple[ParsedItem, Event]], connection) -> bool:
    """Several rows, or a row with its snapshot file, are stored in one transaction. One row
    alone is one INSERT, atomic by itself: without a transaction it saves the BEGIN and
    COMMIT round trips. Inside a caller's transaction we still take a savepoint, so that a
    uid raced in by a concurrent retry rolls back only our part."""
    return len(to_create) != 1 or to_create[0][0].snapshot is not None or connection.in_atomic_block


def _insert(connection, events: list[Event]) -> list[Event]:
    """Insert `events` and set their ids, like bulk_create, which it is off PostgreSQL. A single
    row outside a transaction is saved alone (bulk_create would open one); on PostgreSQL,
    COPY_MIN_ROWS or more go by COPY. A uid already stored raises
    IntegrityError either way."""
    if len(events) == 1 and not connection.in_atomic_block:
        events[0].save(force_insert=True)  # one INSERT in autocommit, no transaction around it
        return events
    fast = connection.vendor == "postgresql" and _COPY_COLUMNS is not None
    if not fast or len(events) < COPY_MIN_ROWS:
        return Event.objects.bulk_create(events, batch_size=MAX_BATCH)  # tenant: the caller built them with company
    quote = connection.ops.quote_name
    table, pk_column = Event._meta.db_table, Event._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk_column, len(events)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        columns = ", ".join(quote(column) for column in (pk_column, *(c for c, _ in _COPY_COLUMNS)))
        getters = [getter for _, getter in _COPY_COLUMNS]
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk, event in zip(ids, events, strict=True):
                copy.write_row([pk, *(get(event) for get in getters)])
    for pk, event in zip(ids, events, strict=True):
        _stored(event, pk, connection)
    return events


def _stored(event: Event, pk: int, connection) -> Event:
    event.pk = pk
    event._state.adding = False
    event._state.db = connection.alias
    return event


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
    transaction.on_commit(lambda: broadcast([event]))
    return event
