"""The visitor's page, reached through the personal link in their invitation: no account,
no admin. It only ever reads and writes the visit the link names and its visitor."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_http_methods

from visits.selectors import visit_get_by_token


def _private(response):
    # The token is in the address: no referrer carries it away, no cache or index keeps the page.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def link_invalid(request):
    """One answer for an unknown, expired, revoked or cancelled link."""
    return _private(render(request, "visits/link_invalid.html", status=404))


@require_http_methods(["GET", "POST"])
def visit_page(request, token: str):
    visit = visit_get_by_token(token=token)
    if visit is None:
        return link_invalid(request)
    with translation.override(visit.language):
        return _private(render(request, "visits/page.html", {"visit": visit}))
