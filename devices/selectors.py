"""Reads on devices: lists, status by timestamp, and the device a key belongs to.

Nothing here contacts a device. A device's status comes from the time of its last
heartbeat, so a list of a thousand devices is one query however many of them are down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Company
from devices import keys
from devices.models import DEVICE_MODELS, Box, Device, Pad, Screen, Status, TVBox, offline_after
from kangaroo import errors
from kangaroo.compiled import CompiledQuery
from kangaroo.errors import KangarooError
from subjects.models import GalleryChange, GalleryCounter


def with_status(queryset: QuerySet, status: str, *, now: datetime | None = None) -> QuerySet:
    """Rows whose status (as `Device.get_status` computes it) is `status`, filtered in SQL."""
    cutoff = (now or timezone.now()) - offline_after()
    if status == Status.ONLINE:
        return queryset.filter(last_seen_at__gte=cutoff)
    if status == Status.OFFLINE:
        return queryset.filter(last_seen_at__lt=cutoff)
    if status == Status.NEVER_SEEN:
        return queryset.filter(last_seen_at__isnull=True)
    raise ValueError(f"unknown status {status!r}")


def box_list(*, company: Company | None) -> QuerySet[Box]:
    boxes = Box.objects.for_company(company).annotate(screen_count=Count("screens")).order_by("name")
    return with_gallery_lag(boxes)


# --- gallery lag ------------------------------------------------------------------------------


def with_gallery_lag(boxes: QuerySet[Box]) -> QuerySet[Box]:
    """Annotate each box with its company's latest gallery change (`gallery_latest`) and
    the time of the first change the box has not applied (`gallery_behind_since`; None
    when it is up to date), in SQL: a list of any length costs no extra query."""
    latest = GalleryCounter.objects.filter(company=OuterRef("company")).values("sequence")[:1]  # tenant: correlated
    first_missing = (
        GalleryChange.objects.filter(  # tenant: correlated to the row
            company=OuterRef("company"), sequence__gt=OuterRef("gallery_cursor")
        )
        .order_by("sequence")
        .values("at")[:1]
    )
    return boxes.annotate(
        gallery_latest=Coalesce(Subquery(latest), Value(0)), gallery_behind_since=Subquery(first_missing)
    )


@dataclass(frozen=True)
class GalleryLag:
    changes: int  # how many changes the box has not applied
    since: datetime | None  # when the first of them happened; None when up to date
    lagging: bool


def gallery_lag(box: Box, *, now: datetime | None = None) -> GalleryLag:
    """How far behind the gallery `box` is, by the cursor of its last heartbeat. A box
    is lagging once it is more than GALLERY_LAG_CHANGES changes behind since longer than
    GALLERY_LAG_SECONDS. Reads the annotations of `with_gallery_lag` (loads them if absent)."""
    if not hasattr(box, "gallery_latest"):
        box = with_gallery_lag(Box.objects.for_company(box.company_id)).get(pk=box.pk)
    changes = max(box.gallery_latest - box.gallery_cursor, 0)
    since = box.gallery_behind_since if changes else None
    now = now or timezone.now()
    lagging = (
        box.last_seen_at is not None  # a box never seen is "never seen", not lagging
        and changes > settings.GALLERY_LAG_CHANGES
        and since is not None
        and since <= now - timedelta(seconds=settings.GALLERY_LAG_SECONDS)
    )
    return GalleryLag(changes=changes, since=since, lagging=lagging)


def only_lagging(boxes: QuerySet[Box], *, now: datetime | None = None) -> QuerySet[Box]:
    """The boxes of `boxes` that `gallery_lag` calls lagging, filtered in SQL (one query for
    a list of any length)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.GALLERY_LAG_SECONDS)
    return (
        with_gallery_lag(boxes)
        .filter(last_seen_at__isnull=False, gallery_behind_since__lte=cutoff)
        .alias(gallery_behind=F("gallery_latest") - F("gallery_cursor"))
        .filter(gallery_behind__gt=settings.GALLERY_LAG_CHANGES)
    )


def lagging_boxes(*, company: Company, now: datetime | None = None) -> list[Box]:
    """The company's boxes that are lagging, by name."""
    return list(only_lagging(Box.objects.for_company(company).order_by("name"), now=now))


def screen_list(*, company: Company | None) -> QuerySet[Screen]:
    return Screen.objects.for_company(company).select_related("box").order_by("name")


def pad_list(*, company: Company | None) -> QuerySet[Pad]:
    return Pad.objects.for_company(company).select_related("screen").order_by("name")


def tvbox_list(*, company: Company | None) -> QuerySet[TVBox]:
    return TVBox.objects.for_company(company).prefetch_related("screens").order_by("name")


def box_screen_count(*, box: Box, excluding: Screen | None = None) -> int:
    attached = Screen.objects.for_company(box.company_id).filter(box=box)
    if excluding is not None and excluding.pk is not None:
        attached = attached.exclude(pk=excluding.pk)
    return attached.count()


def _device_by_prefix(model: type[Device]) -> CompiledQuery:
    # Every device request asks this, so its SQL is compiled once (`kangaroo.compiled`); the
    # row is still read on every request, so a revoked key stops at once in every process.
    return CompiledQuery(
        model,
        lambda company_id, prefix: (
            model.objects.for_company(company_id).select_related("company").filter(key_prefix=prefix).order_by("pk")[:1]
        ),
    )


_DEVICE_BY_PREFIX = {model: _device_by_prefix(model) for model in DEVICE_MODELS.values()}


def device_for_key(key: str) -> Device:
    """The device `key` belongs to, with its company; raises `device_key_invalid` or
    `device_key_revoked`.

    "Revoked" is told only to a caller who presents the real (old) key: a guessed prefix
    answers "invalid", so the answer reveals nothing about which devices exist.
    """
    parsed = keys.parse_key(key)
    model = DEVICE_MODELS.get(parsed.kind) if parsed else None
    if model is None:
        raise KangarooError(errors.DEVICE_KEY_INVALID)
    found = _DEVICE_BY_PREFIX[model](parsed.company_id, parsed.prefix)
    device = found[0] if found else None
    if device is None or not device.key_hash or not keys.key_matches(key, device.key_hash):
        raise KangarooError(errors.DEVICE_KEY_INVALID)
    if device.key_revoked_at is not None:
        raise KangarooError(errors.DEVICE_KEY_REVOKED)
    if not device.company.is_active:
        raise KangarooError(errors.DEVICE_KEY_INVALID)
    return device
