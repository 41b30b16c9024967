"""/api/v1/boxes: recognition boxes, and the screen limit that a box never exceeds."""

import pytest

from accounts.models import AuditLog
from devices import services
from devices.models import Box, Screen
from kangaroo.errors import KangarooError
from tests.conftest import answer_without_request_id
from tests.factories import BoxFactory, ScreenFactory

pytestmark = pytest.mark.django_db


def test_an_admin_registers_a_box(api, tenant_a):
    response = api(tenant_a.admin).post(
        "/api/v1/boxes",
        {"name": " Lobby box ", "location": "Lobby", "serial": "KB-1", "hardware_model": "K2", "max_screens": 2},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Lobby box"
    assert (body["status"], body["screen_count"], body["max_screens"]) == ("never_seen", 0, 2)
    assert body["key_active"] is True and body["api_key"]
    box = Box.objects.for_company(tenant_a.company).get(pk=body["id"])
    assert (box.serial, box.hardware_model, box.location) == ("KB-1", "K2", "Lobby")
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="box.create")
    assert entry.actor == tenant_a.admin and entry.object_id == str(box.pk)


def test_a_viewer_reads_but_cannot_write(api, tenant_a):
    box = BoxFactory(company=tenant_a.company)
    client = api(tenant_a.viewer)
    assert client.get("/api/v1/boxes").status_code == 200
    assert client.get(f"/api/v1/boxes/{box.pk}").status_code == 200
    assert client.post("/api/v1/boxes", {"name": "X"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/boxes/{box.pk}", {"name": "Y"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/boxes/{box.pk}").status_code == 403
    assert Box.objects.for_company(tenant_a.company).get().name == box.name


def test_a_duplicate_name_is_device_name_taken_whatever_the_case(api, tenant_a):
    BoxFactory(company=tenant_a.company, name="Lobby box")
    response = api(tenant_a.admin).post("/api/v1/boxes", {"name": "LOBBY BOX"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "device_name_taken"
    assert list(response.json()["error"]["fields"]) == ["name"]


def test_renaming_onto_another_name_is_device_name_taken(api, tenant_a):
    BoxFactory(company=tenant_a.company, name="One")
    two = BoxFactory(company=tenant_a.company, name="Two")
    response = api(tenant_a.admin).patch(f"/api/v1/boxes/{two.pk}", {"name": "one"}, format="json")
    assert response.json()["error"]["code"] == "device_name_taken"


def test_the_same_name_in_another_company_or_kind_is_fine(api, tenants):
    a, b = tenants
    BoxFactory(company=a.company, name="Front")
    ScreenFactory(company=b.company, name="Front")
    assert api(b.admin).post("/api/v1/boxes", {"name": "Front"}, format="json").status_code == 201


def test_a_name_taken_under_a_race_is_the_coded_error_not_a_500(tenant_a, monkeypatch):
    # The check before the insert saw the name free; the database constraint still catches it.
    BoxFactory(company=tenant_a.company, name="Raced")
    monkeypatch.setattr(services, "_check_name", lambda *, model, company, name, exclude_pk=None: name)
    with pytest.raises(KangarooError) as caught:
        services.box_create(company=tenant_a.company, actor=None, name="raced")
    assert caught.value.code == "device_name_taken"


def test_an_admin_changes_and_deletes_a_box(api, tenant_a):
    box = BoxFactory(company=tenant_a.company, name="Old")
    client = api(tenant_a.admin)
    response = client.patch(f"/api/v1/boxes/{box.pk}", {"name": "New", "max_screens": 8}, format="json")
    assert response.status_code == 200 and response.json()["max_screens"] == 8
    assert client.delete(f"/api/v1/boxes/{box.pk}").status_code == 204
    assert not Box.objects.for_company(tenant_a.company).exists()
    actions = list(AuditLog.objects.for_company(tenant_a.company).order_by("id").values_list("action", flat=True))
    assert actions == ["box.update", "box.delete"]


def test_reported_fields_cannot_be_written(api, tenant_a):
    box = BoxFactory(company=tenant_a.company)
    api(tenant_a.admin).patch(
        f"/api/v1/boxes/{box.pk}",
        {"last_seen_at": "2030-01-01T00:00:00Z", "gallery_cursor": 99, "status": "online", "key_hint": "x"},
        format="json",
    )
    box.refresh_from_db()
    assert box.last_seen_at is None and box.gallery_cursor == 0


# --- the screen limit -------------------------------------------------------------------------


def test_attaching_one_screen_too_many_is_box_screen_limit_with_count_and_limit(api, tenant_a):
    box = BoxFactory(company=tenant_a.company, max_screens=2)
    ScreenFactory.create_batch(2, company=tenant_a.company, box=box)
    extra = ScreenFactory(company=tenant_a.company)
    response = api(tenant_a.admin).post(f"/api/v1/boxes/{box.pk}/attach-screen", {"screen": extra.pk}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert (body["code"], body["count"], body["limit"]) == ("box_screen_limit", 2, 2)
    assert Screen.objects.for_company(tenant_a.company).filter(box=box).count() == 2


def test_the_service_raises_the_coded_error_with_count_and_limit(tenant_a):
    box = BoxFactory(company=tenant_a.company, max_screens=1)
    ScreenFactory(company=tenant_a.company, box=box)
    with pytest.raises(KangarooError) as caught:
        services.screen_create(company=tenant_a.company, actor=None, name="2nd", camera_url="rtsp://h/s", box=box)
    assert caught.value.code == "box_screen_limit"
    assert caught.value.extra == {"count": 1, "limit": 1}


def test_a_screen_is_attached_while_there_is_room(api, tenant_a):
    box = BoxFactory(company=tenant_a.company, max_screens=1)
    screen = ScreenFactory(company=tenant_a.company)
    response = api(tenant_a.admin).post(f"/api/v1/boxes/{box.pk}/attach-screen", {"screen": screen.pk}, format="json")
    assert response.status_code == 200 and response.json()["box"] == box.pk
    # Attaching it again does not count it twice.
    again = api(tenant_a.admin).post(f"/api/v1/boxes/{box.pk}/attach-screen", {"screen": screen.pk}, format="json")
    assert again.status_code == 200
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="screen.attach").count() == 1


def test_creating_or_moving_a_screen_onto_a_full_box_is_refused(api, tenant_a):
    full = BoxFactory(company=tenant_a.company, max_screens=1)
    ScreenFactory(company=tenant_a.company, box=full)
    client = api(tenant_a.admin)
    created = client.post(
        "/api/v1/screens", {"name": "Cam", "camera_url": "rtsp://10.0.0.1/s", "box": full.pk}, format="json"
    )
    assert created.json()["error"]["code"] == "box_screen_limit"
    assert not Screen.objects.for_company(tenant_a.company).filter(name="Cam").exists()
    loose = ScreenFactory(company=tenant_a.company)
    moved = client.patch(f"/api/v1/screens/{loose.pk}", {"box": full.pk}, format="json")
    assert moved.json()["error"]["code"] == "box_screen_limit"


def test_the_limit_cannot_drop_below_the_screens_attached(api, tenant_a):
    box = BoxFactory(company=tenant_a.company, max_screens=4)
    ScreenFactory.create_batch(3, company=tenant_a.company, box=box)
    response = api(tenant_a.admin).patch(f"/api/v1/boxes/{box.pk}", {"max_screens": 2}, format="json")
    body = response.json()["error"]
    assert (body["code"], body["count"], body["limit"], list(body["fields"])) == (
        "box_screen_limit",
        3,
        2,
        ["max_screens"],
    )
    assert api(tenant_a.admin).patch(f"/api/v1/boxes/{box.pk}", {"max_screens": 3}, format="json").status_code == 200


def test_attaching_a_screen_of_another_company_is_refused_as_if_absent(api, tenants):
    a, b = tenants
    box = BoxFactory(company=a.company)
    theirs = ScreenFactory(company=b.company)
    client = api(a.admin)
    foreign = client.post(f"/api/v1/boxes/{box.pk}/attach-screen", {"screen": theirs.pk}, format="json")
    missing = client.post(f"/api/v1/boxes/{box.pk}/attach-screen", {"screen": 987654}, format="json")
    assert foreign.status_code == missing.status_code == 400
    assert answer_without_request_id(foreign) == answer_without_request_id(missing)
    assert foreign.json()["error"]["code"] == "validation_error"
    assert foreign.json()["error"]["fields"] == {"screen": ["Not found."]}
    theirs.refresh_from_db()
    assert theirs.box_id is None


def test_attaching_to_a_box_of_another_company_is_refused_as_if_absent(api, tenants):
    a, b = tenants
    theirs = BoxFactory(company=b.company)
    mine = ScreenFactory(company=a.company)
    client = api(a.admin)
    via_action = client.post(f"/api/v1/boxes/{theirs.pk}/attach-screen", {"screen": mine.pk}, format="json")
    via_screen = client.patch(f"/api/v1/screens/{mine.pk}", {"box": theirs.pk}, format="json")
    missing = client.patch(f"/api/v1/screens/{mine.pk}", {"box": 987654}, format="json")
    assert via_action.status_code == 404  # the box's id in the URL
    assert via_screen.status_code == missing.status_code == 400  # the box's id in the body
    assert answer_without_request_id(via_screen) == answer_without_request_id(missing)
    assert via_screen.json()["error"]["fields"] == {"box": ["Not found."]}
    mine.refresh_from_db()
    assert mine.box_id is None


def test_the_service_refuses_a_box_of_another_company(tenants):
    a, b = tenants
    screen = ScreenFactory(company=a.company)
    with pytest.raises(KangarooError) as caught:
        services.screen_attach(company=a.company, actor=None, screen=screen, box=BoxFactory(company=b.company))
    assert caught.value.code == "validation_error"
    assert caught.value.fields == {"box": ["Not found."]}
