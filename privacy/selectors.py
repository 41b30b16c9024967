"""What is past its retention window: the one definition the purge deletes by and the
preview counts by, so what the admin announces is what the next run removes.

Each rule is a queryset of one company's rows, computed for one moment `now`, from the
company's windows (`accounts.models.Company.retention_*_days`):

- `visitor_photos`, `visitor_snapshots`: a visitor's photos (with their embeddings) and the
  snapshots of their events, once their visit ended more than `retention_visitor_days` ago.
- `stranger_snapshots`, `unknown_people`: the snapshot of a stranger event, and an unknown
  person with their kept snapshots, last seen more than `retention_stranger_days` ago.
- `inactive_photos`, `inactive_snapshots`: the same of any other subject not seen for
  `retention_inactive_days`: no event since, no sighting remembered from deleted events
  (`privacy.models.SubjectLastSeen`), enrolled before, and photos uploaded before.
- `events`: the events of every local day (company time zone) that ended more than
  `retention_event_days` ago; whole days, so each day is counted once for attendance totals.
- `audit_entries`: audit log entries older than `retention_audit_days`.
- `consent_evidence`: the signed form of a consent whose subject withdrew (that consent,
  or a later one) more than `retention_audit_days` ago. A form is the proof that what was
  collected under it was collected lawfully, so it outlives those biometrics: withdrawal
  deletes them at once, the form stays as long as the audit log keeps the record of that
  time. A consent in force, or replaced by a later one the person has not withdrawn, keeps
  its form while the subject exists (it still covers photos taken under it). The consent
  row stays (when, how, which policy), only the file goes. Deleting or erasing the subject
  deletes the forms with it (see the README's privacy section).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditLog, Company
from events.attendance import local_midnight
from events.models import Event, EventKind, UnknownPerson
from privacy.models import SubjectLastSeen
from subjects.models import Consent, Photo, Subject, SubjectType

# In the order the purge runs them. The labels name the window they follow.
RULES = {
    "visitor_photos": _("Visitor photos and faces, after the visit"),
    "visitor_snapshots": _("Visitors' event snapshots, after the visit"),
    "stranger_snapshots": _("Stranger snapshots"),
    "unknown_people": _("Unknown people and their snapshots"),
    "inactive_photos": _("Photos and faces of subjects not seen"),
    "inactive_snapshots": _("Event snapshots of subjects not seen"),
    "events": _("Events (kept as anonymous daily counts)"),
    "audit_entries": _("Audit log entries"),
    "consent_evidence": _("Signed consent forms, after withdrawal"),
}
# Which company window each rule follows.
RULE_WINDOWS = {
    "visitor_photos": "retention_visitor_days",
    "visitor_snapshots": "retention_visitor_days",
    "stranger_snapshots": "retention_stranger_days",
    "unknown_people": "retention_stranger_days",
    "inactive_photos": "retention_inactive_days",
    "inactive_snapshots": "retention_inactive_days",
    "events": "retention_event_days",
    "audit_entries": "retention_audit_days",
    "consent_evidence": "retention_audit_days",
}


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these moments are past their window."""

    visitor: datetime.datetime
    stranger: datetime.datetime
    inactive: datetime.datetime
    events: datetime.datetime
    audit: datetime.datetime


def purge_cutoffs(*, company: Company, now: datetime.datetime) -> Cutoffs:
    days = datetime.timedelta
    zone = company.zone
    first_kept_day = now.astimezone(zone).date() - days(days=company.retention_event_days)
    return Cutoffs(
        visitor=now - days(days=company.retention_visitor_days),
        stranger=now - days(days=company.retention_stranger_days),
        inactive=now - days(days=company.retention_inactive_days),
        events=local_midnight(first_kept_day, zone),
        audit=now - days(days=company.retention_audit_days),
    )


def past_visitors(*, company: Company, cutoffs: Cutoffs) -> QuerySet[Subject]:
    return Subject.objects.for_company(company).filter(subject_type=SubjectType.VISITOR, visit_end__lt=cutoffs.visitor)


def inactive_subjects(*, company: Company, cutoffs: Cutoffs) -> QuerySet[Subject]:
    since = cutoffs.inactive
    recent_events = Event.objects.for_company(company).filter(subject=OuterRef("pk"), happened_at__gte=since)
    remembered = SubjectLastSeen.objects.for_company(company).filter(subject=OuterRef("pk"), at__gte=since)
    return (
        Subject.objects.for_company(company)
        .filter(created_at__lt=since)
        .exclude(Exists(recent_events))
        .exclude(Exists(remembered))
    )


def _snapshots_of(company: Company, subjects: QuerySet[Subject]) -> QuerySet[Event]:
    return Event.objects.for_company(company).filter(subject__in=subjects).exclude(snapshot="")


def purge_candidates(*, company: Company, now: datetime.datetime) -> dict[str, QuerySet]:
    """Per rule of `RULES`, the company's rows past their window at `now`."""
    cutoffs = purge_cutoffs(company=company, now=now)
    visitors = past_visitors(company=company, cutoffs=cutoffs)
    # A visitor long gone follows the visitor window only, so no row is counted twice.
    inactive = inactive_subjects(company=company, cutoffs=cutoffs).exclude(pk__in=visitors.values("pk"))
    return {
        "visitor_photos": Photo.objects.for_company(company).filter(subject__in=visitors),
        "visitor_snapshots": _snapshots_of(company, visitors),
        "stranger_snapshots": Event.objects.for_company(company)
        .filter(kind=EventKind.STRANGER, happened_at__lt=cutoffs.stranger)
        .exclude(snapshot=""),
        "unknown_people": UnknownPerson.objects.for_company(company).filter(last_seen_at__lt=cutoffs.stranger),
        "inactive_photos": Photo.objects.for_company(company).filter(
            subject__in=inactive, created_at__lt=cutoffs.inactive
        ),
        "inactive_snapshots": _snapshots_of(company, inactive),
        "events": Event.objects.for_company(company).filter(happened_at__lt=cutoffs.events),
        "audit_entries": AuditLog.objects.for_company(company).filter(created_at__lt=cutoffs.audit),
        "consent_evidence": withdrawn_evidence(company=company, cutoffs=cutoffs),
    }


def withdrawn_evidence(*, company: Company, cutoffs: Cutoffs) -> QuerySet[Consent]:
    """Consents with a signed form whose subject withdrew, at or after the consent was
    recorded, before the audit cutoff (so every biometric it covered is long gone)."""
    withdrawal = Consent.objects.for_company(company).filter(
        subject=OuterRef("subject"), withdrawn_at__lt=cutoffs.audit, withdrawn_at__gte=OuterRef("created_at")
    )
    return Consent.objects.for_company(company).exclude(evidence="").filter(Exists(withdrawal))


def purge_preview(*, company: Company, now: datetime.datetime) -> dict[str, int]:
    """How many rows each rule would remove if the purge ran at `now`."""
    return {rule: queryset.count() for rule, queryset in purge_candidates(company=company, now=now).items()}


def purge_last_run(*, company: Company) -> AuditLog | None:
    """The audit entry of the company's latest purge that removed anything or was asked for."""
    return AuditLog.objects.for_company(company).filter(action=PURGE_ACTION).order_by("-created_at", "-id").first()


PURGE_ACTION = "privacy.purge"
