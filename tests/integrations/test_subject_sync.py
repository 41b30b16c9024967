"""An HR system keeps the subjects in step: upserts by job number in batches, each item
answered on its own, then archives those it no longer lists."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from integrations import api_keys
from subjects.models import Subject
from tests.factories import SubjectFactory
from tests.integrations.test_api_keys import key_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def hr(tenant_a):
    _, text = api_keys.api_key_create(
        company=tenant_a.company, actor=tenant_a.owner, name="HR system", scopes=["subjects:read", "subjects:write"]
    )
    return key_client(text)


def test_an_upsert_creates_updates_and_leaves_unchanged_each_answered(tenant_a, hr):
    SubjectFactory(company=tenant_a.company, job_number="E1", name="Old name")
    SubjectFactory(company=tenant_a.company, job_number="E2", name="Same", title="", archived=True)
    answer = hr.post(
        "/api/v1/subjects/upsert",
        {
            "subjects": [
                {"job_number": "E1", "name": "王大明"},
                {"job_number": "E2", "name": "Same"},
                {"job_number": "E3", "name": "新人", "title": "Intern"},
                {"job_number": "E4"},
                {"job_number": "E5", "name": 5},
                {"name": "No number"},
            ]
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["updated", "updated", "created", "error", "error", "error"]
    assert results[3]["error"]["code"] == "validation_error" and "name" in results[3]["error"]["fields"]
    assert "name" in results[4]["error"]["fields"]
    assert "job_number" in results[5]["error"]["fields"]
    subjects = {s.job_number: s for s in Subject.objects.for_company(tenant_a.company)}
    assert subjects["E1"].name == "王大明" and subjects["E3"].title == "Intern"
    assert subjects["E2"].archived is False  # listed again: restored
    again = hr.post("/api/v1/subjects/upsert", {"subjects": [{"job_number": "E1", "name": "王大明"}]}, format="json")
    assert again.json()["results"] == [{"index": 0, "job_number": "E1", "status": "unchanged", "id": subjects["E1"].pk}]
    assert AuditLog.objects.for_company(tenant_a.company).filter(actor_repr="api-key:HR system").count() == 3


def test_archive_missing_archives_only_unlisted_subjects_of_the_type(tenant_a, tenant_b, hr):
    keep = SubjectFactory(company=tenant_a.company, job_number="E1")
    gone = SubjectFactory(company=tenant_a.company, job_number="E2")
    visitor = SubjectFactory(company=tenant_a.company, job_number="V1", subject_type="visitor")
    theirs = SubjectFactory(company=tenant_b.company, job_number="E9")
    answer = hr.post("/api/v1/subjects/archive-missing", {"job_numbers": ["E1"]}, format="json")
    assert answer.status_code == 200 and answer.json() == {"archived": [gone.pk]}
    for subject, archived in ((keep, False), (gone, True), (visitor, False), (theirs, False)):
        subject.refresh_from_db()
        assert subject.archived is archived


def test_a_batch_is_limited_and_needs_the_write_scope(tenant_a):
    _, reader = api_keys.api_key_create(company=tenant_a.company, actor=None, name="Reader", scopes=["subjects:read"])
    assert (
        key_client(reader)
        .post("/api/v1/subjects/upsert", {"subjects": [{"job_number": "E1", "name": "x"}]}, format="json")
        .status_code
        == 403
    )
    _, writer = api_keys.api_key_create(company=tenant_a.company, actor=None, name="Writer", scopes=["subjects:write"])
    too_many = {"subjects": [{"job_number": f"E{n}", "name": "x"} for n in range(501)]}
    assert key_client(writer).post("/api/v1/subjects/upsert", too_many, format="json").status_code == 400
