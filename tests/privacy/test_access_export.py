"""The right of access: one ZIP with everything held about a subject (record, photos, consent
history with signed forms, events with snapshots, attendance), times in the company's zone
with offsets, built page by page, audited; for owners and admins only, of their own company."""

from __future__ import annotations

import datetime
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditLog
from events.models import Event
from privacy import access
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes
from tests.subjects.test_consent_withdrawal import with_biometrics

pytestmark = pytest.mark.django_db


def archive_of(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_export_holds_the_record_photos_consents_events_snapshots_and_attendance(api, tenants, door_a, door_b):
    a, b = tenants
    subject, seen, *_ = with_biometrics(a, door_a)
    form = SimpleUploadedFile("form.jpg", jpeg_bytes((200, 300)))
    assert (
        api(a.admin)
        .post(
            f"/api/v1/subjects/{subject.pk}/consents/upload",
            {"method": "paper", "policy_version": "1", "evidence": form},
        )
        .status_code
        == 201
    )
    with_biometrics(b, door_b, name="Their person")

    response = api(a.owner).get(f"/api/v1/subjects/{subject.pk}/access-export")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"access-export-{subject.job_number}.zip" in response["Content-Disposition"]
    archive = archive_of(response)
    names = set(archive.namelist())
    record = json.loads(archive.read("subject.json"))
    assert record["name"] == "林志明" and record["job_number"] == subject.job_number
    assert len(record["photos"]) == 2 and all(p["file"] in names for p in record["photos"])
    assert all(archive.read(p["file"])[:2] == b"\xff\xd8" for p in record["photos"])  # JPEGs
    assert [c["method"] for c in record["consents"]] == ["paper", "paper"]  # the history: replaced, then in force
    assert record["consents"][0]["replaced_at"] is not None
    assert record["consents"][1]["evidence"] in names
    # Times in the company's zone (Asia/Taipei), with their offset.
    assert record["created_at"].endswith("+08:00")
    events = json.loads(archive.read("events.json"))
    assert [e["id"] for e in events] == sorted(seen)
    assert all(e["snapshot"] in names and e["happened_at"].endswith("+08:00") for e in events)
    attendance = json.loads(archive.read("attendance.json"))
    assert attendance and attendance[0]["passes"] == 2
    assert attendance[0]["date"] == timezone.localdate(timezone=a.company.zone).isoformat()
    assert "Company A" in archive.read("README.txt").decode()
    # Nothing of company B's person.
    assert "Their person" not in json.dumps(events) + archive.read("subject.json").decode()
    # Audited: who, which subject, when.
    entry = AuditLog.objects.for_company(a.company).get(action="subject.access_export")
    assert (entry.actor, entry.object_id) == (a.owner, str(subject.pk))
    assert entry.changes == {"photos": 2, "consents": 2, "events": 2, "snapshots": 2, "attendance_days": 1}


def test_another_company_gets_404_and_viewers_403(api, tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    assert api(b.owner).get(f"/api/v1/subjects/{subject.pk}/access-export").status_code == 404
    assert api(a.owner).get("/api/v1/subjects/999999/access-export").status_code == 404
    response = api(a.viewer).get(f"/api/v1/subjects/{subject.pk}/access-export")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert not AuditLog.objects.filter(action="subject.access_export").exists()


def test_thousands_of_events_are_read_page_by_page(tenant_a, monkeypatch):
    company = tenant_a.company
    subject = SubjectFactory(company=company)
    start = timezone.now() - datetime.timedelta(days=400)  # attendance over two report ranges
    Event.objects.bulk_create(
        Event(
            company=company, kind="recognized", subject=subject, subject_name=subject.name,
            subject_job_number=subject.job_number, subject_type=subject.subject_type,
            happened_at=start + datetime.timedelta(hours=4 * i), received_at=start, uid=f"u{i}",
        )
        for i in range(2400)
    )  # fmt: skip
    monkeypatch.setattr(access, "EVENTS_CHUNK", 500)
    out = io.BytesIO()
    with CaptureQueriesContext(connection) as queries:
        result = access.subject_access_export(company=company, actor=tenant_a.owner, subject=subject, out=out)
    assert result.events == 2400
    pages = [q for q in queries.captured_queries if "LIMIT 500" in q["sql"] and "events_event" in q["sql"]]
    assert len(pages) == 6  # 5 pages of events and the empty one that ends them
    events = json.loads(zipfile.ZipFile(out).read("events.json"))
    assert len(events) == 2400 and len({e["id"] for e in events}) == 2400
    attendance = json.loads(zipfile.ZipFile(out).read("attendance.json"))
    assert sum(day["passes"] for day in attendance) == 2400


def test_the_admin_page_offers_the_download_to_owners_and_admins(admin_client_for, tenants, door_a):
    a, b = tenants
    subject, *_ = with_biometrics(a, door_a)
    url = f"/admin/subjects/subject/{subject.pk}/access-export/"
    assert url in admin_client_for(a.admin).get(f"/admin/subjects/subject/{subject.pk}/change/").content.decode()
    assert url not in admin_client_for(a.viewer).get(f"/admin/subjects/subject/{subject.pk}/change/").content.decode()
    response = admin_client_for(a.admin).get(url)
    assert response.status_code == 200
    assert len(json.loads(archive_of(response).read("events.json"))) == 2
    assert admin_client_for(a.viewer).get(url).status_code == 403
    assert admin_client_for(b.owner).get(url).status_code == 404
    assert AuditLog.objects.for_company(a.company).filter(action="subject.access_export").count() == 1
