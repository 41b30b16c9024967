"""Two purges of one company at once (PostgreSQL): nothing is removed or counted twice."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from events.models import EventDailyCount
from privacy.purge import company_lock, purge_company
from privacy.selectors import RULES, purge_preview
from tests.privacy.seed import seed_every_age
from tests.privacy.test_purge import EXPECTED
from tests.subjects.test_photos import files_in
from tests.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_runs_at_once_remove_everything_once(tenants, media_root):
    tenant_a, tenant_b = tenants
    now = timezone.now()
    seeded = seed_every_age(tenant_a.company, now)
    seed_every_age(tenant_b.company, now)

    def purge():
        return purge_company(company=tenant_a.company, now=now)

    results = run_together(purge, purge)
    assert not any(isinstance(result, Exception) for result in results), results
    removed = {rule: sum(result["removed"][rule] for result in results) for rule in RULES}
    assert removed == EXPECTED
    assert purge_preview(company=tenant_a.company, now=now) == dict.fromkeys(RULES, 0)
    (events, people) = EventDailyCount.objects.for_company(tenant_a.company).values_list("events", "people").get()
    assert (events, people) == (3, 2)
    on_disk = {p.as_posix() for p in files_in(media_root) if p.parts[1] == str(tenant_a.company.pk)}
    assert on_disk == seeded.keep
    assert purge_preview(company=tenant_b.company, now=now) == EXPECTED


def test_a_run_finding_the_company_locked_skips_it(tenant_a):
    seed_every_age(tenant_a.company, timezone.now())
    with company_lock(tenant_a.company.pk) as held:
        assert held
        (result,) = run_together(lambda: purge_company(company=tenant_a.company))
    assert result == {"skipped": True, "removed": dict.fromkeys(RULES, 0)}
    assert purge_preview(company=tenant_a.company, now=timezone.now()) == EXPECTED
    assert connection.vendor == "postgresql"
