"""/api/v1/screens: cameras. The camera password goes in and never comes out."""

import pytest

from accounts.models import AuditLog
from devices.models import Screen
from tests.factories import BoxFactory, ScreenFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-cam-pass"
URL = f"rtsp://viewer:{SECRET}@10.0.0.21:554/stream1"


def test_an_admin_registers_a_screen_and_never_sees_its_password_again(api, tenant_a):
    box = BoxFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    response = client.post(
        "/api/v1/screens",
        {"name": "Front door", "location": "Lobby", "camera_url": URL, "direction": "in", "box": box.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["camera_url"] == "rtsp://viewer:***@10.0.0.21:554/stream1"
    assert (body["direction"], body["box"], body["is_active"]) == ("in", box.pk, True)
    screen = Screen.objects.for_company(tenant_a.company).get(pk=body["id"])
    assert screen.camera_url == URL  # stored in full: the box needs it
    for answer in (client.get("/api/v1/screens"), client.get(f"/api/v1/screens/{screen.pk}"), response):
        assert SECRET not in answer.content.decode()
    audit = AuditLog.objects.for_company(tenant_a.company).get(action="screen.create")
    assert SECRET not in str(audit.changes)


def test_sending_back_the_masked_url_keeps_the_stored_password(api, tenant_a):
    screen = ScreenFactory(company=tenant_a.company, camera_url=URL)
    client = api(tenant_a.admin)
    shown = client.get(f"/api/v1/screens/{screen.pk}").json()
    response = client.put(
        f"/api/v1/screens/{screen.pk}",
        {"name": shown["name"], "camera_url": shown["camera_url"], "location": "Gate 2"},
        format="json",
    )
    assert response.status_code == 200, response.content
    screen.refresh_from_db()
    assert screen.camera_url == URL and screen.location == "Gate 2"


def test_a_new_password_replaces_the_old_one_and_the_audit_shows_neither(api, tenant_a):
    screen = ScreenFactory(company=tenant_a.company, camera_url=URL)
    new_url = "rtsp://viewer:brand-new-pass@10.0.0.21:554/stream1"
    response = api(tenant_a.admin).patch(f"/api/v1/screens/{screen.pk}", {"camera_url": new_url}, format="json")
    assert response.status_code == 200
    screen.refresh_from_db()
    assert screen.camera_url == new_url
    changes = AuditLog.objects.for_company(tenant_a.company).get(action="screen.update").changes
    assert changes == {
        "camera_url": ["rtsp://viewer:***@10.0.0.21:554/stream1", "rtsp://viewer:***@10.0.0.21:554/stream1"]
    }


@pytest.mark.parametrize(
    "camera_url",
    [
        "ftp://10.0.0.1/stream",
        "rtsp:///no-host",
        "10.0.0.1:554/stream",
        "rtsp://host:99999/stream",
        "rtsp://host/with space",
        "",
    ],
)
def test_an_invalid_camera_url_is_camera_url_invalid(api, tenant_a, camera_url):
    response = api(tenant_a.admin).post("/api/v1/screens", {"name": "Cam", "camera_url": camera_url}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["camera_url"]
    # An empty value is "required"; everything else names the camera URL rule.
    assert error["code"] == ("validation_error" if camera_url == "" else "camera_url_invalid")


@pytest.mark.parametrize(
    "camera_url", ["rtsp://10.0.0.1/s", "rtsps://user:pw@cam.example.com:322/live", "http://10.0.0.1/mjpeg"]
)
def test_rtsp_rtsps_and_http_cameras_are_accepted(api, tenant_a, camera_url):
    response = api(tenant_a.admin).post("/api/v1/screens", {"name": "Cam", "camera_url": camera_url}, format="json")
    assert response.status_code == 201, response.content


def test_a_direction_outside_in_out_both_is_refused(api, tenant_a):
    response = api(tenant_a.admin).post(
        "/api/v1/screens", {"name": "Cam", "camera_url": "rtsp://h/s", "direction": "sideways"}, format="json"
    )
    assert response.json()["error"]["code"] == "validation_error"
    assert "direction" in response.json()["error"]["fields"]


def test_detaching_a_screen_frees_its_place(api, tenant_a):
    box = BoxFactory(company=tenant_a.company, max_screens=1)
    screen = ScreenFactory(company=tenant_a.company, box=box)
    response = api(tenant_a.admin).patch(f"/api/v1/screens/{screen.pk}", {"box": None}, format="json")
    assert response.status_code == 200 and response.json()["box"] is None
    other = ScreenFactory(company=tenant_a.company)
    attach = api(tenant_a.admin).post(f"/api/v1/boxes/{box.pk}/attach-screen", {"screen": other.pk}, format="json")
    assert attach.status_code == 200


def test_a_company_in_the_payload_is_ignored(api, tenants):
    a, b = tenants
    response = api(a.admin).post(
        "/api/v1/screens", {"name": "Cam", "camera_url": "rtsp://h/s", "company": b.company.pk}, format="json"
    )
    assert response.status_code == 201
    assert Screen.objects.for_company(a.company).filter(name="Cam").exists()
    assert not Screen.objects.for_company(b.company).exists()
