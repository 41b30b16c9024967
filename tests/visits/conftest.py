"""Doors of both companies, a webhook receiver, and jobs and webhooks run at once, for the
reception and door tests."""

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


@pytest.fixture
def jobs_and_webhooks_inline(settings):
    settings.JOBS_INLINE = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the test receiver listens on loopback
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
