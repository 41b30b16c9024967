"""Helpers for the device tests: register devices through the services (so they have a
key we know) and talk to the device API with that key."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from devices import services


def device_client(key: str | None) -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Device {key}")
    return client


@pytest.fixture
def device_api(tenants):
    """device_api(key) -> an APIClient that authenticates as the device holding `key`."""
    return device_client


@pytest.fixture
def register(tenants):
    """register(kind, tenant, **fields) -> (device, key), created by tenant's admin."""
    counter = {"n": 0}

    def make(kind: str, tenant, **fields):
        counter["n"] += 1
        fields.setdefault("name", f"{kind} {counter['n']}")
        if kind == "screen":
            fields.setdefault("camera_url", f"rtsp://viewer:cam-secret-{counter['n']}@10.0.0.9:554/s1")
        return services.device_create(company=tenant.company, actor=tenant.admin, kind=kind, **fields)

    return make
