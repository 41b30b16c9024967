"""Reads on users, companies, the audit log and jobs, always inside one company."""

from django.db.models import QuerySet

from accounts.models import AuditLog, Company, Job


def audit_log_list(*, company: Company) -> QuerySet[AuditLog]:
    return AuditLog.objects.for_company(company).select_related("actor", "object_type")


def job_list(*, company: Company) -> QuerySet[Job]:
    return Job.objects.for_company(company).select_related("started_by")
