"""From a real face to a box: a photo uploaded through the API is enrolled by its job, the
job's enrolment appends to the change log, and the box's next pull carries the embedding;
a company's re-enrolment job appends for every subject it touched."""

from __future__ import annotations

import base64
from functools import cache

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import faces
from subjects.jobs import photos_reenrol
from subjects.models import GalleryChange, Photo
from tests.devices.conftest import device_client
from tests.faces import portraits

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_inline(settings):
    settings.JOBS_INLINE = True


@cache
def astronaut_jpeg() -> bytes:
    return portraits.jpeg(portraits.astronaut())


def reasons(company) -> list[tuple[int, str]]:
    rows = GalleryChange.objects.for_company(company).order_by("sequence")
    return list(rows.values_list("subject_ref", "reason"))


def test_an_enrolment_job_reaches_the_box(api, register, tenant_a, django_capture_on_commit_callbacks):
    _, key = register("box", tenant_a)
    box = device_client(key)
    client = api(tenant_a.admin)
    created = client.post("/api/v1/subjects", {"name": "Eileen", "job_number": "E1"}, format="json").json()
    consent = {"method": "paper", "policy_version": 1}  # consent appends nothing: the faces have not changed
    assert client.post(f"/api/v1/subjects/{created['id']}/consents", consent, format="json").status_code == 201
    cursor = box.get("/api/v1/device/gallery").json()["next"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/subjects/{created['id']}/photos", {"image": SimpleUploadedFile("p.jpg", astronaut_jpeg())}
        )
    assert response.status_code == 201
    assert reasons(tenant_a.company) == [(created["id"], "subject_created"), (created["id"], "photo_enrolled")]

    page = box.get("/api/v1/device/gallery", {"after": cursor}).json()
    [change] = page["changes"]
    [face] = change["faces"]
    stored = Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    assert (change["id"], face["photo_id"], face["model"]) == (created["id"], stored.pk, faces.MODEL)
    vector = np.frombuffer(base64.b64decode(face["embedding"]), dtype="<f4")
    assert vector.shape == (faces.EMBEDDING_DIM,)
    assert np.array_equal(vector, np.frombuffer(bytes(stored.embedding), dtype="<f4"))


def test_a_re_enrolment_job_appends_for_its_subjects(api, tenant_a, django_capture_on_commit_callbacks):
    client = api(tenant_a.admin)
    subject = client.post("/api/v1/subjects", {"name": "Eileen", "job_number": "E1"}, format="json").json()
    consent = {"method": "paper", "policy_version": 1}
    assert client.post(f"/api/v1/subjects/{subject['id']}/consents", consent, format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/api/v1/subjects/{subject['id']}/photos", {"image": SimpleUploadedFile("p.jpg", astronaut_jpeg())}
        )
    before = len(reasons(tenant_a.company))
    photos_reenrol(tenant_a.company.pk)
    assert reasons(tenant_a.company)[before:] == [(subject["id"], "photo_enrolled")]
