from __future__ import annotations

import pytest

from devices import services as device_services
from tests.devices.conftest import device_client
from tests.integrations.conftest import receiver  # noqa: F401  a webhook receiver on a loopback port


@pytest.fixture
def box_for(tenants):
    """box_for(tenant) -> an API client authenticated as a new recognition box of the tenant."""

    def make(tenant):
        _, key = device_services.device_create(company=tenant.company, actor=tenant.admin, kind="box", name="Door box")
        return device_client(key)

    return make
