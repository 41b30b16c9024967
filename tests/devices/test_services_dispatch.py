"""`device_create` / `device_update`: every device kind is written through its own service,
from one table that the API, the admin and these tests share."""

import pytest

from accounts.models import AuditLog
from devices import services
from devices.models import DEVICE_MODELS, DeviceKind

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", DeviceKind.values)
def test_every_kind_is_created_and_updated_through_its_own_service(tenant_a, register, kind):
    device, key = register(kind, tenant_a, name=f"first {kind}")
    assert type(device) is DEVICE_MODELS[kind] and device.company == tenant_a.company and key
    renamed = services.device_update(company=tenant_a.company, actor=tenant_a.admin, device=device, name="renamed")
    assert DEVICE_MODELS[kind].objects.for_company(tenant_a.company).get(pk=device.pk).name == "renamed"
    assert renamed.name == "renamed"
    assert AuditLog.objects.for_company(tenant_a.company).filter(object_id=str(device.pk)).count() >= 2
