"""`POST /api/v1/device/recognize`: a pad's snapshot, recognised by the portal on real faces,
becomes an event stored and announced like any ingested one."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from events.hooks import events_recorded
from events.models import Event, EventKind
from tests.devices.conftest import device_client
from tests.faces import portraits
from tests.faces.enrolled import enrol, snapshot_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/device/recognize"


@pytest.fixture
def eileen(tenant_a):
    return enrol(tenant_a, "Eileen Collins", portraits.astronaut(), job_number="E-0001")


@pytest.fixture
def heard():
    calls: list[list[Event]] = []

    def listener(sender, *, company, events, **kwargs):
        calls.append(list(events))

    events_recorded.connect(listener, weak=False)
    yield calls
    events_recorded.disconnect(listener)


def recognize(client, picture_bytes: bytes, **fields):
    upload = SimpleUploadedFile("frame.jpg", picture_bytes, content_type="image/jpeg")
    return client.post(f"{URL}/upload", {"image": upload, **fields}, format="multipart")


def recognize_json(client, picture_bytes: bytes, **fields):
    return client.post(URL, {"image": base64.b64encode(picture_bytes).decode(), **fields}, format="json")


def test_an_enrolled_person_at_the_pad_is_recognized_and_announced(
    tenant_a, door_a, eileen, heard, django_capture_on_commit_callbacks
):
    enrol(tenant_a, "Grace Hopper", portraits.grace_hopper())
    with django_capture_on_commit_callbacks(execute=True):
        response = recognize(door_a.pad_client(), snapshot_of(portraits.astronaut()))
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["kind"] == "recognized" and answer["duplicate"] is False
    assert answer["subject"] == {"id": eileen.pk, "name": "Eileen Collins", "type": "employee", "job_number": "E-0001"}
    assert answer["greeting"] == "Welcome, Eileen Collins!"
    event = Event.objects.get(pk=answer["event_id"])
    assert (event.kind, event.subject_id, event.screen_id) == (EventKind.RECOGNIZED, eileen.pk, door_a.entrance.pk)
    assert (event.device_kind, event.device_id, event.direction) == ("pad", door_a.pad.pk, "in")
    assert 0 < event.distance == answer["distance"] < tenant_a.company.face_match_threshold
    assert not event.snapshot  # a known face is not kept
    assert [[e.pk for e in batch] for batch in heard] == [[event.pk]]  # announced once, after commit
    assert heard[0][0].first_photo_id == eileen.photos.get().pk  # for the welcome card's thumbnail


def test_someone_else_is_a_stranger_whose_snapshot_is_kept(tenant_a, door_a, eileen, api):
    response = recognize_json(door_a.pad_client(), snapshot_of(portraits.grace_hopper()))
    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["kind"], answer["subject"], answer["distance"]) == ("stranger", None, None)
    assert "reception" in answer["greeting"]
    event = Event.objects.get(pk=answer["event_id"])
    assert event.kind == EventKind.STRANGER and event.subject_id is None and event.snapshot
    shown = api(tenant_a.admin).get(f"/api/v1/events/{event.pk}/snapshot")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/jpeg"


def test_a_retry_with_the_same_uid_answers_the_same_event(door_a, eileen):
    pad = door_a.pad_client()
    first = recognize(pad, snapshot_of(portraits.astronaut()), uid="pad-0001")
    again = recognize_json(pad, snapshot_of(portraits.astronaut()), uid="pad-0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["duplicate"] is True and again.json()["subject"]["id"] == eileen.pk
    assert Event.objects.filter(uid="pad-0001").count() == 1
    other = recognize(pad, snapshot_of(portraits.astronaut()), uid="pad-0002")
    assert other.status_code == 201 and other.json()["event_id"] != first.json()["event_id"]


def test_a_box_names_the_screen_that_saw_the_face(door_a, eileen):
    box = door_a.box_client()
    missing = recognize(box, snapshot_of(portraits.astronaut()))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    seen = recognize(box, snapshot_of(portraits.astronaut()), screen_id=door_a.exit.pk)
    assert seen.status_code == 201, seen.content
    event = Event.objects.get(pk=seen.json()["event_id"])
    assert (event.screen_id, event.direction, event.subject_id) == (door_a.exit.pk, "out", eileen.pk)


def test_a_vip_and_a_visitor_outside_their_window_are_greeted_for_what_they_are(tenant_a, door_a):
    from datetime import timedelta

    from django.utils import timezone

    enrol(tenant_a, "Grace Hopper", portraits.grace_hopper(), subject_type="vip")
    vip = recognize(door_a.pad_client(), snapshot_of(portraits.grace_hopper())).json()
    assert vip["kind"] == "recognized" and vip["subject"]["type"] == "vip"
    assert vip["greeting"] == f"Welcome, Grace Hopper! It is an honour to have you at {tenant_a.company.name}."
    yesterday = timezone.now() - timedelta(days=1)
    enrol(
        tenant_a,
        "Eileen Collins",
        portraits.astronaut(),
        subject_type="visitor",
        visit_start=yesterday - timedelta(hours=2),
        visit_end=yesterday,
    )
    late = recognize(door_a.pad_client(), snapshot_of(portraits.astronaut())).json()
    assert late["kind"] == "visitor_outside_window" and late["subject"]["name"] == "Eileen Collins"
    assert "reception" in late["greeting"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"image": base64.b64encode(b"not an image at all").decode()}, "unsupported_format"),
        ({"image": "%%% not base64 %%%"}, "not_base64"),
        ({"image": 42}, "not_base64"),
        ({"image": ""}, "missing"),
        ({}, "missing"),
    ],
)
def test_what_is_not_an_image_is_refused_like_an_upload(door_a, body, reason):
    response = door_a.pad_client().post(URL, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["reason"]) == ("photo_invalid", reason)
    assert not Event.objects.exists()


def test_a_file_over_the_limit_is_refused_before_it_is_decoded(door_a, settings):
    settings.FACE_SNAPSHOT_MAX_BYTES = 16 * 1024
    frame = snapshot_of(portraits.astronaut())
    big = frame + b"\0" * (16 * 1024 + 500 - len(frame))  # a JPEG with trailing bytes, just over
    for response in (recognize(door_a.pad_client(), big), recognize_json(door_a.pad_client(), big)):
        assert response.status_code == 400
        assert (response.json()["error"]["code"], response.json()["error"]["reason"]) == ("photo_invalid", "too_large")
    assert not Event.objects.exists()


def test_a_body_far_over_the_limit_is_refused_unread(door_a, settings):
    settings.FACE_SNAPSHOT_MAX_BYTES = 16 * 1024
    huge = b"\xff" * (200 * 1024)
    response = recognize(door_a.pad_client(), huge)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_a_frame_without_a_face_stores_nothing(door_a, eileen):
    response = recognize(door_a.pad_client(), portraits.jpeg(portraits.landscape()))
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_face"
    assert not Event.objects.exists()


def test_an_unknown_field_is_refused(door_a):
    response = recognize_json(door_a.pad_client(), snapshot_of(portraits.astronaut()), subject_id=1)
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_fields"
    response = recognize(door_a.pad_client(), snapshot_of(portraits.astronaut()), subject_id="1")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_fields"


def test_each_path_takes_one_body_type(door_a):
    upload = SimpleUploadedFile("frame.jpg", snapshot_of(portraits.astronaut()), content_type="image/jpeg")
    assert door_a.pad_client().post(URL, {"image": upload}, format="multipart").status_code == 415
    body = {"image": base64.b64encode(snapshot_of(portraits.astronaut())).decode()}
    assert door_a.pad_client().post(f"{URL}/upload", body, format="json").status_code == 415


def test_only_pads_and_boxes_may_ask(door_a, tenant_a, api):
    tv = device_client(door_a.tv_key)
    assert recognize(tv, snapshot_of(portraits.astronaut())).json()["error"]["code"] == "device_wrong_kind"
    assert recognize(api(tenant_a.owner), snapshot_of(portraits.astronaut())).status_code == 401


def test_only_the_devices_company_faces_are_candidates(tenant_a, tenant_b, door_a, door_b):
    """The same person enrolled in both companies: each company's pad finds its own record,
    and a company where she is not enrolled sees a stranger."""
    in_b = enrol(tenant_b, "Eileen (B)", portraits.astronaut())
    from_a = recognize(door_a.pad_client(), snapshot_of(portraits.astronaut())).json()
    assert from_a["kind"] == "stranger"
    in_a = enrol(tenant_a, "Eileen (A)", portraits.astronaut())
    from_a = recognize(door_a.pad_client(), snapshot_of(portraits.astronaut())).json()
    from_b = recognize(door_b.pad_client(), snapshot_of(portraits.astronaut())).json()
    assert (from_a["subject"]["id"], from_b["subject"]["id"]) == (in_a.pk, in_b.pk)
    assert Event.objects.get(pk=from_a["event_id"]).company_id == tenant_a.company.pk
    assert Event.objects.get(pk=from_b["event_id"]).company_id == tenant_b.company.pk


def test_a_retry_is_answered_without_recognising_again(door_a, eileen, monkeypatch):
    import faces
    from subjects import face_lookup

    calls = []
    real = faces.snapshot_face

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(face_lookup.faces, "snapshot_face", counted)
    pad = door_a.pad_client()
    first = recognize(pad, snapshot_of(portraits.astronaut()), uid="pad-7")
    again = recognize(pad, snapshot_of(portraits.astronaut()), uid="pad-7")
    assert again.json()["event_id"] == first.json()["event_id"] and len(calls) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_retries_racing_with_one_uid_store_one_event(door_a, eileen):
    from tests.test_concurrency import run_together

    frame = snapshot_of(portraits.astronaut())
    first, second = run_together(*[lambda: recognize(door_a.pad_client(), frame, uid="race-1")] * 2)
    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert first.json()["event_id"] == second.json()["event_id"]
    assert Event.objects.filter(uid="race-1").count() == 1
