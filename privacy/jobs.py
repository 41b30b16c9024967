"""Jobs of the retention purge: the periodic run over every company, and an owner's
"purge now" for one company (recorded as a job, so its progress and end are shown)."""

from __future__ import annotations

from accounts.jobs import job_progress
from accounts.models import Company, User
from privacy.purge import purge_all, purge_company


def privacy_purge() -> dict[int, dict[str, int]]:
    """Periodic (`privacy.purge`): every company's data past its retention windows."""
    return purge_all()


def privacy_purge_company(company_id: int, actor_id: int | None = None) -> None:
    """An owner's "purge now" (`privacy.services.purge_start`)."""
    company = Company.objects.get(pk=company_id)
    actor = User.objects.for_company(company).filter(pk=actor_id).first() if actor_id else None
    result = purge_company(company=company, actor=actor, trigger="manual")
    job_progress(done=sum(result["removed"].values()))
