"""Device keys: issued once, stored as a hash, rotated and revoked by admins; a key acts
only for its own device and company."""

import pytest

from accounts.models import AuditLog
from devices import keys, services
from devices.models import Box, Pad
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_only_as_its_hash(tenant_a, register):
    box, key = register("box", tenant_a)
    stored = Box.objects.for_company(tenant_a.company).get(pk=box.pk)
    assert key.startswith(f"kgr_box_{tenant_a.company.pk}_{stored.key_prefix}_")
    assert stored.key_hash == keys.hash_key(key)
    row = Box.objects.for_company(tenant_a.company).filter(pk=box.pk).values().get()
    assert not any(key in str(value) for value in row.values())
    audit = AuditLog.objects.for_company(tenant_a.company).filter(action="box.create").get()
    assert key not in str(audit.changes)


def test_the_key_is_shown_in_the_create_answer_and_never_again(api, tenant_a):
    client = api(tenant_a.admin)
    created = client.post("/api/v1/boxes", {"name": "Lobby box"}, format="json")
    assert created.status_code == 201
    key = created.json()["api_key"]
    assert key.startswith("kgr_box_")
    detail = client.get(f"/api/v1/boxes/{created.json()['id']}")
    listing = client.get("/api/v1/boxes")
    assert "api_key" not in detail.json()
    assert key not in detail.content.decode() and key not in listing.content.decode()
    public_part = "_".join(key.split("_", 4)[:4])  # the secret itself may contain "_"
    assert detail.json()["key_hint"] == f"{public_part}_…"


def test_a_device_authenticates_with_its_key(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a, location="Reception")
    response = device_api(key).get("/api/v1/device/pad/config")
    assert response.status_code == 200
    assert response.json()["id"] == pad.pk


@pytest.mark.parametrize(
    "header",
    [
        "Device not-a-key",
        "Device kgr_box_1_abc",
        "Device kgr_nope_1_abcdef_secret",
        "Device kgr_box_x_abcdef_secret",
        "Device too many parts",
        "Device",
    ],
)
def test_a_malformed_key_is_401_device_key_invalid(tenant_a, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post("/api/v1/device/heartbeat", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "device_key_invalid"
    assert response["WWW-Authenticate"].startswith("Device")


def test_a_wrong_secret_with_a_real_prefix_is_invalid_not_revoked(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    services.device_key_revoke(company=tenant_a.company, actor=tenant_a.admin, device=box)
    forged = "_".join([*key.split("_", 4)[:4], "guessed-secret"])
    response = device_api(forged).post("/api/v1/device/heartbeat", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "device_key_invalid"  # says nothing about the real key


def test_a_missing_key_is_401_not_authenticated(tenant_a, device_api):
    response = device_api(None).post("/api/v1/device/heartbeat", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_revoked_key_is_401_device_key_revoked(api, tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    response = api(tenant_a.admin).post(f"/api/v1/boxes/{box.pk}/revoke-key")
    assert response.status_code == 200
    assert response.json()["key_active"] is False
    answer = device_api(key).post("/api/v1/device/heartbeat", {}, format="json")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "device_key_revoked"
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="box.key_revoke").exists()


def test_rotating_gives_a_new_key_once_and_the_old_one_stops_working(api, tenant_a, register, device_api):
    box, old_key = register("box", tenant_a)
    services.device_key_revoke(company=tenant_a.company, actor=tenant_a.admin, device=box)
    response = api(tenant_a.admin).post(f"/api/v1/boxes/{box.pk}/rotate-key")
    assert response.status_code == 200
    new_key = response.json()["api_key"]
    assert new_key != old_key
    assert device_api(old_key).post("/api/v1/device/heartbeat", {}, format="json").json()["error"]["code"] == (
        "device_key_invalid"
    )
    assert device_api(new_key).post("/api/v1/device/heartbeat", {}, format="json").status_code == 200
    assert Box.objects.for_company(tenant_a.company).get(pk=box.pk).key_hash == keys.hash_key(new_key)


def test_a_viewer_can_neither_rotate_nor_revoke(api, tenant_a, register):
    box, _key = register("box", tenant_a)
    client = api(tenant_a.viewer)
    for action in ("rotate-key", "revoke-key"):
        response = client.post(f"/api/v1/boxes/{box.pk}/{action}")
        assert response.status_code == 403
    assert Box.objects.for_company(tenant_a.company).get(pk=box.pk).key_is_active


def test_another_companys_device_cannot_be_rotated_or_revoked(api, tenants, register):
    a, b = tenants
    box, key = register("box", a)
    for action in ("rotate-key", "revoke-key"):
        response = api(b.owner).post(f"/api/v1/boxes/{box.pk}/{action}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert Box.objects.for_company(a.company).get(pk=box.pk).key_hash == keys.hash_key(key)


def test_a_key_naming_another_company_finds_nothing(tenants, register, device_api):
    a, b = tenants
    _box, key = register("box", a)
    # Same prefix and secret, but claiming company B: the lookup is inside B, so no match.
    forged = key.replace(f"kgr_box_{a.company.pk}_", f"kgr_box_{b.company.pk}_", 1)
    response = device_api(forged).post("/api/v1/device/heartbeat", {}, format="json")
    assert response.json()["error"]["code"] == "device_key_invalid"


def test_a_device_key_of_an_inactive_company_is_refused(tenant_a, register, device_api):
    _box, key = register("box", tenant_a)
    tenant_a.company.is_active = False
    tenant_a.company.save()
    response = device_api(key).post("/api/v1/device/heartbeat", {}, format="json")
    assert response.status_code == 401


def test_a_device_key_is_refused_by_user_endpoints(tenant_a, register, device_api):
    _pad, key = register("pad", tenant_a)
    for path in ("/api/v1/pads", "/api/v1/boxes", "/api/v1/me", "/api/v1/departments"):
        response = device_api(key).get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"


def test_a_user_token_is_refused_by_device_endpoints(tenant_a):
    client = api_client_for(tenant_a.owner)
    assert client.post("/api/v1/device/heartbeat", {}, format="json").status_code == 401
    assert client.get("/api/v1/device/pad/config").status_code == 401


def test_an_endpoint_for_another_kind_is_403_device_wrong_kind(tenant_a, register, device_api):
    _box, key = register("box", tenant_a)
    response = device_api(key).get("/api/v1/device/pad/config")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "device_wrong_kind"


def test_each_kind_gets_a_key_that_works(tenant_a, register, device_api):
    for kind in ("box", "screen", "pad", "tvbox"):
        _device, key = register(kind, tenant_a)
        assert device_api(key).post("/api/v1/device/heartbeat", {}, format="json").status_code == 200, kind


def test_the_key_of_a_pad_of_company_a_reads_only_its_own_configuration(tenants, register, device_api):
    a, b = tenants
    screen_b, _ = register("screen", b)
    pad_a, key = register("pad", a)
    config = device_api(key).get("/api/v1/device/pad/config").json()
    assert config["id"] == pad_a.pk
    # Company B's pads and screens are never reachable with A's key, whatever the payload.
    response = device_api(key).post(
        "/api/v1/device/heartbeat", {"cameras": [{"screen_id": screen_b.pk, "status": "ok"}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_fields"  # pads report no cameras
    assert Pad.objects.for_company(b.company).count() == 0
