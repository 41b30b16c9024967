"""Doors of both companies, and a webhook receiver, for the reception tests."""

from __future__ import annotations

import pytest

from tests.events.conftest import make_door
from tests.integrations.conftest import receiver  # noqa: F401  a fixture


@pytest.fixture
def door_a(tenant_a):
    return make_door(tenant_a, "A")


@pytest.fixture
def door_b(tenant_b):
    return make_door(tenant_b, "B")
