"""Sending webhook messages: attempts, retries with backoff and jitter, giving up.

A job takes one endpoint and the messages one announcement queued for it (a batch of 500
events is one job per endpoint, still one HTTP request per message). Each message is first
*claimed*: one UPDATE marks the still-pending, due messages with a random token and a lease,
so a job and the retry sweep, or two workers, never send the same message at the same time;
a sender that dies lets its messages go when the lease ends.

An attempt succeeds on any 2xx answer. Otherwise the message waits
`WEBHOOK_RETRY_BASE_SECONDS × 3^(n-1)` (at most WEBHOOK_RETRY_MAX_SECONDS) after its n-th
failed attempt, stretched or shortened by up to a quarter at random (jitter, so the
messages of an endpoint that was down do not all come back at the same second), and is
retried by the periodic sweep (`webhooks.retry`) until 24 hours after it was queued; then
it fails. When an endpoint cannot be reached at all (no answer, a timeout), the rest of that
job's messages are not tried against it now but wait for the same retry time, so an endpoint
that is down costs one timeout per job, not one per message.

Order is not promised: messages of one endpoint may arrive out of order (retries, several
workers). Receivers de-duplicate on `webhook-id` and order by the body's `timestamp`.

An endpoint whose messages have failed without a single success for 24 hours is disabled
(`is_active` off, `disabled_at` set), what still waits for it fails, and the company's
owners are e-mailed.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import defaultdict
from datetime import datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Company
from accounts.services import audit_record
from integrations import outbound, signing
from integrations.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from kangaroo import metrics
from kangaroo.jobs import enqueue

logger = logging.getLogger(__name__)

DISABLE_AFTER = timedelta(hours=24)
CLAIM_CHUNK = 50
USER_AGENT = "Kangaroo-Webhooks/1.0"


def retry_delay(failed_attempts: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after the n-th failed attempt: exponential, capped, with ±25 % jitter."""
    base = min(
        settings.WEBHOOK_RETRY_BASE_SECONDS * 3 ** max(failed_attempts - 1, 0), settings.WEBHOOK_RETRY_MAX_SECONDS
    )
    return base * (rng or random).uniform(0.75, 1.25)


def _claim(*, company_id: int, endpoint_id: int, ids: list[int], now: datetime) -> list[WebhookDelivery]:
    token = secrets.token_hex(16)
    lease = now + timedelta(seconds=CLAIM_CHUNK * settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    WebhookDelivery.objects.for_company(company_id).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        endpoint_id=endpoint_id,
        pk__in=ids,
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
    ).update(claim=token, claimed_until=lease)
    return list(WebhookDelivery.objects.for_company(company_id).filter(claim=token, pk__in=ids).order_by("id"))


def deliver(*, company_id: int, endpoint_id: int, ids: list[int], now: datetime | None = None) -> dict[str, int]:
    """Send the due, pending messages among `ids` to their endpoint; returns counts by outcome."""
    counts: dict[str, int] = defaultdict(int)
    endpoint = WebhookEndpoint.objects.for_company(company_id).filter(pk=endpoint_id).first()
    if endpoint is None:
        return dict(counts)  # deleted meanwhile, with its messages
    unreachable_until: datetime | None = None
    for start in range(0, len(ids), CLAIM_CHUNK):
        moment = now or timezone.now()
        for delivery in _claim(
            company_id=company_id, endpoint_id=endpoint_id, ids=ids[start : start + CLAIM_CHUNK], now=moment
        ):
            if unreachable_until is not None:
                _release(delivery, next_attempt_at=unreachable_until)
                counts["deferred"] += 1
                continue
            outcome, answer_missing, next_at = _attempt(endpoint, delivery, now=now)
            counts[outcome] += 1
            if answer_missing and outcome == "retrying":
                unreachable_until = next_at
    for outcome, number in counts.items():
        metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc(number)
    return dict(counts)


def _release(delivery: WebhookDelivery, *, next_attempt_at: datetime) -> None:
    WebhookDelivery.objects.for_company(delivery.company_id).filter(pk=delivery.pk, claim=delivery.claim).update(
        claim="", claimed_until=None, next_attempt_at=next_attempt_at
    )


def _attempt(
    endpoint: WebhookEndpoint, delivery: WebhookDelivery, *, now: datetime | None
) -> tuple[str, bool, datetime | None]:
    """One attempt at one claimed message: (outcome, whether no answer came, next attempt)."""
    moment = now or timezone.now()
    headers = signing.headers(
        secrets=endpoint.signing_secrets(moment),
        message_id=delivery.message_id,
        timestamp=int(moment.timestamp()),
        body=delivery.body,
    )
    headers["user-agent"] = USER_AGENT
    answer = outbound.post(endpoint.url, body=delivery.body.encode(), headers=headers)
    finished = now or timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = finished
    delivery.response_status = answer.status
    # The log is shown to the company's admins and kept for days: a receiver that echoes what it
    # got, or complains about the secret it holds, must not leave a credential in it.
    credentials = _credentials(endpoint, headers)
    delivery.response_excerpt = without_credentials(answer.excerpt, credentials)[:500]
    error = answer.error or ("" if answer.ok else f"HTTP {answer.status}")
    delivery.error = without_credentials(error, credentials)[:300]
    delivery.duration_ms = answer.duration_ms
    delivery.claim, delivery.claimed_until = "", None
    if answer.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = finished
        delivery.next_attempt_at = None
        outcome = "delivered"
    else:
        next_at = finished + timedelta(seconds=retry_delay(delivery.attempts))
        if next_at > delivery.retry_until:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            outcome = "failed"
        else:
            delivery.next_attempt_at = next_at
            outcome = "retrying"
    delivery.save(
        update_fields=[
            "attempts", "last_attempt_at", "response_status", "response_excerpt", "error", "duration_ms",
            "claim", "claimed_until", "status", "delivered_at", "next_attempt_at",
        ]
    )  # fmt: skip
    _endpoint_health(endpoint, ok=answer.ok, now=finished)
    return outcome, answer.status is None, delivery.next_attempt_at


REDACTED = "[redacted]"
# Headers whose value is a credential; none is sent today, but one added later is covered.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
# Shorter than this, the end of a cut-off answer matching a credential's start is chance.
PARTIAL_MIN = 6


def _credentials(endpoint: WebhookEndpoint, headers: dict[str, str]) -> list[str]:
    """Every credential an attempt could echo: the endpoint's signing secrets (the previous one
    too, whether or not it still signs), their keys without the `whsec_` prefix, and the
    values of credential headers (with and without their scheme, such as `Bearer`)."""
    values = []
    for secret in (endpoint.secret, endpoint.previous_secret):
        values += [secret, secret.removeprefix(signing.SECRET_PREFIX)]
    for name, value in headers.items():
        if name.lower() in CREDENTIAL_HEADERS:
            values += [value, value.partition(" ")[2]]
    return [value for value in values if len(value) >= PARTIAL_MIN]


def without_credentials(text: str, credentials: list[str]) -> str:
    """`text` with each credential removed by its value, whatever it looks like: as it is, as
    JSON that escapes "/" writes it, and URL-encoded; and a credential cut off at the end of
    `text` (answers are kept in part) is removed as far as it goes."""
    for value in sorted(credentials, key=len, reverse=True):
        for form in dict.fromkeys((value, value.replace("/", "\\/"), quote(value, safe=""))):
            text = text.replace(form, REDACTED)
            for size in range(len(form) - 1, PARTIAL_MIN - 1, -1):
                if text.endswith(form[:size]):
                    text = text[:-size] + REDACTED
                    break
    return text


def _endpoint_health(endpoint: WebhookEndpoint, *, ok: bool, now: datetime) -> None:
    scoped = WebhookEndpoint.objects.for_company(endpoint.company_id).filter(pk=endpoint.pk)
    if ok:
        if endpoint.failing_since is not None:
            scoped.update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        scoped.filter(failing_since__isnull=True).update(failing_since=now)
        endpoint.refresh_from_db(fields=["failing_since"])
    if endpoint.is_active and endpoint.failing_since is not None and now - endpoint.failing_since >= DISABLE_AFTER:
        webhook_endpoint_disable(endpoint=endpoint, now=now)


@transaction.atomic
def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Turn off an endpoint that has failed for a day; fail what waits for it, audit it and
    e-mail the company's owners (once: only the call that turns it off)."""
    from integrations import jobs

    turned_off = (
        WebhookEndpoint.objects.for_company(endpoint.company_id)
        .filter(pk=endpoint.pk, is_active=True)
        .update(is_active=False, disabled_at=now)
    )
    if not turned_off:
        return False
    endpoint.is_active, endpoint.disabled_at = False, now
    WebhookDelivery.objects.for_company(endpoint.company_id).filter(
        endpoint=endpoint, status=DeliveryStatus.PENDING
    ).update(status=DeliveryStatus.FAILED, next_attempt_at=None, error="endpoint disabled after 24 hours of failures")
    company = Company.objects.get(pk=endpoint.company_id)  # tenant: the endpoint's own company
    audit_record(
        company=company,
        actor=None,
        action="webhook.disable",
        obj=endpoint,
        changes={"failing_since": endpoint.failing_since},
    )
    enqueue(jobs.webhook_disabled_notify, endpoint.company_id, endpoint.pk)
    transaction.on_commit(metrics.WEBHOOK_ENDPOINTS_DISABLED.inc, robust=True)
    logger.warning("Webhook endpoint %s of company %s disabled after a day of failures", endpoint.pk, company.pk)
    return True


def deliver_due(*, now: datetime | None = None, limit: int = 5000) -> int:
    """The periodic sweep: queue one job per endpoint for its messages whose retry is due
    (and those a dead sender left claimed). Returns how many messages it queued."""
    from integrations import jobs

    moment = now or timezone.now()
    due = (
        WebhookDelivery.objects.filter(  # tenant: the sweep serves every company
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=moment),
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=moment,
        )
        .order_by("next_attempt_at")
        .values_list("company_id", "endpoint_id", "pk")[:limit]
    )
    by_endpoint: dict[tuple[int, int], list[int]] = defaultdict(list)
    for company_id, endpoint_id, pk in due:
        by_endpoint[(company_id, endpoint_id)].append(pk)
    with transaction.atomic():
        for (company_id, endpoint_id), ids in by_endpoint.items():
            enqueue(jobs.webhook_deliver, company_id, endpoint_id, ids, now=now)
    return sum(len(ids) for ids in by_endpoint.values())


def purge_log(*, now: datetime | None = None) -> int:
    """Delete the messages sent or given up more than WEBHOOK_LOG_DAYS ago (they carry names and
    times of people's passages); returns how many went. Pending ones stay, whatever their age."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_LOG_DAYS)
    old = WebhookDelivery.objects.filter(  # tenant: the purge serves every company
        status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.FAILED], created_at__lt=cutoff
    )
    deleted, _ = old.delete()
    return deleted
