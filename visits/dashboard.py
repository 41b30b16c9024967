"""The live dashboard's "Expected today" panel: today's visitors (the company's day) with
their state, rendered on the server. The page refreshes it (`static/visits/expected.js`)
when the live stream shows a visitor recognised, and every minute, from `expected_panel`,
so it needs nothing from the dashboard's socket."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from subjects.models import Subject
from visits.models import Visit
from visits.reception import expected_on, id_from_query


def _context(request, company) -> dict:
    host_id = id_from_query(request.GET.get("host"))
    hosts = Subject.objects.for_company(company).filter(
        pk__in=Visit.objects.for_company(company).values("host_id"), archived=False
    )
    return {
        "company": company,
        "rows": expected_on(company=company, host_id=host_id),
        "hosts": hosts.order_by("name"),
        "host_id": host_id,
    }


def expected_panel_html(request, company) -> str:
    """The panel as the dashboard first shows it (`events.hooks.dashboard_panel_register`)."""
    return render_to_string("visits/dashboard_panel.html", _context(request, company), request=request)


@never_cache
@require_GET
@staff_member_required
def expected_panel(request):
    """The panel's HTML again, for the page to swap in."""
    company = request.user.company
    if company is None:
        raise Http404
    return render(request, "visits/dashboard_panel.html", _context(request, company))
