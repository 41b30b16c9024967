"""The events app's jobs: they take ids, load, and call a service."""

from __future__ import annotations

from accounts.models import Company
from events.unknown_people import unknown_sightings_record


def unknown_sightings_job(company_id: int, event_ids: list[int]) -> None:
    """Cluster a batch's stranger events into unknown people (`events.unknown_people`)."""
    company = Company.objects.filter(pk=company_id).first()
    if company is not None:  # deleted since: nothing to do
        unknown_sightings_record(company=company, event_ids=event_ids)
