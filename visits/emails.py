"""The invitation e-mail: in the visit's language, times in the company's time zone, HTML
with a plain-text twin."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from visits.models import Visit


def visit_link_url(token: str) -> str:
    """The personal link as the visitor reaches it (`PORTAL_URL`: mails leave from jobs)."""
    return settings.PORTAL_URL.rstrip("/") + reverse("visit-page", args=[token])


def invitation_context(*, visit: Visit, token: str) -> dict:
    company = visit.company
    host = visit.host
    return {
        "visit": visit,
        "company": company,
        "address": company.address.strip(),
        "host_name": host.name if host is not None else "",
        "starts": timezone.localtime(visit.starts_at, company.zone),
        "ends": timezone.localtime(visit.ends_at, company.zone),
        "zone": company.time_zone,
        "link": visit_link_url(token),
    }


def invitation_send(*, visit: Visit, token: str) -> None:
    """Send the invitation for `visit` carrying the link of `token` (raises if the mail
    server refuses, so the caller's transaction and job retry)."""
    with translation.override(visit.language), timezone.override(visit.company.zone):
        context = invitation_context(visit=visit, token=token)
        subject = render_to_string("visits/email/invitation_subject.txt", context).strip()
        text = render_to_string("visits/email/invitation.txt", context)
        html = render_to_string("visits/email/invitation.html", context)
    message = EmailMultiAlternatives(subject, text, None, [visit.visitor_email])
    message.attach_alternative(html, "text/html")
    message.send()
