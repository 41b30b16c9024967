"""Background jobs of the subjects app. They take ids, load, and call the import functions
of `subjects.imports`, reporting their progress on the job's record."""

from __future__ import annotations

from accounts.jobs import job_progress
from accounts.models import Company, User
from subjects import imports


def _load(company_id: int, user_id: int, name: str):
    company = Company.objects.get(pk=company_id)
    actor = User.objects.for_company(company).get(pk=user_id)
    pending = imports.pending_load(name)
    if pending is None or pending.company_id != company.pk:
        raise LookupError("the uploaded file has expired")
    return company, actor, pending


def _progress(done: int, total: int) -> None:
    job_progress(done=done, total=total)


def subject_import_preview(company_id: int, user_id: int, name: str) -> None:
    company, actor, pending = _load(company_id, user_id, name)
    report = imports.import_preview(company=company, actor=actor, pending=pending, progress=_progress)
    job_progress(done=len(report.rows), total=len(report.rows))


def subject_import_confirm(company_id: int, user_id: int, name: str) -> None:
    company, actor, pending = _load(company_id, user_id, name)
    imports.import_confirm(company=company, actor=actor, pending=pending, progress=_progress)
    report = imports.pending_report(pending)
    rows = len(report.rows) if report is not None else 0
    job_progress(done=rows, total=rows)
