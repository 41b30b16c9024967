"""Reads on users, companies and the audit log, always inside one company."""

from django.db.models import QuerySet

from accounts.models import AuditLog, Company


def audit_log_list(*, company: Company) -> QuerySet[AuditLog]:
    return AuditLog.objects.for_company(company).select_related("actor", "object_type")
