"""Inviting visitors the way hosts do, reading the link out of the invitation, and a door's
recognitions posted the way a box posts them."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone
from standardwebhooks import Webhook

from subjects.models import Subject, SubjectType
from tests.factories import SubjectFactory
from visits import services

LINK = re.compile(r"/visit/([A-Za-z0-9_-]{43})/")


def invite(tenant, **fields):
    """`visit_create` by the tenant's admin with the invitation sent (jobs run at commit);
    returns the visit and the token of the link in the mail (None without e-mail)."""
    fields.setdefault("visitor_name", "Mei Chen")
    fields.setdefault("visitor_email", "mei@example.org")
    fields.setdefault("starts_at", timezone.now() + timedelta(hours=1))
    fields.setdefault("ends_at", fields["starts_at"] + timedelta(hours=2))
    sent = len(mail.outbox)
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        visit = services.visit_create(company=tenant.company, actor=tenant.admin, **fields)
    visit.refresh_from_db()
    return visit, (token_in(mail.outbox[-1]) if len(mail.outbox) > sent else None)


def token_in(message) -> str:
    return LINK.search(message.body)[1]


def run_at_commit(function, **kwargs):
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        return function(**kwargs)


def employee(tenant, name="陳經理", email="host@a.example"):
    """The tenant's employee with this e-mail address, made the first time: a visit's host."""
    return Subject.objects.for_company(tenant.company).filter(email=email).first() or SubjectFactory(
        company=tenant.company, name=name, email=email, subject_type=SubjectType.EMPLOYEE
    )


def visiting(tenant, minutes_ago=30, host_email="host@a.example", **fields):
    """A visit for a contract review with the employee of `host_email`, begun `minutes_ago`
    (or at `starts_at`); the invitation's e-mail is cleared from the outbox."""
    starts_at = fields.pop("starts_at", timezone.now() - timedelta(minutes=minutes_ago))
    visit, _ = invite(
        tenant, host=employee(tenant, email=host_email), purpose="Contract review", starts_at=starts_at, **fields
    )
    mail.outbox.clear()
    return visit


def post(door, items):
    """A door's events posted by its box, the jobs they start run; the per-event results."""
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        answer = door.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def verified(secret, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)
