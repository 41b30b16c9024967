"""An erased visitor's visits go with them (the foreign key cascades), but the logs named
each visit by its visitor ("Mei Chen 2026-11-28 10:00"): the audit log's visit entries and
the admin's own history. Once the person is erased, those entries keep what happened to the
visit, and name the person as every other erased entry does."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from accounts.models import AuditLog, Company
from privacy.erasure import erased_repr
from visits.models import Visit


def visits_scrub_erased(sender, *, company: Company, ids: Sequence[int], **kwargs) -> None:
    """On `subject_erased`, inside the erasure's transaction. A visit's entries are found
    through its `visit.create` entry, which records the visitor's id."""
    visit_type = ContentType.objects.get_for_model(Visit)
    entries = AuditLog.objects.for_company(company).filter(object_type=visit_type)
    for pk in ids:
        visit_ids = list(entries.filter(action="visit.create", changes__visitor=pk).values_list("object_id", flat=True))
        if not visit_ids:
            continue
        entries.filter(object_id__in=visit_ids).update(object_repr=erased_repr(pk))
        LogEntry.objects.filter(  # tenant: the ids of this company's visits, found above
            content_type=visit_type, object_id__in=visit_ids
        ).update(object_repr=erased_repr(pk))
