"""/api/v1/tv-boxes: welcome displays, their screens and greetings."""

import pytest

from devices.models import TVBox
from tests.conftest import answer_without_request_id
from tests.factories import ScreenFactory, TVBoxFactory

pytestmark = pytest.mark.django_db


def test_an_admin_registers_a_tv_box_with_screens_greetings_and_theme(api, tenant_a):
    screens = ScreenFactory.create_batch(2, company=tenant_a.company)
    response = api(tenant_a.admin).post(
        "/api/v1/tv-boxes",
        {
            "name": "Lobby TV",
            "screens": [s.pk for s in screens],
            "greeting_vip": "Good morning, {name}. {company} welcomes you.",
            "theme": "dark",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(body["screens"]) == sorted(s.pk for s in screens)
    assert body["theme"] == "dark"
    assert body["greeting_employee"] == "Welcome, {name}!"  # the default
    assert body["api_key"].startswith("kgr_tvbox_")


@pytest.mark.parametrize("greeting", ["Hello {nmae}!", "Hello {name", "Hello {0}", "Hi {name!r}", "Hi {name:>10}"])
def test_a_greeting_with_an_unknown_placeholder_is_refused(api, tenant_a, greeting):
    response = api(tenant_a.admin).post(
        "/api/v1/tv-boxes", {"name": "TV", "greeting_employee": greeting}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "greeting_template_invalid"
    assert list(response.json()["error"]["fields"]) == ["greeting_employee"]


def test_a_screen_of_another_company_is_refused_as_if_absent_and_never_revealed(api, tenants):
    a, b = tenants
    mine = ScreenFactory(company=a.company)
    theirs = ScreenFactory(company=b.company, name="B secret camera")
    foreign = api(a.admin).post("/api/v1/tv-boxes", {"name": "TV", "screens": [mine.pk, theirs.pk]}, format="json")
    missing = api(a.admin).post("/api/v1/tv-boxes", {"name": "TV", "screens": [mine.pk, 987654]}, format="json")
    assert foreign.status_code == missing.status_code == 400
    assert answer_without_request_id(foreign) == answer_without_request_id(missing)
    assert foreign.json()["error"]["fields"] == {"screens": ["Not found."]}
    assert "B secret camera" not in foreign.content.decode()
    assert not TVBox.objects.for_company(a.company).exists()


def test_changing_the_screens_replaces_them(api, tenant_a):
    tvbox = TVBoxFactory(company=tenant_a.company)
    old, new = ScreenFactory.create_batch(2, company=tenant_a.company)
    tvbox.screens.add(old)
    response = api(tenant_a.admin).patch(f"/api/v1/tv-boxes/{tvbox.pk}", {"screens": [new.pk]}, format="json")
    assert response.status_code == 200 and response.json()["screens"] == [new.pk]


def test_the_tv_box_reads_its_configuration(tenant_a, register, device_api):
    screen, _ = register("screen", tenant_a)
    tvbox, key = register("tvbox", tenant_a, screens=[screen], theme="dark")
    body = device_api(key).get("/api/v1/device/tv-box/config").json()
    assert (body["id"], body["screen_ids"], body["theme"]) == (tvbox.pk, [screen.pk], "dark")


def test_the_api_filters_tv_boxes_by_name_and_status(api, tenant_a):
    TVBoxFactory(company=tenant_a.company, name="Lobby TV")
    TVBoxFactory(company=tenant_a.company, name="Canteen TV")
    rows = api(tenant_a.viewer).get("/api/v1/tv-boxes?name=lobby&status=never_seen").json()["results"]
    assert [row["name"] for row in rows] == ["Lobby TV"]
