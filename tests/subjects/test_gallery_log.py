"""The gallery change log: every change a box must know appends a row, in the change's
transaction, numbered without gaps per company (subjects/gallery.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subjects import gallery, services
from subjects.domain_signals import announce_photos_enrolled
from subjects.gallery import gallery_append, gallery_compact
from subjects.models import GalleryChange, GalleryCounter, GalleryOp, Subject, SubjectType
from subjects.selectors import gallery_sequence
from tests.factories import PhotoFactory, SubjectFactory
from tests.subjects.test_domain_signals import ENTRY_POINTS, World, heard  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def log(company) -> list[tuple[int, int, str, str]]:
    rows = GalleryChange.objects.for_company(company).order_by("sequence")
    return list(rows.values_list("sequence", "subject_ref", "op", "reason"))


def changes(company) -> list[tuple[int, str, str]]:
    return [row[1:] for row in log(company)]


def expected_rows(announced) -> list[tuple[int, str, str]]:
    """What the log must hold after these announcements (see the list in subjects/gallery.py)."""
    rows = []
    for h in announced:
        if h.signal == "subject_changed" and h.action == "created":
            rows += [(pk, "upsert", "subject_created") for pk in h.ids]
        elif h.signal == "subject_changed" and h.action == "deleted":
            rows += [(pk, "delete", "subject_deleted") for pk in h.ids]
        elif h.signal == "subject_changed" and gallery.BOX_SUBJECT_FIELDS & set(h.fields):
            rows += [(pk, "upsert", "subject_updated") for pk in h.ids]
        elif h.signal == "photo_removed":
            rows += [(pk, "upsert", "photo_removed") for pk in h.subject_ids]
    return rows


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_every_entry_point_appends_what_a_box_must_know(entry_point, heard, api, client, tenant_a):  # noqa: F811
    client.force_login(tenant_a.admin)
    entry_point(World(company=tenant_a.company, api=api(tenant_a.admin), admin=client))
    by_company = {}
    for h in heard:
        by_company.setdefault(h.company, []).append(h)
    for company, announced in by_company.items():
        rows = log(company)
        assert sorted(row[1:] for row in rows) == sorted(expected_rows(announced))
        # Numbered 1, 2, 3... in the company's own sequence, the counter at the last one.
        assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
        assert gallery_sequence(company) == len(rows)


def test_a_rename_a_new_type_a_visit_window_and_archiving_each_append(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, subject_type=SubjectType.VISITOR, job_number="V1")
    client = api(tenant_a.admin)
    start = timezone.now().replace(microsecond=0)
    for change in (
        {"name": "New Name"},
        {"subject_type": "vip"},
        {"job_number": "VIP-7"},
        {"visit_start": start.isoformat(), "visit_end": (start + timedelta(hours=2)).isoformat()},
        {"archived": True},
        {"archived": False},
    ):
        assert client.patch(f"/api/v1/subjects/{subject.pk}", change, format="json").status_code == 200, change
    assert changes(tenant_a.company) == [(subject.pk, "upsert", "subject_updated")] * 6


def test_fields_the_box_does_not_hold_append_nothing(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    for change in ({"title": "Lead"}, {"phone": "0912"}, {"remark": "x"}, {"email": "a@example.com"}):
        assert client.patch(f"/api/v1/subjects/{subject.pk}", change, format="json").status_code == 200
    assert log(tenant_a.company) == []
    assert gallery_sequence(tenant_a.company.pk) == 0


def test_an_enrolled_photo_appends_a_change_of_its_subject(tenant_a):
    photo = PhotoFactory(company=tenant_a.company)
    with transaction.atomic():
        announce_photos_enrolled(company=tenant_a.company, photos=[(photo.pk, photo.subject_id)])
    assert changes(tenant_a.company) == [(photo.subject_id, "upsert", "photo_enrolled")]


def test_a_rolled_back_change_leaves_no_row_and_no_gap(tenant_a):
    with pytest.raises(ValueError), transaction.atomic():
        services.subject_create(company=tenant_a.company, actor=None, name="Mei", job_number="E1")
        raise ValueError("the request fails later")
    assert log(tenant_a.company) == []
    subject = services.subject_create(company=tenant_a.company, actor=None, name="Mei", job_number="E1")
    assert log(tenant_a.company)[0][:2] == (1, subject.pk)


def test_each_company_counts_on_its_own(tenants):
    a, b = tenants
    services.subject_create(company=a.company, actor=None, name="A1", job_number="E1")
    services.subject_create(company=a.company, actor=None, name="A2", job_number="E2")
    only = services.subject_create(company=b.company, actor=None, name="B1", job_number="E1")
    assert [row[0] for row in log(a.company)] == [1, 2]
    assert log(b.company) == [(1, only.pk, "upsert", "subject_created")]
    assert (gallery_sequence(a.company.pk), gallery_sequence(b.company.pk)) == (2, 1)


def test_a_bulk_append_costs_one_counter_write_and_one_insert_per_batch(tenant_a):
    ids = list(range(1, 4501))
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert gallery_append(company_id=tenant_a.company.pk, subject_ids=ids, reason="subject_created") == 4500
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    statements = [s for s in statements if s not in ("SAVEPOINT", "RELEASE")]
    fields = [f for f in GalleryChange._meta.concrete_fields if not f.primary_key]
    batch = min(2000, connection.ops.bulk_batch_size(fields, ids) or 2000)  # SQLite caps parameters
    inserts = -(-len(ids) // batch)
    # select the counter (none yet), insert it, select it locked, the rows in as few INSERTs
    # as the database allows, one update of the counter.
    assert statements == ["SELECT", "INSERT", "SELECT", *["INSERT"] * inserts, "UPDATE"]
    assert [row[0] for row in log(tenant_a.company)] == list(range(1, 4501))


def test_an_import_of_many_subjects_appends_them_all_in_one_counter_update(client, tenant_a):
    from tests.subjects.test_admin_import import confirm, csv_file, preview

    client.force_login(tenant_a.admin)
    rows = [[f"E{i}", f"Person {i}", "employee", "", "", "", ""] for i in range(300)]
    confirm(client, preview(client, csv_file(rows)))
    subjects = set(Subject.objects.for_company(tenant_a.company).values_list("pk", flat=True))
    assert {row[1] for row in log(tenant_a.company)} == subjects
    assert gallery_sequence(tenant_a.company.pk) == 300


def test_compaction_keeps_each_subjects_latest_row_and_drops_read_tombstones(tenant_a):
    company = tenant_a.company
    kept = services.subject_create(company=company, actor=None, name="Kept", job_number="E1")
    services.subject_update(company=company, actor=None, subject=kept, name="Kept Again")  # 2
    gone = services.subject_create(company=company, actor=None, name="Gone", job_number="E2")  # 3
    services.subject_delete(company=company, actor=None, subject=gone)  # 4
    late = services.subject_create(company=company, actor=None, name="Late", job_number="E3")  # 5
    services.subject_delete(company=company, actor=None, subject=late)  # 6
    result = gallery_compact(company_id=company.pk, oldest_cursor=4)
    assert result == {"folded": 3, "tombstones": 1, "compacted_through": 4}
    # Kept's latest row, and Late's tombstone that a box at 4 has not read yet.
    assert log(company) == [(2, kept.pk, "upsert", "subject_updated"), (6, late.pk, "delete", "subject_deleted")]
    assert gallery_sequence(company.pk) == 6
    # Old enough, a tombstone goes even if a box has not read it.
    later = timezone.now() + timedelta(days=31)
    assert gallery_compact(company_id=company.pk, oldest_cursor=4, now=later)["compacted_through"] == 6
    assert changes(company) == [(kept.pk, "upsert", "subject_updated")]
    assert GalleryCounter.objects.for_company(company).get().compacted_through == 6


def test_compaction_of_one_company_leaves_the_other_alone(tenants):
    a, b = tenants
    for company in (a.company, b.company):
        subject = services.subject_create(company=company, actor=None, name="X", job_number="E1")
        services.subject_delete(company=company, actor=None, subject=subject)
    gallery_compact(company_id=a.company.pk, oldest_cursor=None, now=timezone.now() + timedelta(days=31))
    assert log(a.company) == []
    assert len(log(b.company)) == 2
    assert GalleryChange.objects.for_company(b.company).filter(op=GalleryOp.DELETE).count() == 1
