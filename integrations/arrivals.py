"""A visitor's host hears, by e-mail, that their visitor has arrived.

When a visitor is recognised within their visit window (an event of kind `recognized`: one
outside the window is `visitor_outside_window` and sends nothing), a job e-mails their host:
the visitor's name, where (the device and screen) and when, in the company's time zone and
the host's language. A visitor whom reception checks in by hand is announced the same way,
"checked in at reception" (`host_tell_checked_in`, called from `visits`, the app above).
Once per visit: a `VisitorArrival` row per visitor and window, under a unique constraint, is
written in the same transaction as the e-mail is sent, so a retried event, a second door,
reception after a door (or a door after reception), or two workers at once never send it
twice, and a failed send leaves no row (the job's retry tries again).

Hosts are employees, mostly without a login; each e-mail carries a signed link to the host's
own settings (`HostSettings`: on or off, and the language), which never expires and works only
for that host.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Company, User
from events.models import Event, EventKind
from integrations.models import HostSettings, VisitorArrival
from kangaroo.jobs import enqueue
from subjects.models import Subject, SubjectType

logger = logging.getLogger(__name__)

SETTINGS_SALT = "integrations.host-settings"


def queue_visitor_arrivals(sender, *, company, events: Sequence[Event], **kwargs) -> None:
    """The `events_recorded` listener: one job per batch for its visitors' recognitions."""
    from integrations import jobs

    ids = [
        event.pk
        for event in events
        if event.kind == EventKind.RECOGNIZED and event.subject_type == SubjectType.VISITOR and event.subject_id
    ]
    if ids:
        with transaction.atomic():
            enqueue(jobs.visitor_arrivals_notify, company.pk, ids)


def window_key(start: datetime | None, end: datetime | None) -> str:
    """A visit as the arrival record names it: its window, in UTC, so that a door's
    recognition (the visitor's window at the doors) and reception's check-in (the visit's own
    window) name the same visit alike."""
    start_text = start.astimezone(UTC).isoformat() if start else ""
    end_text = end.astimezone(UTC).isoformat() if end else ""
    return f"{start_text}/{end_text}"


def visit_key(visitor: Subject) -> str:
    return window_key(visitor.visit_start, visitor.visit_end)


def host_settings_token(host: Subject) -> str:
    # Without a timestamp: the link in an old e-mail keeps working, and is the same in each.
    return signing.Signer(salt=SETTINGS_SALT).sign_object({"c": host.company_id, "h": host.pk}, compress=True)


def host_for_token(token: str) -> Subject | None:
    try:
        claim = signing.Signer(salt=SETTINGS_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(claim, dict):
        return None
    return Subject.objects.for_company(claim.get("c")).filter(pk=claim.get("h")).first()


def host_settings_of(host: Subject) -> HostSettings:
    found = HostSettings.objects.for_company(host.company_id).filter(host=host).first()
    return found or HostSettings(company_id=host.company_id, host=host)


def host_language(host: Subject, preference: HostSettings) -> str:
    """The host's own choice, else their user account's language (same e-mail), else the portal's."""
    if preference.language:
        return preference.language
    user = (
        User.objects.for_company(host.company_id)
        .filter(email__iexact=host.email, is_active=True)
        .exclude(language="")
        .first()
        if host.email
        else None
    )
    return user.language if user is not None else settings.LANGUAGE_CODE


@transaction.atomic
def host_settings_save(*, host: Subject, arrival_emails: bool, language: str) -> HostSettings:
    """A host changes their own settings (through the signed link)."""
    preference = host_settings_of(host)
    preference.arrival_emails, preference.language = arrival_emails, language
    preference.full_clean(exclude=["company", "host"])
    preference.save()
    return preference


def visitor_arrivals_notify(*, company: Company, event_ids: list[int]) -> int:
    """E-mail the hosts of the visitors these events recognised, once per visit; returns how
    many e-mails were sent."""
    events = (
        Event.objects.for_company(company)
        .filter(pk__in=event_ids, kind=EventKind.RECOGNIZED, subject__subject_type=SubjectType.VISITOR)
        .select_related("subject__host", "screen")
        .order_by("happened_at", "id")
    )
    sent = 0
    for event in events:
        sent += _notify_one(company, event)
    return sent


def _notify_one(company: Company, event: Event) -> int:
    visitor = event.subject
    host = visitor.host if visitor is not None else None
    if host is None or not host.email or host.archived:
        return 0
    if visitor.visit_state(event.happened_at) not in (None, "current"):
        return 0  # corrected or re-windowed since: not within this visit
    place = event.screen.location if event.screen and event.screen.location else event.device_name
    return _tell_once(
        company, visitor, host, visit=visit_key(visitor), event=event, when=event.happened_at, place=place,
        purpose=visitor.purpose,
    )  # fmt: skip


def host_tell_checked_in(
    *,
    company: Company,
    visitor: Subject,
    host: Subject | None,
    window: tuple[datetime, datetime],
    at: datetime,
    purpose: str,
) -> int:
    """E-mail `host` that reception checked `visitor` in by hand at `at`, for the visit of
    `window`; returns 1 if sent. The same once-per-visit record as a door's recognition: a
    host told by the door is not told again by reception, nor the other way round."""
    if host is None or not host.email or host.archived or host.company_id != company.pk:
        return 0
    return _tell_once(
        company, visitor, host, visit=window_key(*window), event=None, when=at, place=None, purpose=purpose
    )


def _tell_once(
    company: Company, visitor: Subject, host: Subject, *, visit: str, event: Event | None, when, place, purpose: str
) -> int:
    preference = host_settings_of(host)
    if not preference.arrival_emails:
        return 0
    try:
        with transaction.atomic():
            VisitorArrival.objects.create(
                company=company, visitor=visitor, visit=visit, event=event, host_email=host.email
            )
            _send(company, visitor, host, preference, when=when, place=place, purpose=purpose)
    except IntegrityError:
        return 0  # this visit's host has been told already
    return 1


def _send(company: Company, visitor: Subject, host: Subject, preference: HostSettings, *, when, place, purpose) -> None:
    """`place` is where a door saw the visitor; None when reception checked them in."""
    language = host_language(host, preference)
    link = settings.PORTAL_URL.rstrip("/") + reverse("host-settings", args=[host_settings_token(host)])
    with translation.override(language), timezone.override(company.zone):
        context = {
            "company": company,
            "visitor": visitor,
            "host": host,
            "place": place,
            "by_reception": place is None,
            "purpose": purpose,
            "when": timezone.localtime(when),
            "settings_url": link,
        }
        subject = render_to_string("integrations/email/visitor_arrived_subject.txt", context).strip()
        body = render_to_string("integrations/email/visitor_arrived.txt", context)
    send_mail(subject, body, None, [host.email])
