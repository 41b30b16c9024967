"""Numbers and dates out of range are bad input with a code, never a 500; another
company's id in a filter reads like a missing one."""

import pytest
from django.core import signing

from events.live import LIVE_IMAGE_SALT, live_image_url
from tests.devices.conftest import device_client
from tests.events.conftest import event, make_door
from tests.factories import DepartmentFactory, PhotoFactory, SubjectFactory

pytestmark = pytest.mark.django_db

HUGE = 10**20


def test_a_filter_by_another_companys_department_reads_like_a_missing_one(api, tenants):
    a, b = tenants
    SubjectFactory(company=a.company)
    theirs = DepartmentFactory(company=b.company)
    client = api(a.viewer)
    for query in (f"department={theirs.pk}", "department=999999"):
        response = client.get(f"/api/v1/subjects?{query}")
        assert (response.status_code, response.json()["results"]) == (200, [])


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/subjects?department={HUGE}",
        f"/api/v1/events?screen={HUGE}",
        f"/api/v1/events?department={HUGE}",
        f"/api/v1/screens?box={HUGE}",
        f"/api/v1/attendance?department={HUGE}",
        "/api/v1/attendance?from=2026-01-01&to=9999-12-31",
        "/api/v1/attendance?from=0001-01-01&to=0001-01-01",
    ],
)
def test_an_out_of_range_query_is_a_validation_error(api, tenant_a, path):
    response = api(tenant_a.viewer).get(path)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"


def test_impossible_dates_and_huge_ids_in_events_are_item_errors(tenant_a):
    door = make_door(tenant_a, "A")
    items = [
        {"uid": "feb30", "happened_at": "2024-02-30T10:00:00+00:00", "screen_id": door.entrance.pk},
        event("huge-subject", door.entrance, subject_id=10**30),
        event("huge-screen", screen_id=10**30),
        event("fine", door.entrance),
    ]
    body = door.box_client().post("/api/v1/device/events", {"events": items}, format="json").json()
    codes = [r.get("error", {}).get("code", r["status"]) for r in body["results"]]
    assert codes == ["validation_error", "validation_error", "validation_error", "created"]


@pytest.mark.parametrize("field", ["uptime", "gallery_cursor"])
def test_huge_heartbeat_numbers_are_refused(tenant_a, field):
    door = make_door(tenant_a, "A")
    response = device_client(door.box_key).post("/api/v1/device/heartbeat", {field: 10**30}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_a_live_image_link_serves_only_its_own_companys_row(client, tenants):
    a, b = tenants
    photo = PhotoFactory(company=a.company)
    assert client.get(live_image_url("photo", photo.pk, a.company.pk)).status_code == 200
    assert client.get(live_image_url("photo", photo.pk, b.company.pk)).status_code == 404
    forged = signing.dumps({"k": "photo", "id": photo.pk, "c": a.company.pk}, salt="another-salt")
    assert client.get(f"/live/image/{forged}").status_code == 404
    assert LIVE_IMAGE_SALT != "another-salt"
