"""Erasing a visitor: their visits go with them, and neither the audit log nor the admin's
history still names them through a visit (or through their own subject)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from accounts.models import AuditLog
from privacy.erasure import subject_erase
from subjects.models import Subject
from tests.visits.helpers import invite, run_at_commit
from visits import services
from visits.models import Visit


def admin_history(user, obj, flag):
    LogEntry.objects.log_actions(user.pk, [obj], flag)


def texts(company) -> list[str]:
    audit = AuditLog.objects.for_company(company).values_list("object_repr", "changes")
    return [f"{repr_} {changes}" for repr_, changes in audit]


def test_an_erased_visitor_is_no_longer_named_by_their_visits_in_any_log(tenants):
    tenant_a, tenant_b = tenants
    first, _ = invite(tenant_a, visitor_name="Mei Chen", visitor_email="mei@example.org")
    later, _ = invite(
        tenant_a,
        visitor_name="Mei Chen",
        visitor_email="mei@example.org",
        starts_at=first.starts_at + timedelta(days=2),
    )
    run_at_commit(services.visit_cancel, company=tenant_a.company, actor=tenant_a.admin, visit=later)
    other, _ = invite(tenant_b, visitor_name="Mei Chen", visitor_email="mei@example.org")
    stays, _ = invite(tenant_a, visitor_name="Lin Wei", visitor_email="lin@example.org")
    visitor = Subject.objects.for_company(tenant_a.company).get(pk=first.visitor_id)
    assert later.visitor_id == visitor.pk  # the same person came back
    for obj, flag in ((first, ADDITION), (later, CHANGE), (visitor, CHANGE), (other, ADDITION), (stays, ADDITION)):
        admin_history(tenant_a.admin if obj.company_id == tenant_a.company.pk else tenant_b.admin, obj, flag)
    assert any("Mei Chen" in text for text in texts(tenant_a.company))

    subject_erase(company=tenant_a.company, actor=tenant_a.owner, subject=visitor, reason="Asked to be forgotten")

    assert not Visit.objects.for_company(tenant_a.company).filter(pk__in=[first.pk, later.pk]).exists()
    named = [text for text in texts(tenant_a.company) if "Mei Chen" in text]
    assert named == []
    erased = f"Erased person #{visitor.pk}"
    visit_type = ContentType.objects.get_for_model(Visit)
    for visit in (first, later):
        entries = AuditLog.objects.for_company(tenant_a.company).filter(object_type=visit_type, object_id=str(visit.pk))
        assert entries.exists() and {entry.object_repr for entry in entries} == {erased}
    history = {(entry.content_type_id, entry.object_id): entry.object_repr for entry in LogEntry.objects.all()}
    subject_type = ContentType.objects.get_for_model(Subject)
    assert history[(visit_type.pk, str(first.pk))] == erased
    assert history[(visit_type.pk, str(later.pk))] == erased
    assert history[(subject_type.pk, str(visitor.pk))] == erased
    # Another visitor of the same company, and the other company's Mei Chen, keep their names.
    assert history[(visit_type.pk, str(stays.pk))].startswith("Lin Wei")
    assert history[(visit_type.pk, str(other.pk))].startswith("Mei Chen")
    assert any("Mei Chen" in text for text in texts(tenant_b.company))
