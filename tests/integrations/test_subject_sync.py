"""An HR system keeps the subjects in step: upserts by job number in batches, each item
answered on its own, then archives those it no longer lists."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditLog
from integrations import api_keys
from integrations.models import WebhookDelivery
from subjects.domain_signals import subject_changed
from subjects.models import GalleryChange, Subject
from tests.factories import DepartmentFactory, SubjectFactory, WebhookEndpointFactory
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


def test_an_upserts_queries_do_not_grow_with_its_items(tenant_a, hr):
    """A sync of 100 items cost 1,700 queries, 17 per item, and took seconds under load:
    each item read, locked, audited, logged in the gallery and rendered for webhooks alone."""
    company = tenant_a.company
    department = DepartmentFactory(company=company)
    host = SubjectFactory(company=company, job_number="HOST", consent=False)
    WebhookEndpointFactory(company=company, event_types=["subject.created", "subject.updated"])

    def count_for(total: int) -> int:
        # A third each: new (a visitor with a host and an e-mail), changed (a department), unchanged.
        prefix = f"T{total}-"
        for n in range(total // 3, total):
            SubjectFactory(company=company, job_number=f"{prefix}{n}", name="Same", consent=False)
        items = []
        for n in range(total):
            number = f"{prefix}{n}"
            if n < total // 3:
                items.append({
                    "job_number": number, "name": "New", "email": f"{number}@example.com", "subject_type": "visitor",
                    "host": host.pk,
                })  # fmt: skip
            elif n < 2 * total // 3:
                items.append({"job_number": number, "name": "Same", "department": department.pk})
            else:
                items.append({"job_number": number, "name": "Same"})
        with CaptureQueriesContext(connection) as queries:
            answer = hr.post("/api/v1/subjects/upsert", {"subjects": items}, format="json")
        assert answer.status_code == 200, answer.content
        statuses = [result["status"] for result in answer.json()["results"]]
        assert statuses.count("created") == total // 3 and statuses.count("unchanged") == total - 2 * (total // 3)
        return len([query for query in queries if "SAVEPOINT" not in query["sql"]])

    # Once before: the key's first use is recorded, the gallery's counter created.
    count_for(3)
    # The key; the department and the host named; the subjects named (locked); the holders of
    # the e-mails named; UPDATE of the changed subjects (one executemany); INSERT of the new
    # ones; the audit entries (COPY on PostgreSQL, unseen here; else one INSERT); the new
    # subjects' gallery rows (counter, rows, counter); then for the created and the updated
    # each: the webhook endpoints, the subjects rendered, their deliveries.
    expected = 7 + (connection.vendor != "postgresql") + 3 + 2 * 3
    assert count_for(10) == count_for(100) == expected


def test_the_items_of_a_batch_see_the_ones_before_them(tenant_a, hr):
    """Items are checked as if those before them were written: a job number named twice is
    created then changed, an e-mail given up by one subject may be taken by the next item,
    and one taken by an earlier item is refused."""
    moving = SubjectFactory(company=tenant_a.company, job_number="E1", email="old@example.com")
    items = [
        {"job_number": "E9", "name": "New"},
        {"job_number": "E9", "name": "New", "title": "Engineer"},
        {"job_number": "E1", "email": "new@example.com"},
        {"job_number": "E2", "name": "Takes the old one", "email": "OLD@example.com"},
        {"job_number": "E3", "name": "Too late", "email": "New@Example.com"},
    ]
    sent = []
    receiver = lambda sender, **kwargs: sent.append((kwargs["action"], len(kwargs["ids"])))  # noqa: E731
    subject_changed.connect(receiver)
    try:
        results = hr.post("/api/v1/subjects/upsert", {"subjects": items}, format="json").json()["results"]
    finally:
        subject_changed.disconnect(receiver)
    assert [r["status"] for r in results] == ["created", "updated", "updated", "created", "error"]
    assert results[4]["error"]["code"] == "subject_email_taken" and "email" in results[4]["error"]["fields"]
    assert results[0]["id"] == results[1]["id"]
    subjects = {s.job_number: s for s in Subject.objects.for_company(tenant_a.company)}
    assert subjects["E9"].title == "Engineer" and subjects["E1"].email == "new@example.com"
    assert subjects["E2"].email == "OLD@example.com" and "E3" not in subjects
    # One entry per change, as single changes are audited.
    entries = AuditLog.objects.for_company(tenant_a.company).filter(actor_repr="api-key:HR system")
    assert sorted(entries.values_list("action", "object_id")) == sorted([
        ("subject.create", str(subjects["E9"].pk)),
        ("subject.update", str(subjects["E9"].pk)),
        ("subject.update", str(moving.pk)),
        ("subject.create", str(subjects["E2"].pk)),
    ])  # fmt: skip
    assert entries.get(action="subject.update", object_id=str(moving.pk)).changes == {
        "email": ["old@example.com", "new@example.com"]
    }
    # Announced once per kind of change, each with all its subjects.
    assert sent == [("created", 2), ("updated", 1), ("updated", 1)]


def test_a_batch_that_fails_to_be_written_leaves_nothing_behind(tenant_a, hr):
    SubjectFactory(company=tenant_a.company, job_number="E1", name="Old name")
    WebhookEndpointFactory(company=tenant_a.company, event_types=["subject.created", "subject.updated"])
    items = [{"job_number": "E1", "name": "New name"}, {"job_number": "E2", "name": "Someone"}]
    with mock.patch("subjects.services.audit_record_many", side_effect=RuntimeError("disk full")):
        answer = hr.post("/api/v1/subjects/upsert", {"subjects": items}, format="json")
    assert answer.status_code == 500
    assert list(Subject.objects.for_company(tenant_a.company).values_list("job_number", "name")) == [("E1", "Old name")]
    assert not GalleryChange.objects.for_company(tenant_a.company).exists()
    assert not WebhookDelivery.objects.for_company(tenant_a.company).exists()
