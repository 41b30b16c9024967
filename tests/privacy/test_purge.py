"""The retention purge: every kind of data at every age, file by file; two companies with
different windows, neither touching the other; idempotent; the run audited with counts only."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.models import AuditLog
from events.attendance import attendance_days
from events.models import EventDailyCount, EventKind
from privacy.models import SubjectLastSeen
from privacy.purge import purge_company
from privacy.selectors import RULES, purge_preview
from subjects.models import GalleryChange, SubjectType
from tests.devices.test_gallery_feed import sync
from tests.privacy.seed import remaining, seed_every_age
from tests.subjects.test_photos import files_in

pytestmark = pytest.mark.django_db

EXPECTED = {
    "visitor_photos": 1,
    "visitor_snapshots": 1,
    "stranger_snapshots": 1,
    "unknown_people": 1,
    "inactive_photos": 1,
    "inactive_snapshots": 0,
    "events": 3,
    "audit_entries": 1,
    "consent_evidence": 2,
}


def windows(company, **days):
    for name, value in days.items():
        setattr(company, f"retention_{name}_days", value)
    company.save()
    return company


def disk(media_root, company) -> set[str]:
    return {path.as_posix() for path in files_in(media_root) if path.parts[1] == str(company.pk)}


def test_every_kind_at_every_age_file_by_file(tenants, media_root, box_for, django_capture_on_commit_callbacks):
    tenant_a, tenant_b = tenants
    company_a = windows(tenant_a.company, visitor=10, stranger=3, event=60, inactive=200, audit=90)
    company_b = tenant_b.company  # the defaults: 30, 7, 365, 1095, 730
    now = timezone.now()
    a = seed_every_age(company_a, now)
    b = seed_every_age(company_b, now)
    before_b, files_b = remaining(b), disk(media_root, company_b)
    assert disk(media_root, company_a) == a.keep | a.gone

    # The preview counts what the purge then removes, by the same selectors.
    assert purge_preview(company=company_a, now=now) == EXPECTED
    purged_before = {rule: REGISTRY.get_sample_value("kangaroo_purged_total", {"rule": rule}) or 0 for rule in RULES}
    with django_capture_on_commit_callbacks(execute=True):
        result = purge_company(company=company_a, now=now)
    assert result == {"skipped": False, "removed": EXPECTED}
    # /metrics counts the rows by rule (kangaroo_purged_total).
    purged = {rule: REGISTRY.get_sample_value("kangaroo_purged_total", {"rule": rule}) or 0 for rule in RULES}
    assert {rule: purged[rule] - purged_before[rule] for rule in RULES} == EXPECTED

    # File by file: what was inside its window is on disk, nothing else of company A.
    assert disk(media_root, company_a) == a.keep
    left = remaining(a)
    assert left["photos"] == {
        a.photos[name].pk
        for name in ["visitor-inside", "employee-active", "employee-unseen-new-photo", "employee-regular"]
    }
    assert left["events"] == {event.pk for name, event in a.events.items() if not name.startswith("event-outside")}
    assert {a.events["visitor-outside"].pk, a.events["stranger-outside"].pk}.isdisjoint(left["snapshots"])
    assert left["people"] == {a.people["stranger-inside"].pk}
    assert left["audit"] == {"test.audit-inside"}
    # The forms of consents withdrawn within the audit window, given again, or in force stay;
    # every consent row stays in its subject's history.
    assert left["evidence"] == {
        a.consents[name].evidence.name
        for name in ["consent-given-again", "consent-withdrawn-inside", "consent-in-force"]
    }
    assert {consent.pk for consent in a.consents.values()} <= left["consents"]
    # Every subject is still on file: only their biometric data went.
    assert set(a.subjects) == {s.name for s in type(a.subjects["employee-active"]).objects.for_company(company_a)}

    # Company B, with longer windows, was not touched at all.
    assert remaining(b) == before_b
    assert disk(media_root, company_b) == files_b

    # The purged day is kept as anonymous counts: 3 recognised passes of 2 people.
    day = (now.astimezone(company_a.zone).date()) - datetime.timedelta(days=61)
    counts = list(
        EventDailyCount.objects.for_company(company_a).values_list("day", "kind", "subject_type", "events", "people")
    )
    assert counts == [(day, EventKind.RECOGNIZED, SubjectType.EMPLOYEE, 3, 2)]
    # `regular`'s last pass is remembered, so their photo did not go as "not seen".
    remembered = SubjectLastSeen.objects.for_company(company_a).values_list("subject_id", flat=True)
    assert set(remembered) == {a.subjects["employee-regular"].pk, a.subjects["employee-active"].pk}

    # The boxes hear it: the visitor whose visit ended long ago and the unseen photo are gone
    # from the feed; the subjects are still there.
    held, _, _ = sync(box_for(tenant_a))
    enrolled = [s for name, s in a.subjects.items() if not name.startswith("consent-")]  # the rest had no photo
    faces = {held[s.pk]["name"]: sorted(face["photo_id"] for face in held[s.pk]["faces"]) for s in enrolled}
    assert faces == {
        "visitor-inside": [a.photos["visitor-inside"].pk],
        "visitor-outside": [],
        "employee-active": [a.photos["employee-active"].pk],
        "employee-unseen": [a.photos["employee-unseen-new-photo"].pk],
        "employee-regular": [a.photos["employee-regular"].pk],
    }

    # One audit entry, with counts and windows and nothing about anyone.
    entry = AuditLog.objects.for_company(company_a).get(action="privacy.purge")
    assert entry.changes["removed"] == EXPECTED
    assert entry.changes["windows"]["retention_event_days"] == 60
    assert entry.changes["trigger"] == "schedule"
    assert entry.object_repr == ""

    # Idempotent: a second run removes nothing, and leaves no audit entry for nothing.
    gallery = GalleryChange.objects.for_company(company_a).count()
    with django_capture_on_commit_callbacks(execute=True):
        again = purge_company(company=company_a, now=now)
    assert again["removed"] == dict.fromkeys(RULES, 0)
    assert AuditLog.objects.for_company(company_a).filter(action="privacy.purge").count() == 1
    assert GalleryChange.objects.for_company(company_a).count() == gallery
    assert disk(media_root, company_a) == a.keep

    # Company B, purged in turn by its own windows, loses exactly its own "outside" rows.
    with django_capture_on_commit_callbacks(execute=True):
        assert purge_company(company=company_b, now=now)["removed"] == EXPECTED
    assert disk(media_root, company_b) == b.keep
    assert disk(media_root, company_a) == a.keep


def test_batches_are_small_and_each_commits_on_its_own(tenant_a, media_root, monkeypatch):
    from privacy import purge
    from tests.factories import EventFactory

    monkeypatch.setattr(purge, "BATCH", 2)
    company = tenant_a.company
    old = timezone.now() - datetime.timedelta(days=company.retention_event_days + 2)
    EventFactory.create_batch(5, company=company, kind=EventKind.STRANGER, subject=None, happened_at=old)
    assert purge_company(company=company)["removed"]["events"] == 5
    (count,) = EventDailyCount.objects.for_company(company).values_list("events", flat=True)
    assert count == 5


def test_attendance_keeps_counting_purged_days(tenant_a):
    """Attendance rows of purged days are gone (they named people); the totals stay."""
    from events.attendance import purged_day_totals
    from tests.factories import EventFactory, SubjectFactory

    company = tenant_a.company
    mei = SubjectFactory(company=company)
    day = timezone.now().astimezone(company.zone).date() - datetime.timedelta(days=company.retention_event_days + 3)
    at = datetime.datetime.combine(day, datetime.time(9, 0), company.zone)
    EventFactory.create_batch(2, company=company, subject=mei, happened_at=at)
    assert len(attendance_days(company=company, date_from=day, date_to=day)) == 1
    purge_company(company=company)
    assert len(attendance_days(company=company, date_from=day, date_to=day)) == 0
    totals = purged_day_totals(company=company, date_from=day, date_to=day)
    assert [(row.day, row.subject_type, row.people, row.passes) for row in totals] == [
        (day, SubjectType.EMPLOYEE, 1, 2)
    ]


def test_the_periodic_runner_purges_every_company_by_its_own_windows(
    tenants, media_root, django_capture_on_commit_callbacks
):
    from kangaroo.periodic import run_due
    from kangaroo.schedule import periodic_tasks

    tenant_a, tenant_b = tenants
    windows(tenant_a.company, visitor=5, stranger=2, event=30, inactive=100, audit=60)
    tenant_b.company.is_active = False  # a deactivated company's data is past its window too
    tenant_b.company.save()
    now = timezone.now()
    seeded = [seed_every_age(tenant.company, now) for tenant in tenants]
    (task,) = [task for task in periodic_tasks() if task.name == "privacy.purge"]
    with django_capture_on_commit_callbacks(execute=True):
        (run,) = run_due([task])
    assert run.error == ""
    assert run.result == {tenant_a.company.pk: EXPECTED, tenant_b.company.pk: EXPECTED}
    for tenant, seed in zip(tenants, seeded, strict=True):
        assert purge_preview(company=tenant.company, now=timezone.now()) == dict.fromkeys(RULES, 0)
        assert disk(media_root, tenant.company) == seed.keep
