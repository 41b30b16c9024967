"""Inviting visitors the way hosts do, and reading the link out of the invitation."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone

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
