"""Every write on devices: registration, changes, keys, heartbeats and status changes.

Admin and API both call these, so the rules (unique names, the box's screen limit, one
company per device and per relation, masked camera passwords in the audit log) hold
whatever the entry point. Each write by a person is audited. Heartbeats are not: a device
sends one every half minute, and its trace is `last_seen_at` plus a `DeviceStatusChange`
whenever its status changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Min
from django.utils import timezone

from accounts.models import Company, User
from accounts.services import audit_record
from devices import keys, selectors
from devices.models import (
    DEVICE_MODELS,
    Box,
    CameraStatus,
    Device,
    DeviceKind,
    DeviceStatusChange,
    Pad,
    Screen,
    Status,
    StatusChange,
    TVBox,
    offline_after,
)
from devices.signals import device_key_changed
from devices.validators import mask_camera_url, unmask_camera_url
from kangaroo import errors
from kangaroo.errors import REGISTRY, KangarooError
from subjects.gallery import gallery_compact
from subjects.models import GalleryCounter

D = TypeVar("D", bound=Device)

# A device clock may run a little fast; more than this is a device with a wrong clock
# (or a forged request), whose timestamps would corrupt attendance.
HEARTBEAT_FUTURE_TOLERANCE = timedelta(minutes=5)

BOX_FIELDS = ("name", "location", "serial", "hardware_model", "software_version", "max_screens")
SCREEN_FIELDS = ("name", "location", "camera_url", "direction", "is_active", "box")
PAD_FIELDS = ("name", "location", "screen", "mode", "welcome_text")
TVBOX_FIELDS = (
    "name",
    "location",
    "greeting_employee",
    "greeting_visitor",
    "greeting_vip",
    "theme",
    "greet_again_after",
    "screens",
)


# --- helpers ----------------------------------------------------------------------------------


def _not_found(field: str) -> KangarooError:
    return errors.related_not_found(field)


def _own(company: Company, obj: models.Model | None, field: str) -> None:
    """A related object must belong to the same company; otherwise it does not exist."""
    if obj is not None and obj.company_id != company.pk:
        raise _not_found(field)


def _audit_value(field: str, value: Any) -> Any:
    if field == "camera_url":
        return mask_camera_url(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (list, tuple, set)):
        return sorted(_audit_value(field, item) for item in value)
    return value


def _name_taken() -> KangarooError:
    return KangarooError(errors.DEVICE_NAME_TAKEN, fields={"name": [str(errors.DEVICE_NAME_TAKEN.message)]})


def _check_name(*, model: type[Device], company: Company, name: str, exclude_pk=None) -> str:
    name = (name or "").strip()
    taken = model.objects.for_company(company).filter(name__iexact=name).exclude(pk=exclude_pk)
    if taken.exists():
        raise _name_taken()
    return name


def _set_key(device: Device) -> str:
    issued = keys.issue_key(device.kind, device.company_id)
    device.key_prefix = issued.prefix
    device.key_hash = issued.hash
    device.key_issued_at = timezone.now()
    device.key_revoked_at = None
    return issued.key


def _validate(device: Device) -> None:
    """Field rules (camera URL, greetings, choices, lengths) as a coded error.

    The API's serializers and the admin's forms check the same rules first, with nicer
    messages; this keeps every other caller of a service from storing a bad row.
    """
    try:
        device.full_clean(exclude=["key_prefix", "key_hash"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        codes = [error.code for field_errors in exc.error_dict.values() for error in field_errors]
        error = next((REGISTRY[code] for code in codes if code in REGISTRY), errors.VALIDATION_ERROR)
        raise KangarooError(error, fields=exc.message_dict) from None


def _insert(device: D) -> None:
    """Save a new device; a name taken by a concurrent request is the coded error, not a 500."""
    _validate(device)
    try:
        with transaction.atomic():  # a savepoint, so the caller's transaction survives
            device.save()
    except IntegrityError:
        if type(device).objects.for_company(device.company).filter(name__iexact=device.name).exists():
            raise _name_taken() from None
        raise


def _register(*, company: Company, actor: User | None, device: D, changes: dict[str, Any]) -> tuple[D, str]:
    device.company = company
    device.name = _check_name(model=type(device), company=company, name=device.name)
    key = _set_key(device)
    _insert(device)
    audit_record(
        company=company,
        actor=actor,
        action=f"{device.kind}.create",
        obj=device,
        changes={field: _audit_value(field, value) for field, value in changes.items()},
    )
    return device, key


def _lock(device: D, company: Company) -> D:
    return type(device).objects.for_company(company).select_for_update().get(pk=device.pk)


def _apply(
    *, company: Company, actor: User | None, device: D, editable: Iterable[str], data: dict[str, Any]
) -> tuple[D, dict[str, list]]:
    """Set the changed plain fields of a locked `device`, save and audit them."""
    unknown = set(data) - set(editable)
    if unknown:
        raise TypeError(f"{device.kind} update does not change {sorted(unknown)}")
    if "name" in data:
        data["name"] = _check_name(model=type(device), company=company, name=data["name"], exclude_pk=device.pk)
    if "camera_url" in data:
        data["camera_url"] = unmask_camera_url(data["camera_url"], device.camera_url)
    changes = {k: [getattr(device, k), v] for k, v in data.items() if getattr(device, k) != v}
    for field, (_old, new) in changes.items():
        setattr(device, field, new)
    if changes:
        _validate(device)
        try:
            with transaction.atomic():
                device.save(update_fields=[*changes, "updated_at"])
        except IntegrityError:
            raise _name_taken() from None
    return device, {k: [_audit_value(k, old), _audit_value(k, new)] for k, (old, new) in changes.items()}


def _audit_update(*, company: Company, actor: User | None, device: Device, changes: dict[str, list]) -> None:
    if changes:
        audit_record(company=company, actor=actor, action=f"{device.kind}.update", obj=device, changes=changes)


# --- the box's screen limit -------------------------------------------------------------------


def box_screen_limit_check(*, box: Box, screen: Screen | None = None, limit: int | None = None) -> None:
    """Raise `box_screen_limit` if `screen` (or, with `limit`, the screens already there)
    would be more than `box` may serve. Unlocked: call it inside `_lock_box_for` for a
    guarantee; forms call it alone to show the error early."""
    limit = box.max_screens if limit is None else limit
    count = selectors.box_screen_count(box=box, excluding=screen)
    over = count >= limit if screen is not None else count > limit
    if over:
        raise KangarooError(
            errors.BOX_SCREEN_LIMIT,
            fields={"box" if screen is not None else "max_screens": [str(errors.BOX_SCREEN_LIMIT.message)]},
            extra={"count": count, "limit": limit},
        )


def _lock_box_for(*, company: Company, box: Box, screen: Screen) -> Box:
    """Lock the box row, then count: two requests racing for its last place queue on the
    lock, and the second one counts the first one's screen."""
    _own(company, box, "box")
    try:
        box = Box.objects.for_company(company).select_for_update().get(pk=box.pk)
    except Box.DoesNotExist:
        raise _not_found("box") from None
    box_screen_limit_check(box=box, screen=screen)
    return box


# --- boxes ------------------------------------------------------------------------------------


def _box_screens_changed(company: Company, box_ids: Iterable[int | None]) -> None:
    """A screen was added to, taken from, changed on or deleted from these boxes: their
    `updated_at` moves, which is how ingest knows that the screens it keeps per box
    (`events.parsing`, read once per box and `updated_at` rather than on every post) are
    out of date. In the change's transaction, so the two commit together."""
    ids = [pk for pk in box_ids if pk is not None]
    if ids:
        Box.objects.for_company(company).filter(pk__in=ids).update(updated_at=timezone.now())


@transaction.atomic
def box_create(
    *,
    company: Company,
    actor: User | None,
    name: str,
    location: str = "",
    serial: str = "",
    hardware_model: str = "",
    software_version: str = "",
    max_screens: int = 4,
) -> tuple[Box, str]:
    """A new box and its key. The key is returned once and stored only as a hash."""
    box = Box(
        name=name,
        location=location,
        serial=serial,
        hardware_model=hardware_model,
        software_version=software_version,
        max_screens=max_screens,
    )
    return _register(company=company, actor=actor, device=box, changes={"max_screens": max_screens})


@transaction.atomic
def box_update(*, company: Company, actor: User | None, box: Box, **data: Any) -> Box:
    box = _lock(box, company)  # the same lock as attaching, so the limit cannot slip under a new screen
    if "max_screens" in data and data["max_screens"] != box.max_screens:
        box_screen_limit_check(box=box, limit=data["max_screens"])
    box, changes = _apply(company=company, actor=actor, device=box, editable=BOX_FIELDS, data=data)
    _audit_update(company=company, actor=actor, device=box, changes=changes)
    return box


# --- screens ----------------------------------------------------------------------------------


@transaction.atomic
def screen_create(
    *,
    company: Company,
    actor: User | None,
    name: str,
    camera_url: str,
    location: str = "",
    direction: str = "both",
    box: Box | None = None,
    is_active: bool = True,
) -> tuple[Screen, str]:
    screen = Screen(name=name, camera_url=camera_url, location=location, direction=direction, is_active=is_active)
    if box is not None:
        screen.box = _lock_box_for(company=company, box=box, screen=screen)
    created = _register(
        company=company,
        actor=actor,
        device=screen,
        changes={"camera_url": camera_url, "direction": direction, "box": box},
    )
    _box_screens_changed(company, [screen.box_id])
    return created


@transaction.atomic
def screen_attach(*, company: Company, actor: User | None, screen: Screen, box: Box | None) -> Screen:
    """Attach `screen` to `box` (None: detach it), within the box's screen limit."""
    _own(company, screen, "screen")
    try:
        screen = _lock(screen, company)
    except Screen.DoesNotExist:
        raise _not_found("screen") from None
    if (box.pk if box else None) == screen.box_id:
        return screen
    old = screen.box_id
    screen.box = _lock_box_for(company=company, box=box, screen=screen) if box is not None else None
    screen.save(update_fields=["box", "updated_at"])
    _box_screens_changed(company, [old, screen.box_id])
    audit_record(
        company=company, actor=actor, action="screen.attach", obj=screen, changes={"box": [old, screen.box_id]}
    )
    return screen


@transaction.atomic
def screen_update(*, company: Company, actor: User | None, screen: Screen, **data: Any) -> Screen:
    """Change a screen. A camera URL sent back with the masked password keeps the stored one."""
    if "box" in data:
        screen = screen_attach(company=company, actor=actor, screen=screen, box=data.pop("box"))
    screen = _lock(screen, company)
    screen, changes = _apply(company=company, actor=actor, device=screen, editable=SCREEN_FIELDS, data=data)
    if changes:
        _box_screens_changed(company, [screen.box_id])
    _audit_update(company=company, actor=actor, device=screen, changes=changes)
    return screen


# --- pads -------------------------------------------------------------------------------------


@transaction.atomic
def pad_create(
    *,
    company: Company,
    actor: User | None,
    name: str,
    location: str = "",
    screen: Screen | None = None,
    mode: str = "check_in",
    welcome_text: str = "",
) -> tuple[Pad, str]:
    _own(company, screen, "screen")
    pad = Pad(name=name, location=location, screen=screen, mode=mode, welcome_text=welcome_text)
    return _register(company=company, actor=actor, device=pad, changes={"screen": screen, "mode": mode})


@transaction.atomic
def pad_update(*, company: Company, actor: User | None, pad: Pad, **data: Any) -> Pad:
    _own(company, data.get("screen"), "screen")
    pad = _lock(pad, company)
    pad, changes = _apply(company=company, actor=actor, device=pad, editable=PAD_FIELDS, data=data)
    _audit_update(company=company, actor=actor, device=pad, changes=changes)
    return pad


def pad_location_set(*, company: Company, actor: Any, pad: Pad, location: str) -> Pad:
    """The pad itself (actor: its device principal) or an admin sets where it stands."""
    return pad_update(company=company, actor=actor, pad=pad, location=location.strip())


# --- TV boxes ---------------------------------------------------------------------------------


def _check_screens(company: Company, screens: Iterable[Screen]) -> list[Screen]:
    screens = list(screens)
    for screen in screens:
        _own(company, screen, "screens")
    return screens


@transaction.atomic
def tvbox_create(
    *,
    company: Company,
    actor: User | None,
    name: str,
    location: str = "",
    screens: Iterable[Screen] = (),
    theme: str = "light",
    greet_again_after: int = 10,
    **greetings: str,
) -> tuple[TVBox, str]:
    unknown = set(greetings) - {"greeting_employee", "greeting_visitor", "greeting_vip"}
    if unknown:
        raise TypeError(f"tvbox_create does not take {sorted(unknown)}")
    screens = _check_screens(company, screens)
    tvbox = TVBox(name=name, location=location, theme=theme, greet_again_after=greet_again_after, **greetings)
    tvbox, key = _register(company=company, actor=actor, device=tvbox, changes={"screens": screens, "theme": theme})
    tvbox.screens.set(screens)
    return tvbox, key


@transaction.atomic
def tvbox_update(*, company: Company, actor: User | None, tvbox: TVBox, **data: Any) -> TVBox:
    screens = data.pop("screens", None)
    tvbox = _lock(tvbox, company)
    tvbox, changes = _apply(company=company, actor=actor, device=tvbox, editable=TVBOX_FIELDS, data=data)
    if screens is not None:
        screens = _check_screens(company, screens)
        before = sorted(tvbox.screens.values_list("pk", flat=True))
        after = sorted(screen.pk for screen in screens)
        if before != after:
            tvbox.screens.set(screens)
            changes["screens"] = [before, after]
    _audit_update(company=company, actor=actor, device=tvbox, changes=changes)
    return tvbox


# --- any kind ---------------------------------------------------------------------------------

# kind -> (its create service, its update service, the update's keyword for the device): the
# one table the API, the admin and the tests register and edit devices of any kind through.
_WRITERS: dict[str, tuple[Any, Any, str]] = {
    DeviceKind.BOX: (box_create, box_update, "box"),
    DeviceKind.SCREEN: (screen_create, screen_update, "screen"),
    DeviceKind.PAD: (pad_create, pad_update, "pad"),
    DeviceKind.TVBOX: (tvbox_create, tvbox_update, "tvbox"),
}


def device_create(*, company: Company, actor: User | None, kind: str, **data: Any) -> tuple[Device, str]:
    """Register a device of `kind` (a `DeviceKind`) with the fields its own service takes;
    answers the device and its key (shown once)."""
    create, _update, _keyword = _WRITERS[kind]
    return create(company=company, actor=actor, **data)


def device_update(*, company: Company, actor: User | None, device: Device, **data: Any) -> Device:
    """Change a device of any kind through its kind's own update service."""
    _create, update, keyword = _WRITERS[device.kind]
    return update(company=company, actor=actor, **{keyword: device}, **data)


def _announce_key_changed(device: Device) -> None:
    kind, pk = device.kind, device.pk
    transaction.on_commit(lambda: device_key_changed.send(sender=type(device), device_kind=kind, device_id=pk))


@transaction.atomic
def device_delete(*, company: Company, actor: User | None, device: Device) -> None:
    device = _lock(device, company)
    audit_record(company=company, actor=actor, action=f"{device.kind}.delete", obj=device)
    _announce_key_changed(device)
    if isinstance(device, Screen):
        _box_screens_changed(company, [device.box_id])
    device.delete()


@transaction.atomic
def device_key_rotate(*, company: Company, actor: User | None, device: D) -> tuple[D, str]:
    """A new key for `device`; the old one stops working at once. Returns the new key, once."""
    device = _lock(device, company)
    key = _set_key(device)
    device.save(update_fields=["key_prefix", "key_hash", "key_issued_at", "key_revoked_at", "updated_at"])
    audit_record(company=company, actor=actor, action=f"{device.kind}.key_rotate", obj=device)
    _announce_key_changed(device)
    return device, key


@transaction.atomic
def device_key_revoke(*, company: Company, actor: User | None, device: D) -> D:
    """The device's key stops working (401 `device_key_revoked`) until it is rotated."""
    device = _lock(device, company)
    if device.key_revoked_at is None:
        device.key_revoked_at = timezone.now()
        device.save(update_fields=["key_revoked_at", "updated_at"])
        audit_record(company=company, actor=actor, action=f"{device.kind}.key_revoke", obj=device)
        _announce_key_changed(device)
    return device


# --- heartbeats and status --------------------------------------------------------------------


def _record_change(device: Device, change: str, at: datetime) -> DeviceStatusChange:
    return DeviceStatusChange.objects.create(
        company_id=device.company_id,
        device_kind=device.kind,
        device_id=device.pk,
        device_name=device.name,
        change=change,
        at=at,
    )


def _mark_seen(device: Device, now: datetime) -> list[str]:
    """Set `last_seen_at`; record `device_online` if the device was not known online."""
    device.last_seen_at = now
    if device.recorded_status == Status.ONLINE:
        return ["last_seen_at"]
    device.recorded_status = Status.ONLINE
    _record_change(device, StatusChange.ONLINE, now)
    return ["last_seen_at", "recorded_status"]


@transaction.atomic
def device_heartbeat_record(
    *,
    device: D,
    now: datetime | None = None,
    sent_at: datetime | None = None,
    version: str | None = None,
    address: str | None = None,
    uptime: int | None = None,
    cameras: list[dict[str, Any]] | None = None,
    gallery_cursor: int | None = None,
) -> D:
    """Record that `device` is alive, and what it reports.

    A box also reports on each of its cameras (`cameras: [{"screen_id", "status"}]`, only
    screens attached to it) and the last gallery change it applied. A camera reported "ok"
    counts as seen, so a dead camera goes offline like any device.
    """
    now = now or timezone.now()
    if sent_at is not None and sent_at > now + HEARTBEAT_FUTURE_TOLERANCE:
        raise KangarooError(
            errors.HEARTBEAT_FROM_FUTURE,
            fields={"sent_at": [str(errors.HEARTBEAT_FROM_FUTURE.message)]},
            extra={"server_time": now.isoformat()},
        )
    company = device.company
    device = _lock(device, company)
    fields = _mark_seen(device, now)
    reported = {"software_version": version, "address": address, "uptime_seconds": uptime}
    if isinstance(device, Box) and gallery_cursor is not None:
        reported["gallery_cursor"] = gallery_cursor
    for field, value in reported.items():
        if value is not None:
            setattr(device, field, value)
            fields.append(field)
    device.save(update_fields=fields)
    if isinstance(device, Box) and cameras:
        _record_cameras(company=company, box=device, cameras=cameras, now=now)
    return device


def _record_cameras(*, company: Company, box: Box, cameras: list[dict[str, Any]], now: datetime) -> None:
    ids = [camera["screen_id"] for camera in cameras]
    # Only the box's own screens: another box's or company's screen is "not found".
    screens = {s.pk: s for s in Screen.objects.for_company(company).filter(box=box, pk__in=ids).select_for_update()}
    for index, screen_id in enumerate(ids):
        if screen_id not in screens:
            raise _not_found(f"cameras.{index}.screen_id")
    for camera in cameras:
        screen = screens[camera["screen_id"]]
        screen.camera_status = camera["status"]
        fields = ["camera_status"]
        if camera["status"] == CameraStatus.OK:
            fields += _mark_seen(screen, now)
        screen.save(update_fields=fields)


def devices_mark_offline(*, now: datetime | None = None) -> list[DeviceStatusChange]:
    """Record `device_offline` for every device last announced online whose heartbeats
    stopped more than DEVICE_OFFLINE_AFTER ago, in every company. Safe to run from several
    processes at once: rows are locked (or skipped if a heartbeat holds them), and only
    rows still recorded online are flipped, so each change is recorded once."""
    now = now or timezone.now()
    cutoff = now - offline_after()
    recorded: list[DeviceStatusChange] = []
    for model in DEVICE_MODELS.values():
        with transaction.atomic():
            stale = list(
                model.objects.select_for_update(skip_locked=True)  # tenant: the watcher serves every company
                .filter(recorded_status=Status.ONLINE, last_seen_at__lt=cutoff)
                .only("pk", "company_id", "name")
            )
            for device in stale:
                # Conditional, row by row: a heartbeat that slipped in (SQLite has no row
                # locks) keeps its device online, and no change is recorded for it.
                flipped = model.objects.filter(  # tenant: the row found above, by its own pk
                    pk=device.pk, recorded_status=Status.ONLINE, last_seen_at__lt=cutoff
                ).update(recorded_status=Status.OFFLINE)
                if flipped:
                    recorded.append(_record_change(device, StatusChange.OFFLINE, now))
    return recorded


# --- gallery compaction -----------------------------------------------------------------------


def gallery_compact_companies(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """Compact every company's gallery change log (`subjects.gallery.gallery_compact`),
    keeping the tombstones the company's slowest box has not read yet (up to
    GALLERY_TOMBSTONE_DAYS). Each company in its own transaction, so a company's writers
    wait at most for their own compaction. Returns what was done, by company id."""
    slowest = dict(
        Box.objects.values("company_id")  # tenant: the periodic job serves every company
        .annotate(cursor=Min("gallery_cursor"))
        .values_list("company_id", "cursor")
    )
    companies = GalleryCounter.objects.values_list("company_id", flat=True)  # tenant: every company's log
    return {
        company_id: gallery_compact(
            company_id=company_id,
            oldest_cursor=slowest.get(company_id),
            tombstone_days=settings.GALLERY_TOMBSTONE_DAYS,
            now=now,
        )
        for company_id in companies
    }
