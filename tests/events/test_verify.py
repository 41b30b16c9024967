"""`POST /api/v1/device/verify`: a pad's "check in as ...": is this face the subject with this
job number? 1:1 on real faces, audited, inside the pad's company only."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditLog
from events.models import Event
from tests.faces import portraits
from tests.faces.enrolled import enrol, snapshot_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/device/verify"


@pytest.fixture
def people(tenant_a):
    eileen = enrol(tenant_a, "Eileen Collins", portraits.astronaut(), job_number="E-0001")
    grace = enrol(tenant_a, "Grace Hopper", portraits.grace_hopper(), job_number="E-0002")
    return eileen, grace


def verify(client, picture_bytes: bytes, job_number: str):
    upload = SimpleUploadedFile("frame.jpg", picture_bytes, content_type="image/jpeg")
    return client.post(f"{URL}/upload", {"image": upload, "job_number": job_number}, format="multipart")


def test_the_right_person_matches_and_the_wrong_one_does_not(tenant_a, door_a, people):
    eileen, grace = people
    pad = door_a.pad_client()
    yes = verify(pad, snapshot_of(portraits.astronaut()), "E-0001")
    assert yes.status_code == 200, yes.content
    answer = yes.json()
    assert answer["match"] is True and 0 < answer["distance"] < answer["threshold"]
    assert answer["threshold"] == tenant_a.company.face_match_threshold
    assert answer["subject"] == {"id": eileen.pk, "name": "Eileen Collins", "type": "employee", "job_number": "E-0001"}
    body = {"image": base64.b64encode(snapshot_of(portraits.astronaut())).decode(), "job_number": "E-0002"}
    no = pad.post(URL, body, format="json").json()
    assert no["match"] is False and no["distance"] > no["threshold"] and no["subject"]["id"] == grace.pk
    assert not Event.objects.exists()  # a verification is not a passage


def test_every_verification_is_audited_with_its_answer(tenant_a, door_a, people):
    eileen, _ = people
    verify(door_a.pad_client(), snapshot_of(portraits.astronaut()), "E-0001")
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="subject.verify_face")
    assert entry.object_id == str(eileen.pk) and entry.actor_repr == f"pad:{door_a.pad.name}"
    assert entry.changes["match"] is True and entry.changes["distance"] < entry.changes["threshold"]


def test_another_companys_job_number_is_not_found_like_a_missing_one(tenant_b, door_a, people):
    enrol(tenant_b, "Eileen in B", portraits.astronaut(), job_number="B-0001")
    for job_number in ("B-0001", "NOPE"):
        response = verify(door_a.pad_client(), snapshot_of(portraits.astronaut()), job_number)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_frame_without_a_face_or_a_bad_file_is_refused(door_a, people):
    pad = door_a.pad_client()
    no_face = verify(pad, portraits.jpeg(portraits.landscape()), "E-0001")
    assert no_face.status_code == 400 and no_face.json()["error"]["code"] == "no_face"
    broken = verify(pad, b"GIF89a broken", "E-0001")
    assert broken.json()["error"]["code"] == "photo_invalid"
    missing = pad.post(URL, {"image": base64.b64encode(b"x").decode()}, format="json")
    assert missing.status_code == 400 and "job_number" in missing.json()["error"]["fields"]


def test_a_subject_without_a_usable_photo_never_matches(tenant_a, door_a):
    from subjects import services

    services.subject_create(company=tenant_a.company, actor=tenant_a.admin, name="No Photo", job_number="E-0009")
    answer = verify(door_a.pad_client(), snapshot_of(portraits.astronaut()), "E-0009").json()
    assert answer["match"] is False and answer["distance"] is None


def test_only_pads_verify(door_a, people):
    response = verify(door_a.box_client(), snapshot_of(portraits.astronaut()), "E-0001")
    assert response.status_code == 403 and response.json()["error"]["code"] == "device_wrong_kind"
