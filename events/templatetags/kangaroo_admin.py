"""The admin home's summary of the day: who arrived, which devices are offline, which boxes
lag behind the gallery, which photos were rejected. A tag, so only the home page pays for
its queries."""

from __future__ import annotations

from django import template
from django.contrib.admin.utils import model_ngettext
from django.urls import reverse

from devices.models import DEVICE_MODELS, Status
from events import selectors
from subjects.models import Photo, PhotoStatus

register = template.Library()


@register.simple_tag(takes_context=True)
def company_summary(context) -> dict | None:
    """For a company's user, today's figures (a query per device kind, one for the lagging
    boxes and two more); None for platform staff, who see every company.

    The devices offline are counted over every kind, and each kind with some offline is
    listed with its own count and a link to its list filtered to the offline ones, so the
    figure and where it leads agree."""
    request = context.get("request")
    company = getattr(getattr(request, "user", None), "company", None)
    if company is None:
        return None
    offline_kinds = []
    for kind, counts in selectors.device_counts_by_kind(company=company).items():
        if counts[Status.OFFLINE]:
            opts = DEVICE_MODELS[kind]._meta
            offline_kinds.append(
                {
                    "count": counts[Status.OFFLINE],
                    "name": model_ngettext(opts, counts[Status.OFFLINE]),
                    "url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + "?status=offline",
                }
            )
    return {
        "arrived_today": len(selectors.arrived_today(company=company, screen_ids=None)),
        "devices_offline": sum(kind["count"] for kind in offline_kinds),
        "offline_kinds": offline_kinds,
        "boxes_lagging": selectors.lagging_box_count(company=company),
        "photos_rejected": Photo.objects.for_company(company).filter(status=PhotoStatus.REJECTED).count(),
    }
