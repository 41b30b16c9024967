"""/api/v1/pads for admins; /api/v1/device/pad/... for the pad itself."""

import pytest

from accounts.models import AuditLog
from devices.models import Pad
from tests.conftest import answer_without_request_id
from tests.factories import PadFactory, ScreenFactory

pytestmark = pytest.mark.django_db


def test_an_admin_registers_a_pad_bound_to_a_screen(api, tenant_a):
    screen = ScreenFactory(company=tenant_a.company)
    response = api(tenant_a.admin).post(
        "/api/v1/pads",
        {"name": "Reception pad", "screen": screen.pk, "mode": "visitor_registration", "welcome_text": "Hi!"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["screen"], body["mode"], body["welcome_text"]) == (screen.pk, "visitor_registration", "Hi!")
    assert body["api_key"].startswith("kgr_pad_")


def test_a_screen_of_another_company_is_refused_as_if_absent(api, tenants):
    a, b = tenants
    theirs = ScreenFactory(company=b.company)
    foreign = api(a.admin).post("/api/v1/pads", {"name": "P", "screen": theirs.pk}, format="json")
    missing = api(a.admin).post("/api/v1/pads", {"name": "P", "screen": 987654}, format="json")
    assert foreign.status_code == missing.status_code == 400
    assert answer_without_request_id(foreign) == answer_without_request_id(missing)
    assert foreign.json()["error"]["fields"] == {"screen": ["Not found."]}
    assert not Pad.objects.for_company(a.company).exists()


def test_a_mode_that_does_not_exist_is_refused(api, tenant_a):
    response = api(tenant_a.admin).post("/api/v1/pads", {"name": "P", "mode": "karaoke"}, format="json")
    assert response.status_code == 400 and "mode" in response.json()["error"]["fields"]


def test_pad_login_returns_its_configuration(tenant_a, register, device_api):
    screen, _ = register("screen", tenant_a)
    pad, key = register("pad", tenant_a, screen=screen, location="Gate 1", mode="check_in", welcome_text="Hello")
    response = device_api(key).get("/api/v1/device/pad/config")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("id", "name", "screen_id", "location", "mode", "welcome_text")} == {
        "id": pad.pk,
        "name": pad.name,
        "screen_id": screen.pk,
        "location": "Gate 1",
        "mode": "check_in",
        "welcome_text": "Hello",
    }
    assert body["heartbeat_every"] > 0


def test_the_pad_sets_its_location_and_the_audit_names_it(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a, location="Box room")
    response = device_api(key).patch("/api/v1/device/pad/location", {"location": " Gate 3 "}, format="json")
    assert response.status_code == 200 and response.json()["location"] == "Gate 3"
    pad.refresh_from_db()
    assert pad.location == "Gate 3"
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="pad.update")
    assert entry.actor is None and entry.actor_repr == f"pad:{pad.name}"
    assert entry.changes == {"location": ["Box room", "Gate 3"]}


def test_the_pad_can_set_nothing_but_its_location(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a)
    response = device_api(key).patch(
        "/api/v1/device/pad/location", {"location": "X", "mode": "visitor_registration"}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_fields"
    pad.refresh_from_db()
    assert pad.mode == "check_in" and pad.location == ""


def test_the_admin_sets_the_location_too(api, tenant_a):
    pad = PadFactory(company=tenant_a.company)
    response = api(tenant_a.admin).patch(f"/api/v1/pads/{pad.pk}", {"location": "Gate 9"}, format="json")
    assert response.status_code == 200 and response.json()["location"] == "Gate 9"


def test_the_api_filters_pads_by_the_box_of_their_screen(api, tenant_a, register):
    box, _ = register("box", tenant_a)
    screen, _ = register("screen", tenant_a, box=box)
    on_box = PadFactory(company=tenant_a.company, screen=screen)
    PadFactory(company=tenant_a.company)
    rows = api(tenant_a.viewer).get(f"/api/v1/pads?box={box.pk}").json()["results"]
    assert [row["id"] for row in rows] == [on_box.pk]


def test_an_empty_location_patch_changes_nothing_and_answers_the_config(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a, location="Box room")
    response = device_api(key).patch("/api/v1/device/pad/location", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["location"] == "Box room"
    pad.refresh_from_db()
    assert pad.location == "Box room"
