"""Hostile or broken input answers a coded 4xx, quickly, with nothing stored: control
characters, bodies too large or too deep, impossible time zone offsets, unknown routes."""

import base64
import json

import pytest

from accounts.models import AuditLog
from events.models import Event
from events.services import batch_max_bytes
from kangaroo.api.parsers import MAX_DEPTH
from subjects.models import Department, Subject
from tests.events.conftest import event, make_door

pytestmark = pytest.mark.django_db


def post_raw(client, path, body: bytes | str, content_type="application/json"):
    return client.generic("POST", path, body, content_type=content_type)


def error_of(response) -> tuple[int, str]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.status_code, response.json()["error"]["code"]


# --- control characters ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["nul\u0000x", "bell\u0007", "esc\u001b[2J", "del\u007f", "c1\u0085"])
def test_a_control_character_in_any_text_is_refused_and_nothing_is_stored(api, tenant_a, bad):
    client = api(tenant_a.admin)
    response = client.post("/api/v1/departments", {"name": bad}, format="json")
    assert error_of(response) == (400, "validation_error")
    assert response.json()["error"]["fields"] == {"name": ["Control characters (such as NUL) are not allowed."]}
    response = client.post("/api/v1/subjects", {"name": "Mei", "subject_type": "visitor", "remark": bad}, format="json")
    assert error_of(response) == (400, "validation_error")
    assert "remark" in response.json()["error"]["fields"]
    assert not Department.objects.for_company(tenant_a.company).exists()
    assert not Subject.objects.for_company(tenant_a.company).exists()


def test_a_lone_surrogate_is_refused(api, tenant_a):
    response = post_raw(api(tenant_a.admin), "/api/v1/departments", '{"name": "half \\ud800"}')
    assert error_of(response) == (400, "validation_error")
    assert not Department.objects.for_company(tenant_a.company).exists()


def test_a_control_character_in_a_key_or_a_nested_text_names_its_path(api, tenant_a):
    body = {"name": "Ops", "x\u0000": [{"y": "\u0001"}]}
    response = api(tenant_a.admin).post("/api/v1/departments", body, format="json")
    assert error_of(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["x\u0000"]


def test_tabs_and_line_breaks_are_ordinary_text(api, tenant_a):
    response = api(tenant_a.admin).post("/api/v1/departments", {"name": "Ops\tNight"}, format="json")
    assert response.status_code == 201, response.content


def test_a_control_character_in_a_multipart_part_is_refused(api, tenant_a):
    response = api(tenant_a.admin).post("/api/v1/subjects/with-photos", {"name": "Lin\u0000"}, format="multipart")
    assert error_of(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["name"]
    assert not Subject.objects.for_company(tenant_a.company).exists()


def test_a_control_character_refuses_only_its_own_item_in_a_batch(tenant_a):
    door = make_door(tenant_a, "A")
    items = [
        event("nul\u0000x", door.entrance),
        event("fine", door.entrance),
        event("ok", door.entrance, snapshot="\u0000"),
    ]
    response = door.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["error", "created", "error"]
    assert results[0]["error"]["fields"] == {"uid": ["Control characters (such as NUL) are not allowed."]}
    assert list(results[2]["error"]["fields"]) == ["snapshot"]
    assert list(Event.objects.for_company(tenant_a.company).values_list("uid", flat=True)) == ["fine"]


def test_a_single_event_with_a_control_character_is_a_validation_error(tenant_a):
    door = make_door(tenant_a, "A")
    response = door.box_client().post("/api/v1/device/events", event("nul\u0000x", door.entrance), format="json")
    assert error_of(response) == (400, "validation_error")
    assert not Event.objects.for_company(tenant_a.company).exists()


def test_a_control_character_in_a_device_report_is_refused(tenant_a):
    door = make_door(tenant_a, "A")
    response = door.box_client().post("/api/v1/device/heartbeat", {"version": "2.4\u0000"}, format="json")
    assert error_of(response) == (400, "validation_error")
    door.box.refresh_from_db()
    assert door.box.last_seen_at is None


# --- size -------------------------------------------------------------------------------------


def test_a_body_over_the_limit_answers_413_with_the_limit_even_unauthenticated(client, settings):
    body = json.dumps({"username": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), "password": "y"})
    response = post_raw(client, "/api/v1/auth/token", body)
    assert error_of(response) == (413, "payload_too_large")
    assert response.json()["error"]["limit"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_the_event_endpoint_takes_a_full_batch_with_snapshots_and_no_more(tenant_a, settings):
    settings.EVENT_SNAPSHOT_MAX_BYTES = 1024  # the same arithmetic as 64 KiB, a smaller body
    limit = batch_max_bytes()
    door = make_door(tenant_a, "A")
    largest = base64.b64encode(b"\xff" * 1024).decode()
    items = [event(f"{n:064d}", door.entrance, subject_id=2**62, confidence=0.123456789, snapshot=largest)
             for n in range(500)]  # fmt: skip
    body = json.dumps({"events": items})
    assert len(body) <= limit
    response = post_raw(door.box_client(), "/api/v1/device/events", body)
    assert response.status_code == 200  # every item read (each snapshot is not an image)
    assert response.json()["errors"] == 500
    response = post_raw(door.box_client(), "/api/v1/device/events", body + " " * (limit - len(body) + 1))
    assert error_of(response) == (413, "payload_too_large")
    assert response.json()["error"]["limit"] == limit


def test_the_default_event_body_limit_fits_500_snapshots_of_the_default_cap(settings):
    assert settings.EVENT_SNAPSHOT_MAX_BYTES == 64 * 1024
    assert batch_max_bytes() > 500 * (64 * 1024 * 4 // 3) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_a_snapshot_over_the_cap_refuses_only_its_item(tenant_a, settings):
    settings.EVENT_SNAPSHOT_MAX_BYTES = 1024
    door = make_door(tenant_a, "A")
    too_big = base64.b64encode(b"\xff" * 1027).decode()
    items = [event("big", door.entrance, snapshot=too_big), event("fine", door.entrance)]
    results = door.box_client().post("/api/v1/device/events", {"events": items}, format="json").json()["results"]
    assert [r["status"] for r in results] == ["error", "created"]
    assert (results[0]["error"]["code"], results[0]["error"]["limit"]) == ("event_snapshot_too_large", 1024)


# --- depth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_json_nested_too_deep_is_a_parse_error_even_unauthenticated(client, depth):
    response = post_raw(client, "/api/v1/auth/token", "[" * depth + "]" * depth)
    assert error_of(response) == (400, "parse_error")
    response = post_raw(client, "/api/v1/auth/token", '{"a":' * depth + "1" + "}" * depth)
    assert error_of(response) == (400, "parse_error")


def test_json_nested_within_the_limit_is_ordinary(api, tenant_a):
    nested = json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))  # in {"name": ...}: MAX_DEPTH
    response = api(tenant_a.admin).post("/api/v1/departments", {"name": nested}, format="json")
    assert error_of(response) == (400, "validation_error")  # a field error, not a parse error


@pytest.mark.parametrize("body", ['{"name": NaN}', '{"name": Infinity}', '{"name": "a"', b'{"name": "\xff"}'])
def test_malformed_json_is_a_parse_error(api, tenant_a, body):
    assert error_of(post_raw(api(tenant_a.admin), "/api/v1/departments", body)) == (400, "parse_error")


# --- time zone offsets ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/audit-log"])
@pytest.mark.parametrize("offset", ["+16:00", "-15:00", "+14:01"])
def test_a_since_with_an_impossible_offset_is_a_validation_error(api, tenant_a, path, offset):
    response = api(tenant_a.owner).get(path, {"since": f"2026-01-01T00:00:00{offset}"})
    assert error_of(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["since"]


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/audit-log"])
def test_offsets_of_real_time_zones_are_accepted(api, tenant_a, path):
    for offset in ("+14:00", "-12:00", "+05:45", "Z"):
        response = api(tenant_a.owner).get(path, {"since": f"2026-01-01T00:00:00{offset}", "until": "2027-01-01"})
        assert response.status_code == 200, (offset, response.content)


def test_an_event_with_an_impossible_offset_refuses_only_its_item(tenant_a):
    door = make_door(tenant_a, "A")
    items = [{"uid": "tz", "happened_at": "2026-01-01T00:00:00+16:00", "screen_id": door.entrance.pk},
             event("fine", door.entrance)]  # fmt: skip
    results = door.box_client().post("/api/v1/device/events", {"events": items}, format="json").json()["results"]
    assert [(r["status"], list(r.get("error", {}).get("fields", {}))) for r in results] == [
        ("error", ["happened_at"]),
        ("created", []),
    ]


# --- routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/v1/boxes/0.5", "/api/v1/boxes/1/nope", "/api/v1/nope", "/api/v2/subjects", "/api/", "/api/v1/boxes/"]
)
def test_an_unknown_api_route_answers_the_json_envelope(api, tenant_a, method, path):
    response = getattr(api(tenant_a.owner), method)(path)
    assert error_of(response) == (404, "not_found")
    response = getattr(api(None), method)(path)  # the same to anyone: routes are no secret
    assert error_of(response) == (404, "not_found")


def test_outside_the_api_a_missing_page_is_still_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_nothing_refused_was_audited(api, tenant_a):
    api(tenant_a.admin).post("/api/v1/departments", {"name": "x\u0000"}, format="json")
    assert not AuditLog.objects.for_company(tenant_a.company).exists()


@pytest.mark.parametrize("query", ["q=a%00b", "name=%07", "x%01=1", "job_number=%1b"])
@pytest.mark.parametrize("path", ["/api/v1/subjects", "/api/v1/boxes", "/api/v1/events", "/api/v1/attendance"])
def test_a_control_character_in_the_query_string_is_refused(api, tenant_a, path, query):
    response = api(tenant_a.owner).get(f"{path}?{query}")
    assert error_of(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == [query.split("=")[0].replace("%01", "\x01")]
