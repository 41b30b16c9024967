from __future__ import annotations

from django.utils.translation import gettext_lazy

from accounts.jobs import job_start
from accounts.models import Company, Job, User, job_kind_register

PURGE_KIND = job_kind_register("privacy.purge", gettext_lazy("Purge of data past its retention"))


def purge_start(*, company: Company, actor: User) -> Job:
    """An owner asks for the company's purge now: queued as a job (one at a time per company:
    another while it is unfinished raises JobAlreadyQueued, 409 `job_already_queued`). The
    run's audit entry tells what it removed."""
    return job_start(
        company=company,
        actor=actor,
        kind=PURGE_KIND,
        key=PURGE_KIND,
        func="privacy.jobs.privacy_purge_company",
        args=[company.pk, actor.pk],
    )
