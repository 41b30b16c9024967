"""The devices admin: register each kind, keys shown once, status badges and filters,
camera passwords never in a page, export of exactly the filtered rows."""

import csv
import io
import re
from datetime import timedelta

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from accounts.models import AuditLog
from devices import keys
from devices.models import Box, Pad, Screen, TVBox
from tests.factories import BoxFactory, PadFactory, ScreenFactory, TVBoxFactory

pytestmark = pytest.mark.django_db

SECRET = "admin-cam-secret"
CAMERA_URL = f"rtsp://viewer:{SECRET}@10.0.0.30:554/main"


def shown_keys(response) -> list[str]:
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    return re.findall(r"kgr_[a-z]+_\d+_[0-9a-f]+_[A-Za-z0-9_\-]+", text)


@pytest.mark.parametrize(
    "model, data",
    [
        (Box, {"name": "Lobby box", "location": "Lobby", "serial": "KB-9", "max_screens": "4"}),
        (Screen, {"name": "Gate cam", "location": "Gate", "camera_url": CAMERA_URL, "direction": "in"}),
        (Pad, {"name": "Gate pad", "location": "Gate", "mode": "check_in", "welcome_text": "Hi"}),
        (TVBox, {"name": "Lobby TV", "greeting_employee": "Hi {name}", "greeting_visitor": "Hello {name}",
                 "greeting_vip": "Welcome {name}", "theme": "dark", "greet_again_after": 10}),
    ],
)  # fmt: skip
def test_an_admin_registers_each_kind_and_sees_its_key_once(admin_client_for, tenants, model, data):
    a, _b = tenants
    client = admin_client_for(a.admin)
    response = client.post(f"/admin/devices/{model._meta.model_name}/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    device = model.objects.for_company(a.company).get(name=data["name"])
    [key] = shown_keys(response)
    assert device.key_hash == keys.hash_key(key)
    # The next page shows the message (and with it the key) once; after that, never again.
    first = client.get(response["Location"]).content.decode()
    assert key in first
    for url in (response["Location"], f"/admin/devices/{model._meta.model_name}/"):
        assert key not in client.get(url).content.decode()
    assert AuditLog.objects.for_company(a.company).filter(action=f"{device.kind}.create", actor=a.admin).exists()


def test_a_duplicate_name_is_a_form_error_not_a_500(admin_client_for, tenant_a):
    BoxFactory(company=tenant_a.company, name="Lobby box")
    response = admin_client_for(tenant_a.admin).post(
        "/admin/devices/box/add/", {"name": "lobby BOX", "max_screens": "4"}
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "A device of this kind with this name already exists" in str(errors)
    assert Box.objects.for_company(tenant_a.company).count() == 1


def test_an_invalid_camera_url_is_a_form_error(admin_client_for, tenant_a):
    response = admin_client_for(tenant_a.admin).post(
        "/admin/devices/screen/add/", {"name": "Cam", "camera_url": "ftp://x/y", "direction": "in"}
    )
    assert response.status_code == 200
    assert "camera_url" in response.context["adminform"].form.errors


def test_a_full_box_is_a_form_error_with_the_limit(admin_client_for, tenant_a):
    box = BoxFactory(company=tenant_a.company, max_screens=1)
    ScreenFactory(company=tenant_a.company, box=box)
    response = admin_client_for(tenant_a.admin).post(
        "/admin/devices/screen/add/", {"name": "Cam", "camera_url": "rtsp://h/s", "direction": "in", "box": box.pk}
    )
    assert response.status_code == 200
    assert "box" in response.context["adminform"].form.errors
    assert Screen.objects.for_company(tenant_a.company).filter(box=box).count() == 1


def test_lowering_a_box_limit_below_its_screens_is_a_form_error(admin_client_for, tenant_a):
    box = BoxFactory(company=tenant_a.company, name="B", max_screens=3)
    ScreenFactory.create_batch(2, company=tenant_a.company, box=box)
    response = admin_client_for(tenant_a.admin).post(
        f"/admin/devices/box/{box.pk}/change/", {"name": "B", "max_screens": "1"}
    )
    assert response.status_code == 200
    assert "max_screens" in response.context["adminform"].form.errors


def test_a_limit_reached_between_form_and_save_is_a_message_not_a_500(admin_client_for, tenant_a, monkeypatch):
    from django import forms

    from devices.admin import ScreenForm

    box = BoxFactory(company=tenant_a.company, max_screens=1)
    ScreenFactory(company=tenant_a.company, box=box)
    # The form's early check saw room; another admin's screen landed just after it.
    monkeypatch.setattr(ScreenForm, "clean", forms.ModelForm.clean)
    response = admin_client_for(tenant_a.admin).post(
        "/admin/devices/screen/add/", {"name": "Cam", "camera_url": "rtsp://h/s", "direction": "in", "box": box.pk}
    )
    assert response.status_code == 302
    assert "as many screens as it can" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert not Screen.objects.for_company(tenant_a.company).filter(name="Cam").exists()


def test_the_camera_password_is_never_in_a_page_and_kept_when_the_mask_comes_back(admin_client_for, tenant_a):
    screen = ScreenFactory(company=tenant_a.company, name="Cam", camera_url=CAMERA_URL)
    client = admin_client_for(tenant_a.admin)
    listing = client.get("/admin/devices/screen/").content.decode()
    form = client.get(f"/admin/devices/screen/{screen.pk}/change/").content.decode()
    assert SECRET not in listing and SECRET not in form
    assert "rtsp://viewer:***@10.0.0.30:554/main" in listing and "rtsp://viewer:***@10.0.0.30:554/main" in form
    response = client.post(
        f"/admin/devices/screen/{screen.pk}/change/",
        {"name": "Cam", "location": "Moved", "camera_url": "rtsp://viewer:***@10.0.0.30:554/main", "direction": "in",
         "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    screen.refresh_from_db()
    assert (screen.camera_url, screen.location) == (CAMERA_URL, "Moved")
    history = client.get(f"/admin/devices/screen/{screen.pk}/history/").content.decode()
    assert SECRET not in history


def test_the_changelist_shows_status_badges_and_last_seen(admin_client_for, tenant_a):
    BoxFactory(company=tenant_a.company, name="Up", last_seen_at=timezone.now() - timedelta(seconds=10))
    BoxFactory(company=tenant_a.company, name="Down", last_seen_at=timezone.now() - timedelta(days=2))
    BoxFactory(company=tenant_a.company, name="New")
    page = admin_client_for(tenant_a.viewer).get("/admin/devices/box/").content.decode()
    assert "device-status-online" in page and "device-status-offline" in page
    assert "device-status-never_seen" in page
    assert "seconds ago" in page and "2\xa0days ago" in page


@pytest.mark.parametrize("status, expected", [("online", {"Up"}), ("offline", {"Down"}), ("never_seen", {"New"})])
def test_the_changelist_filters_by_status(admin_client_for, tenant_a, status, expected):
    BoxFactory(company=tenant_a.company, name="Up", last_seen_at=timezone.now())
    BoxFactory(company=tenant_a.company, name="Down", last_seen_at=timezone.now() - timedelta(days=2))
    BoxFactory(company=tenant_a.company, name="New")
    response = admin_client_for(tenant_a.viewer).get(f"/admin/devices/box/?status={status}")
    assert {box.name for box in response.context["cl"].result_list} == expected


def test_the_changelist_filters_by_location_and_box(admin_client_for, tenants):
    a, b = tenants
    box = BoxFactory(company=a.company, name="Box A1")
    BoxFactory(company=b.company, name="Box of B")
    on_box = ScreenFactory(company=a.company, box=box, location="Lobby")
    ScreenFactory(company=a.company, location="Garage")
    client = admin_client_for(a.viewer)
    page = client.get("/admin/devices/screen/")
    assert "Box of B" not in page.content.decode()  # filter choices are the company's only
    assert list(client.get(f"/admin/devices/screen/?box__id__exact={box.pk}").context["cl"].result_list) == [on_box]
    assert list(client.get("/admin/devices/screen/?location=Lobby").context["cl"].result_list) == [on_box]
    pad = PadFactory(company=a.company, screen=on_box)
    PadFactory(company=a.company)
    pads = client.get("/admin/devices/pad/")
    assert "Box of B" not in pads.content.decode()
    assert list(client.get(f"/admin/devices/pad/?box={box.pk}").context["cl"].result_list) == [pad]


def test_rotate_key_shows_the_new_key_once_and_revoke_key_revokes(admin_client_for, tenant_a):
    pad = PadFactory(company=tenant_a.company)
    client = admin_client_for(tenant_a.admin)
    response = client.post("/admin/devices/pad/", {"action": "rotate_key", "_selected_action": [pad.pk]})
    [key] = shown_keys(response)
    pad.refresh_from_db()
    assert pad.key_hash == keys.hash_key(key)
    assert key in client.get("/admin/devices/pad/").content.decode()  # the message, once
    response = client.post("/admin/devices/pad/", {"action": "revoke_key", "_selected_action": [pad.pk]}, follow=True)
    assert "Keys revoked: 1" in response.content.decode()
    pad.refresh_from_db()
    assert pad.key_revoked_at is not None
    assert key not in response.content.decode()
    assert key not in client.get(f"/admin/devices/pad/{pad.pk}/change/").content.decode()


def test_a_viewer_cannot_rotate_a_key(admin_client_for, tenant_a):
    pad = PadFactory(company=tenant_a.company)
    before = pad.key_hash
    client = admin_client_for(tenant_a.viewer)
    client.post("/admin/devices/pad/", {"action": "rotate_key", "_selected_action": [pad.pk]})
    pad.refresh_from_db()
    assert pad.key_hash == before


def test_an_admin_deletes_a_device_through_the_service(admin_client_for, tenant_a):
    tvbox = TVBoxFactory(company=tenant_a.company)
    response = admin_client_for(tenant_a.admin).post(f"/admin/devices/tvbox/{tvbox.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TVBox.objects.for_company(tenant_a.company).exists()
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="tvbox.delete").exists()


def test_a_tv_box_offers_only_the_companys_screens(admin_client_for, tenants):
    a, b = tenants
    ScreenFactory(company=a.company, name="Our camera")
    ScreenFactory(company=b.company, name="Their camera")
    page = admin_client_for(a.admin).get("/admin/devices/tvbox/add/").content.decode()
    assert "Our camera" in page and "Their camera" not in page


def test_tv_box_screens_set_in_the_admin_are_saved_and_audited(admin_client_for, tenant_a):
    screens = ScreenFactory.create_batch(2, company=tenant_a.company)
    tvbox = TVBoxFactory(company=tenant_a.company, name="TV")
    response = admin_client_for(tenant_a.admin).post(
        f"/admin/devices/tvbox/{tvbox.pk}/change/",
        {"name": "TV", "screens": [s.pk for s in screens], "greeting_employee": "Hi {name}",
         "greeting_visitor": "Hi {name}", "greeting_vip": "Hi {name}", "theme": "light", "greet_again_after": 5},
    )  # fmt: skip
    assert response.status_code == 302
    assert set(tvbox.screens.all()) == set(screens)
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="tvbox.update")
    assert entry.changes["screens"] == [[], sorted(s.pk for s in screens)]


# --- export -----------------------------------------------------------------------------------

TVBOX_FIELDS = ["id", "name", "location", "status", "screens", "theme"]


def export(client, url, resource, fields, file_format="0"):
    data = {"format": file_format, "resource": "0", **{f"{resource}_{name}": "on" for name in fields}}
    response = client.post(url, data)
    assert response.status_code == 200, response.content[:500]
    return response


def test_exporting_tv_boxes_filtered_by_name_exports_only_those_rows(admin_client_for, tenants):
    a, b = tenants
    TVBoxFactory(company=a.company, name="Lobby TV", location="Lobby")
    TVBoxFactory(company=a.company, name="Lobby TV 2", location="Lobby")
    TVBoxFactory(company=a.company, name="Canteen TV", location="Canteen")
    TVBoxFactory(company=b.company, name="Lobby TV of B")
    client = admin_client_for(a.viewer)
    response = export(client, "/admin/devices/tvbox/export/?q=lobby", "tvboxresource", TVBOX_FIELDS)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert sorted(row["name"] for row in rows) == ["Lobby TV", "Lobby TV 2"]
    assert {row["status"] for row in rows} == {"never_seen"}


def test_exporting_by_status_filter_as_xlsx(admin_client_for, tenant_a):
    TVBoxFactory(company=tenant_a.company, name="Up", last_seen_at=timezone.now())
    TVBoxFactory(company=tenant_a.company, name="Never")
    client = admin_client_for(tenant_a.viewer)
    response = export(client, "/admin/devices/tvbox/export/?status=online", "tvboxresource", TVBOX_FIELDS, "1")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    names = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert names == ["Up"]


def test_an_export_of_screens_masks_the_camera_password(admin_client_for, tenant_a):
    ScreenFactory(company=tenant_a.company, name="Cam", camera_url=CAMERA_URL)
    response = export(
        admin_client_for(tenant_a.admin),
        "/admin/devices/screen/export/",
        "screenresource",
        ["id", "name", "camera_url", "box"],
    )
    text = response.content.decode("utf-8-sig")
    assert SECRET not in text
    assert "rtsp://viewer:***@10.0.0.30:554/main" in text


def test_an_export_never_contains_keys(admin_client_for, tenant_a, register):
    _box, key = register("box", tenant_a)
    response = export(
        admin_client_for(tenant_a.admin),
        "/admin/devices/box/export/",
        "boxresource",
        ["id", "name", "location", "status", "serial", "max_screens"],
    )
    text = response.content.decode("utf-8-sig")
    assert key not in text and "key" not in text.splitlines()[0]


@pytest.mark.parametrize("factory", [BoxFactory, ScreenFactory, PadFactory, TVBoxFactory])
def test_a_change_page_shows_status_and_key_hint_but_never_the_hash(admin_client_for, tenant_a, factory):
    device = factory(company=tenant_a.company, last_seen_at=timezone.now())
    page = admin_client_for(tenant_a.admin).get(f"/admin/devices/{device._meta.model_name}/{device.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "device-status-online" in text and device.key_hint in text
    assert device.key_hash not in text


def test_platform_staff_register_a_device_for_a_chosen_company(client, platform_admin, tenants):
    a, b = tenants
    client.force_login(platform_admin)
    response = client.post(
        "/admin/devices/pad/add/", {"company": b.company.pk, "name": "Staff pad", "mode": "check_in"}
    )
    assert response.status_code == 302
    pad = Pad.objects.for_company(b.company).get(name="Staff pad")
    assert AuditLog.objects.for_company(b.company).get(action="pad.create").object_id == str(pad.pk)
    assert not Pad.objects.for_company(a.company).exists()


def test_an_export_escapes_names_that_would_open_as_formulas(admin_client_for, tenant_a):
    TVBoxFactory(company=tenant_a.company, name="=HYPERLINK(1)", location="@Lobby")
    client = admin_client_for(tenant_a.viewer)
    response = export(client, "/admin/devices/tvbox/export/", "tvboxresource", TVBOX_FIELDS)
    [row] = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert (row["name"], row["location"]) == ("'=HYPERLINK(1)", "'@Lobby")
