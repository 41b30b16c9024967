"""A company's door: a box with two screens (one in, one out), a pad, a TV box, keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices import services as device_services
from devices.models import Box, Pad, Screen, TVBox
from tests.devices.conftest import device_client


@dataclass
class Door:
    box: Box
    box_key: str
    entrance: Screen
    exit: Screen
    pad: Pad
    pad_key: str
    tv: TVBox
    tv_key: str

    def box_client(self) -> APIClient:
        return device_client(self.box_key)

    def pad_client(self) -> APIClient:
        return device_client(self.pad_key)


def make_door(tenant, prefix: str) -> Door:
    kwargs = {"company": tenant.company, "actor": tenant.admin}
    box, box_key = device_services.box_create(name=f"{prefix} box", max_screens=4, **kwargs)
    entrance, _ = device_services.screen_create(
        name=f"{prefix} entrance", camera_url="rtsp://cam:secret@10.0.0.5/in", direction="in", box=box, **kwargs
    )
    exit_, _ = device_services.screen_create(
        name=f"{prefix} exit", camera_url="rtsp://cam:secret@10.0.0.6/out", direction="out", box=box, **kwargs
    )
    pad, pad_key = device_services.pad_create(name=f"{prefix} pad", screen=entrance, **kwargs)
    tv, tv_key = device_services.tvbox_create(name=f"{prefix} tv", screens=[entrance], **kwargs)
    return Door(box, box_key, entrance, exit_, pad, pad_key, tv, tv_key)


@pytest.fixture
def door_a(tenant_a) -> Door:
    return make_door(tenant_a, "A")


@pytest.fixture
def door_b(tenant_b) -> Door:
    return make_door(tenant_b, "B")


def event(uid: str, screen: Screen | None = None, subject=None, when=None, **extra) -> dict:
    item = {"uid": uid, "happened_at": (when or timezone.now()).isoformat()}
    if screen is not None:
        item["screen_id"] = screen.pk
    if subject is not None:
        item["subject_id"] = subject.pk
    return item | extra
