"""A company's door: a box with two screens (one in, one out), a pad, a TV box, keys."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest
from channels.layers import channel_layers
from django.utils import timezone
from rest_framework.test import APIClient

from devices import services as device_services
from devices.models import Box, Pad, Screen, TVBox
from tests.conftest import REQUIRE_SERVICES
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


def event(uid: str, screen: Screen | None = None, subject=None, when=None, **extra) -> dict:
    item = {"uid": uid, "happened_at": (when or timezone.now()).isoformat()}
    if screen is not None:
        item["screen_id"] = screen.pk
    if subject is not None:
        item["subject_id"] = subject.pk
    return item | extra


# --- a private Redis for the channel layer ----------------------------------------------------

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class PrivateRedis:
    """A redis-server of the test's own, without persistence, on a free loopback port, so
    a test can stop and restart it without disturbing anything else."""

    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answering(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.answering():
            if time.monotonic() > deadline:
                raise RuntimeError("the private redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis():
    if not os.path.exists(REDIS_SERVER):
        message = "needs redis-server (apt-get install redis-server)"
        if REQUIRE_SERVICES:
            pytest.fail(f"KANGAROO_REQUIRE_SERVICES is set but this test {message}")
        pytest.skip(message)
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def layer_on_private_redis(settings, private_redis):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [private_redis.url]},
        }
    }
    settings.LIVE_TICK_SECONDS = 0.5
    channel_layers.backends.clear()
    yield private_redis
    channel_layers.backends.clear()
