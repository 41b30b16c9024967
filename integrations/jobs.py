"""Jobs of the integrations app: they take ids, load, and call the delivery or a service."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import Company, Role, User
from integrations import delivery
from integrations.models import WebhookEndpoint


def webhook_deliver(company_id: int, endpoint_id: int, ids: list[int], now: datetime | None = None) -> dict:
    return delivery.deliver(company_id=company_id, endpoint_id=endpoint_id, ids=ids, now=now)


def webhooks_retry() -> int:
    """Periodic (`webhooks.retry`): messages whose next attempt is due go out again."""
    return delivery.deliver_due()


def webhooks_log_purge() -> int:
    """Periodic (`webhooks.purge`): the delivery log keeps WEBHOOK_LOG_DAYS days."""
    return delivery.purge_log()


def webhooks_lagging() -> int:
    """Periodic (`webhooks.lagging`): boxes that started to lag behind the gallery are announced."""
    from integrations.listeners import webhooks_for_lagging_boxes

    return webhooks_for_lagging_boxes()


def webhook_disabled_notify(company_id: int, endpoint_id: int) -> int:
    """E-mail each active owner of the company, in their language, that an endpoint was
    turned off after a day of failures; returns how many were sent."""
    company = Company.objects.filter(pk=company_id).first()
    endpoint = WebhookEndpoint.objects.for_company(company).filter(pk=endpoint_id).first()
    if company is None or endpoint is None:
        return 0
    owners = User.objects.for_company(company).filter(role=Role.OWNER, is_active=True).exclude(email="")
    sent = 0
    for owner in owners:
        with translation.override(owner.language or settings.LANGUAGE_CODE), timezone.override(company.zone):
            context = {"owner": owner, "company": company, "endpoint": endpoint}
            subject = render_to_string("integrations/email/webhook_disabled_subject.txt", context).strip()
            text = render_to_string("integrations/email/webhook_disabled.txt", context)
        sent += send_mail(subject, text, None, [owner.email])
    return sent


def visitor_arrivals_notify(company_id: int, event_ids: list[int]) -> int:
    from integrations.arrivals import visitor_arrivals_notify as notify

    company = Company.objects.filter(pk=company_id).first()
    return notify(company=company, event_ids=event_ids) if company is not None else 0
