"""The admin home's summary of the day: who arrived, which devices are offline, which boxes
lag behind the gallery, which photos were rejected. A tag, so only the home page pays for
its queries."""

from __future__ import annotations

from django import template

from devices.models import Status
from events import selectors
from subjects.models import Photo, PhotoStatus

register = template.Library()


@register.simple_tag(takes_context=True)
def company_summary(context) -> dict | None:
    """For a company's user, today's figures (a query per device kind, one for the lagging
    boxes and two more); None for platform staff, who see every company."""
    request = context.get("request")
    company = getattr(getattr(request, "user", None), "company", None)
    if company is None:
        return None
    devices = selectors.device_counts(company=company)
    return {
        "arrived_today": len(selectors.arrived_today(company=company, screen_ids=None)),
        "devices_offline": devices.get(Status.OFFLINE.value, 0),
        "boxes_lagging": devices.get("lagging", 0),
        "devices_reported": sum(count for state, count in devices.items() if state != Status.NEVER_SEEN.value),
        "photos_rejected": Photo.objects.for_company(company).filter(status=PhotoStatus.REJECTED).count(),
    }
