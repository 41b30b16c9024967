"""Background jobs of the subjects app. They take ids, load, and call the import functions
of `subjects.imports` or the enrolment service, reporting their progress on the job's record."""

from __future__ import annotations

import logging

from accounts.jobs import job_progress
from accounts.models import Company, User
from subjects import imports, services
from subjects.models import Photo

logger = logging.getLogger(__name__)

# How often a re-enrolment records its progress: often enough for the admin's progress
# bar, rarely enough that the writes cost nothing beside the face engine's work.
PROGRESS_EVERY = 10


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


def photo_enrol(company_id: int, photo_id: int) -> None:
    """Queued after commit for every photo added (subjects.signals)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is not None:  # a company deleted meanwhile took its photos along
        services.photo_enrol(company=company, photo_id=photo_id)


def photos_reenrol(company_id: int) -> None:
    """Enrol every photo of the company again (after a threshold or model change).

    A photo that fails (its file unreadable) is counted in the job's `failed` and the job
    goes on; one that is rejected is not a failure, it has its reason.
    """
    company = Company.objects.get(pk=company_id)
    photo_ids = list(Photo.objects.for_company(company).order_by("pk").values_list("pk", flat=True))
    total, failed = len(photo_ids), 0
    job_progress(done=0, total=total, failed=0)
    for done, photo_id in enumerate(photo_ids, 1):
        try:
            services.photo_enrol(company=company, photo_id=photo_id)
        except Exception:
            logger.exception("re-enrolment of photo %s failed", photo_id)
            failed += 1
        if done % PROGRESS_EVERY == 0 or done == total:
            job_progress(done=done, total=total, failed=failed)
