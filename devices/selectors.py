"""Reads on devices: lists, status by timestamp, and the device a key belongs to.

Nothing here contacts a device. A device's status comes from the time of its last
heartbeat, so a list of a thousand devices is one query however many of them are down.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import Company
from devices import keys
from devices.models import DEVICE_MODELS, Box, Device, Pad, Screen, Status, TVBox, offline_after
from kangaroo import errors
from kangaroo.errors import KangarooError


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
    return Box.objects.for_company(company).annotate(screen_count=Count("screens")).order_by("name")


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
    device = (
        model.objects.for_company(parsed.company_id).select_related("company").filter(key_prefix=parsed.prefix).first()
    )
    if device is None or not device.key_hash or not keys.key_matches(key, device.key_hash):
        raise KangarooError(errors.DEVICE_KEY_INVALID)
    if device.key_revoked_at is not None:
        raise KangarooError(errors.DEVICE_KEY_REVOKED)
    if not device.company.is_active:
        raise KangarooError(errors.DEVICE_KEY_INVALID)
    return device
