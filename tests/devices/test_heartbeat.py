"""POST /api/v1/device/heartbeat: what a device reports, and what is refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import Box, DeviceStatusChange, Screen, Status
from tests.conftest import answer_without_request_id
from tests.factories import ScreenFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/device/heartbeat"


def error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] == code
    return body


def test_a_heartbeat_stores_version_address_and_uptime_and_answers_online(tenant_a, register, device_api, settings):
    settings.DEVICE_OFFLINE_AFTER = 90
    pad, key = register("pad", tenant_a)
    response = device_api(key).post(
        URL,
        {"sent_at": timezone.now().isoformat(), "version": "1.8.0", "address": "10.1.2.3", "uptime": 3600},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "online"
    assert response.json()["next_heartbeat_in"] == 30
    pad.refresh_from_db()
    assert (pad.software_version, pad.address, pad.uptime_seconds) == ("1.8.0", "10.1.2.3", 3600)
    assert pad.last_seen_at is not None and pad.recorded_status == Status.ONLINE


def test_an_empty_heartbeat_is_enough(tenant_a, register, device_api):
    tvbox, key = register("tvbox", tenant_a)
    assert device_api(key).post(URL, {}, format="json").status_code == 200
    tvbox.refresh_from_db()
    assert tvbox.get_status() == Status.ONLINE


def test_a_box_reports_its_cameras_and_gallery_cursor(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    up, _ = register("screen", tenant_a, box=box)
    down, _ = register("screen", tenant_a, box=box)
    response = device_api(key).post(
        URL,
        {
            "cameras": [{"screen_id": up.pk, "status": "ok"}, {"screen_id": down.pk, "status": "no_signal"}],
            "gallery_cursor": 1532,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    box.refresh_from_db()
    up.refresh_from_db()
    down.refresh_from_db()
    assert box.gallery_cursor == 1532
    assert (up.camera_status, up.get_status()) == ("ok", Status.ONLINE)
    assert (down.camera_status, down.get_status()) == ("no_signal", Status.NEVER_SEEN)


def test_a_box_hears_its_companys_match_threshold_and_other_devices_do_not(tenants, register, device_api):
    tenant_a, tenant_b = tenants
    tenant_a.company.face_match_threshold = 0.48
    tenant_a.company.save(update_fields=["face_match_threshold"])
    _, ours = register("box", tenant_a)
    _, theirs = register("box", tenant_b)
    _, pad = register("pad", tenant_a)
    assert device_api(ours).post(URL, {}, format="json").json()["match_threshold"] == 0.48
    assert device_api(theirs).post(URL, {}, format="json").json()["match_threshold"] == 0.55
    assert "match_threshold" not in device_api(pad).post(URL, {}, format="json").json()


def test_a_camera_of_another_box_is_not_found(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    other_box, _ = register("box", tenant_a)
    theirs, _ = register("screen", tenant_a, box=other_box)
    response = device_api(key).post(URL, {"cameras": [{"screen_id": theirs.pk, "status": "ok"}]}, format="json")
    body = error(response, 400, "validation_error")
    assert "cameras.0.screen_id" in body["fields"]
    theirs.refresh_from_db()
    assert theirs.camera_status == "" and theirs.last_seen_at is None
    box.refresh_from_db()
    assert box.last_seen_at is None  # the whole heartbeat was refused


def test_a_camera_of_another_company_answers_like_a_missing_one(tenants, register, device_api):
    a, b = tenants
    _box, key = register("box", a)
    box_b, _ = register("box", b)
    theirs = ScreenFactory(company=b.company, box=box_b)
    foreign = device_api(key).post(URL, {"cameras": [{"screen_id": theirs.pk, "status": "ok"}]}, format="json")
    missing = device_api(key).post(URL, {"cameras": [{"screen_id": 987654, "status": "ok"}]}, format="json")
    assert foreign.status_code == missing.status_code == 400
    assert answer_without_request_id(foreign) == answer_without_request_id(missing)
    theirs.refresh_from_db()
    assert theirs.last_seen_at is None


def test_unknown_fields_are_refused_by_name(tenant_a, register, device_api):
    _pad, key = register("pad", tenant_a)
    body = error(device_api(key).post(URL, {"version": "1", "temperature": 40}, format="json"), 400, "unknown_fields")
    assert list(body["fields"]) == ["temperature"]


def test_unknown_fields_inside_a_camera_report_are_refused_with_their_path(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    screen, _ = register("screen", tenant_a, box=box)
    response = device_api(key).post(
        URL, {"cameras": [{"screen_id": screen.pk, "status": "ok", "fps": 25}]}, format="json"
    )
    body = error(response, 400, "unknown_fields")
    assert list(body["fields"]) == ["cameras.0.fps"]


@pytest.mark.parametrize("field", ["cameras", "gallery_cursor"])
def test_box_only_fields_are_unknown_for_other_kinds(tenant_a, register, device_api, field):
    _screen, key = register("screen", tenant_a)
    value = [] if field == "cameras" else 3
    body = error(device_api(key).post(URL, {field: value}, format="json"), 400, "unknown_fields")
    assert list(body["fields"]) == [field]


def test_a_heartbeat_from_the_future_is_refused(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a)
    sent_at = (timezone.now() + timedelta(minutes=6)).isoformat()
    body = error(device_api(key).post(URL, {"sent_at": sent_at}, format="json"), 400, "heartbeat_from_future")
    assert "sent_at" in body["fields"] and "server_time" in body
    pad.refresh_from_db()
    assert pad.last_seen_at is None


def test_a_clock_a_little_ahead_is_accepted(tenant_a, register, device_api):
    _pad, key = register("pad", tenant_a)
    sent_at = (timezone.now() + timedelta(minutes=4)).isoformat()
    assert device_api(key).post(URL, {"sent_at": sent_at}, format="json").status_code == 200


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"uptime": -1}, "uptime"),
        ({"address": "not an address"}, "address"),
        ({"sent_at": "yesterday"}, "sent_at"),
        ({"gallery_cursor": -5}, "gallery_cursor"),
        ({"cameras": [{"screen_id": 1, "status": "melted"}]}, "cameras.0.status"),
        ({"cameras": [{"status": "ok"}]}, "cameras.0.screen_id"),
    ],
)
def test_bad_values_are_validation_errors_naming_the_field(tenant_a, register, device_api, payload, field):
    _box, key = register("box", tenant_a)
    body = error(device_api(key).post(URL, payload, format="json"), 400, "validation_error")
    assert field in body["fields"]


def test_a_body_that_is_not_an_object_is_refused(tenant_a, register, device_api):
    _box, key = register("box", tenant_a)
    response = device_api(key).post(URL, [1, 2], format="json")
    assert response.status_code == 400


def test_the_first_heartbeat_records_device_online_and_the_next_ones_nothing(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    client = device_api(key)
    client.post(URL, {}, format="json")
    client.post(URL, {}, format="json")
    changes = DeviceStatusChange.objects.for_company(tenant_a.company)
    assert [(c.device_kind, c.device_id, c.change) for c in changes] == [("box", box.pk, "device_online")]


def test_a_heartbeat_after_going_offline_records_device_online_again(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    Box.objects.for_company(tenant_a.company).filter(pk=box.pk).update(
        recorded_status=Status.OFFLINE, last_seen_at=timezone.now() - timedelta(hours=1)
    )
    device_api(key).post(URL, {}, format="json")
    assert list(DeviceStatusChange.objects.for_company(tenant_a.company).values_list("change", flat=True)) == [
        "device_online"
    ]
    box.refresh_from_db()
    assert box.recorded_status == Status.ONLINE


def test_a_camera_reported_ok_comes_online_with_its_own_change(tenant_a, register, device_api):
    box, key = register("box", tenant_a)
    screen, _ = register("screen", tenant_a, box=box)
    device_api(key).post(URL, {"cameras": [{"screen_id": screen.pk, "status": "ok"}]}, format="json")
    kinds = set(DeviceStatusChange.objects.for_company(tenant_a.company).values_list("device_kind", "device_id"))
    assert kinds == {("box", box.pk), ("screen", screen.pk)}
    assert Screen.objects.for_company(tenant_a.company).get(pk=screen.pk).recorded_status == Status.ONLINE


def test_a_camera_list_longer_than_the_box_can_serve_is_refused_before_any_lookup(
    tenant_a, register, device_api, django_assert_max_num_queries
):
    box, key = register("box", tenant_a, max_screens=2)
    screen, _ = register("screen", tenant_a, box=box)
    cameras = [{"screen_id": screen.pk, "status": "ok"}] * 10_000
    with django_assert_max_num_queries(2):  # the device's key; nothing per camera
        response = device_api(key).post(URL, {"cameras": cameras}, format="json")
    body = error(response, 400, "validation_error")
    assert list(body["fields"]) == ["cameras"]
    box.refresh_from_db()
    assert box.last_seen_at is None


def test_a_camera_listed_twice_is_refused(tenant_a, register, device_api):
    box, key = register("box", tenant_a, max_screens=4)
    screen, _ = register("screen", tenant_a, box=box)
    other, _ = register("screen", tenant_a, box=box)
    cameras = [{"screen_id": screen.pk, "status": "ok"}, {"screen_id": other.pk, "status": "ok"},
               {"screen_id": screen.pk, "status": "no_signal"}]  # fmt: skip
    body = error(device_api(key).post(URL, {"cameras": cameras}, format="json"), 400, "validation_error")
    assert list(body["fields"]) == ["cameras.2.screen_id"]
    screen.refresh_from_db()
    assert screen.camera_status != "ok"


def test_a_box_reports_as_many_cameras_as_it_serves(tenant_a, register, device_api):
    box, key = register("box", tenant_a, max_screens=2)
    screens = [register("screen", tenant_a, box=box)[0] for _ in range(2)]
    cameras = [{"screen_id": screen.pk, "status": "ok"} for screen in screens]
    assert device_api(key).post(URL, {"cameras": cameras}, format="json").status_code == 200


@pytest.mark.parametrize("format_", ["multipart", None])
def test_a_device_body_must_be_json_a_form_has_no_types(tenant_a, register, device_api, format_):
    pad, key = register("pad", tenant_a)
    client = device_api(key)
    if format_ is None:
        response = client.post(URL, "address=", content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(URL, {"address": "", "uptime": "5"}, format=format_)
    error(response, 415, "unsupported_media_type")
    pad.refresh_from_db()
    assert pad.last_seen_at is None
    assert "multipart/form-data" not in _request_types(URL)


def _request_types(path):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return set(schema["paths"][path]["post"]["requestBody"]["content"])


def test_a_pad_location_must_be_text(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a)
    response = device_api(key).patch("/api/v1/device/pad/location", {"location": 0}, format="json")
    body = error(response, 400, "validation_error")
    assert list(body["fields"]) == ["location"]
    pad.refresh_from_db()
    assert pad.location != "0"
