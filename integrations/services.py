"""Writes of the integrations app: webhook endpoints and their messages.

Every change a person makes (an endpoint created, changed, deleted, its secret rotated, a
test ping, a redelivery) is audited. Messages are queued by `webhooks_queue`, from the
listeners of the lower apps' announcements (`integrations.listeners`); sending them is
`integrations.delivery`'s work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Company, User
from accounts.services import audit_record
from integrations import outbound, signing
from integrations.models import (
    PING_TYPE,
    RETRY_WINDOW,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookType,
)
from kangaroo import errors
from kangaroo.compiled import CompiledQuery
from kangaroo.errors import KangarooError
from kangaroo.jobs import NO_RETRY, enqueue

ENDPOINT_EDITABLE_FIELDS = ("url", "description", "event_types", "is_active")

URL_REFUSED_MESSAGES = {
    outbound.BAD_SCHEME: _("Only http:// and https:// addresses can receive webhooks."),
    outbound.NO_HOST: _("The address needs a host name."),
    outbound.UNRESOLVABLE: _("The host name does not resolve to an address."),
    outbound.PRIVATE_ADDRESS: _(
        "The host resolves to a private, loopback, link-local or other non-public address, "
        "which webhooks may not reach."
    ),
}


def webhook_url_check(url: str) -> str:
    """`url` if webhooks may be sent to it now; else `webhook_url_refused` naming the reason."""
    try:
        outbound.check_url(url)
    except outbound.UrlRefused as exc:
        message = URL_REFUSED_MESSAGES[exc.reason]
        raise KangarooError(
            errors.WEBHOOK_URL_REFUSED, fields={"url": [str(message)]}, extra={"reason": exc.reason}
        ) from None
    return url


def webhook_types_check(event_types: Iterable[str]) -> list[str]:
    """The types, each once, in the order of the list of types; an unknown or missing one is refused."""
    wanted = list(event_types or [])
    unknown = [name for name in wanted if name not in WebhookType.values]
    if unknown or not wanted:
        message = (
            _("Unknown event types: %(types)s.") % {"types": ", ".join(map(str, unknown))}
            if unknown
            else _("Choose at least one event type.")
        )
        raise KangarooError(errors.VALIDATION_ERROR, fields={"event_types": [str(message)]})
    return [name for name in WebhookType.values if name in wanted]


@transaction.atomic
def webhook_endpoint_create(
    *,
    company: Company,
    actor: User | None,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown once: only the endpoint keeps it)."""
    endpoint = WebhookEndpoint.objects.create(
        company=company,
        url=webhook_url_check(url),
        description=description,
        event_types=webhook_types_check(event_types),
        is_active=is_active,
        secret=signing.new_secret(),
    )
    audit_record(
        company=company,
        actor=actor,
        action="webhook.create",
        obj=endpoint,
        changes={"url": endpoint.url, "event_types": endpoint.event_types, "is_active": is_active},
    )
    return endpoint, endpoint.secret


@transaction.atomic
def webhook_endpoint_update(
    *, company: Company, actor: User | None, endpoint: WebhookEndpoint, **data: Any
) -> WebhookEndpoint:
    """Change an endpoint. Turning a disabled endpoint back on forgets its failures; turning
    it off fails what is still waiting to be sent to it."""
    unknown = set(data) - set(ENDPOINT_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"webhook_endpoint_update does not change {sorted(unknown)}")
    endpoint = WebhookEndpoint.objects.for_company(company).select_for_update().get(pk=endpoint.pk)
    if "url" in data and data["url"] != endpoint.url:
        webhook_url_check(data["url"])
    if "event_types" in data:
        data["event_types"] = webhook_types_check(data["event_types"])
    changes = {
        name: [getattr(endpoint, name), value] for name, value in data.items() if getattr(endpoint, name) != value
    }
    if not changes:
        return endpoint
    for name, value in data.items():
        setattr(endpoint, name, value)
    update_fields = [*changes, "updated_at"]
    if changes.get("is_active", [None, None])[1] is True:
        endpoint.failing_since = endpoint.disabled_at = None
        update_fields += ["failing_since", "disabled_at"]
    endpoint.save(update_fields=update_fields)
    if changes.get("is_active", [None, None])[1] is False:
        _fail_waiting(endpoint, error="endpoint turned off")
    audit_record(company=company, actor=actor, action="webhook.update", obj=endpoint, changes=changes)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, company: Company, actor: User | None, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint with its delivery log."""
    audit_record(company=company, actor=actor, action="webhook.delete", obj=endpoint, changes={"url": endpoint.url})
    WebhookEndpoint.objects.for_company(company).filter(pk=endpoint.pk).delete()


SECRET_OVERLAP = timedelta(hours=24)


@transaction.atomic
def webhook_secret_rotate(
    *, company: Company, actor: User | None, endpoint: WebhookEndpoint, now: datetime | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret (returned, shown once); messages are signed with the old one as well for
    the next 24 hours, so receivers can switch without refusing any."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.for_company(company).select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + SECRET_OVERLAP
    endpoint.secret = signing.new_secret()
    endpoint.save(update_fields=["previous_secret", "previous_secret_until", "secret", "updated_at"])
    audit_record(
        company=company,
        actor=actor,
        action="webhook.rotate_secret",
        obj=endpoint,
        changes={"previous_secret_until": endpoint.previous_secret_until},
    )
    return endpoint, endpoint.secret


def _fail_waiting(endpoint: WebhookEndpoint, *, error: str) -> int:
    return (
        WebhookDelivery.objects.for_company(endpoint.company_id)
        .filter(endpoint=endpoint, status=DeliveryStatus.PENDING)
        .update(status=DeliveryStatus.FAILED, next_attempt_at=None, error=error)
    )


def message_body(*, event_type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The JSON body of a message: `type`, `timestamp` (ISO 8601, UTC) and `data`."""
    moment = timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": event_type, "timestamp": moment, "data": data}, ensure_ascii=False, separators=(",", ":")
    )


def _queue_for(endpoint: WebhookEndpoint, deliveries: list[WebhookDelivery]) -> None:
    """One job per endpoint per announcement, however many messages it carries."""
    from integrations import jobs

    if deliveries:
        enqueue(
            jobs.webhook_deliver,
            endpoint.company_id,
            endpoint.pk,
            [delivery.pk for delivery in deliveries],
            retry=NO_RETRY,  # a message not sent stays pending: the retry sweep takes it
        )


def _new_delivery(endpoint: WebhookEndpoint, *, event_type: str, body: str, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        company_id=endpoint.company_id,
        endpoint=endpoint,
        message_id=signing.new_message_id(),
        event_type=event_type,
        body=body,
        next_attempt_at=now,
        retry_until=now + RETRY_WINDOW,
    )


def webhook_endpoints_wanting(*, company: Company | int, event_types: Iterable[str]) -> list[WebhookEndpoint]:
    """The company's active endpoints that want at least one of `event_types`."""
    types = set(event_types)
    if not types:
        return []
    endpoints = _ACTIVE_ENDPOINTS(company if isinstance(company, int) else company.pk)
    return [endpoint for endpoint in endpoints if types & set(endpoint.event_types or [])]


# Read for every event post (`listeners.webhooks_for_events`): compiled once (`kangaroo.compiled`).
_ACTIVE_ENDPOINTS = CompiledQuery(
    WebhookEndpoint,
    lambda company_id: WebhookEndpoint.objects.for_company(company_id).filter(is_active=True).order_by("id"),
)


@transaction.atomic
def webhooks_queue(
    *,
    company: Company,
    messages: Sequence[tuple[str, datetime, dict[str, Any]]],
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> list[WebhookDelivery]:
    """Queue each (type, timestamp, data) for every active endpoint of `company` that wants
    its type: one delivery per message and endpoint, and one job per endpoint (after commit)."""
    if endpoints is None:
        endpoints = webhook_endpoints_wanting(company=company, event_types={kind for kind, _, _ in messages})
    if not endpoints or not messages:
        return []
    now = timezone.now()
    bodies = [(kind, message_body(event_type=kind, timestamp=at, data=data)) for kind, at, data in messages]
    per_endpoint = {
        endpoint.pk: [
            _new_delivery(endpoint, event_type=kind, body=body, now=now)
            for kind, body in bodies
            if endpoint.wants(kind)
        ]
        for endpoint in endpoints
    }
    rows = [delivery for deliveries in per_endpoint.values() for delivery in deliveries]
    WebhookDelivery.objects.bulk_create(rows, batch_size=1000)  # tenant: each row built with its endpoint's company_id
    for endpoint in endpoints:
        _queue_for(endpoint, per_endpoint[endpoint.pk])
    return rows


@transaction.atomic
def webhook_ping(*, company: Company, actor: User | None, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `webhook.ping` message to the endpoint now, whatever types it wants."""
    now = timezone.now()
    data = {"endpoint": endpoint.pk, "company": company.slug, "message": "Kangaroo test ping"}
    delivery = _new_delivery(
        endpoint, event_type=PING_TYPE, body=message_body(event_type=PING_TYPE, timestamp=now, data=data), now=now
    )
    delivery.save()
    audit_record(company=company, actor=actor, action="webhook.ping", obj=endpoint, changes={"delivery": delivery.pk})
    _queue_for(endpoint, [delivery])
    return delivery


@transaction.atomic
def webhook_redeliver(*, company: Company, actor: User | None, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a message again now, with the same `webhook-id` and body (a receiver that already
    has it recognises it), retried for another 24 hours if it fails."""
    delivery = WebhookDelivery.objects.for_company(company).select_for_update().get(pk=delivery.pk)
    now = timezone.now()
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.retry_until = now + RETRY_WINDOW
    delivery.claimed_until = None
    delivery.claim = ""
    delivery.save(update_fields=["status", "next_attempt_at", "retry_until", "claimed_until", "claim"])
    audit_record(
        company=company,
        actor=actor,
        action="webhook.redeliver",
        obj=delivery.endpoint,
        changes={"delivery": delivery.pk, "message_id": delivery.message_id},
    )
    _queue_for(delivery.endpoint, [delivery])
    return delivery


# --- A person's data in the delivery log -------------------------------------------------------

# Set at the top of a stored body whose person was erased, so the log says why it reads so.
REDACTED_ERASED = "subject_erased"
# What of a subject's own message (`subject.created`, `subject.updated`) survives erasure.
SUBJECT_KEPT_FIELDS = ("id", "subject_type", "created_at", "updated_at")


def webhook_bodies_scrub(
    *, company: Company, subject_id: int, identifiers: Sequence[str] = (), erased: bool = True
) -> int:
    """Scrub one subject of `company` from the bodies kept in its delivery log; returns how
    many rows changed. Each row keeps its status, attempts and times (the log still shows
    that a message was sent and how it went).

    `erased` (the person's erasure): an event names them no more (`subject` null, as the API
    shows such an event now), their `subject.*` messages keep only the id, type and times,
    no image link is left, and a receiver's answer quoting any of `identifiers` (name, job
    number, e-mail, phone) is dropped. Otherwise (consent withdrawn: the pictures are gone,
    the person stays) only the links to their photo and snapshots go.

    Found by the id as the compact JSON of `message_body` writes it, then checked parsed, so
    only this subject's messages change; in the caller's transaction."""
    mentions = WebhookDelivery.objects.for_company(company).filter(
        Q(body__contains=f'"id":{subject_id},') | Q(body__contains=f'"id":{subject_id}}}')
    )
    texts = [text for text in identifiers if text]
    changed = []
    for delivery in mentions.only("pk", "body", "response_excerpt").order_by("pk").iterator(chunk_size=500):
        try:
            message = json.loads(delivery.body)
        except ValueError:
            continue
        if not _scrub_message(message, subject_id, erased=erased):
            continue
        delivery.body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        if erased and any(text in delivery.response_excerpt for text in texts):
            delivery.response_excerpt = ""
        changed.append(delivery)
    WebhookDelivery.objects.for_company(company).bulk_update(changed, ["body", "response_excerpt"], batch_size=500)
    return len(changed)


def _scrub_message(message: dict[str, Any], subject_id: int, *, erased: bool) -> bool:
    """Scrub `message` in place; True when it was about the subject."""
    data = message.get("data")
    if not isinstance(data, dict):
        return False
    kind = str(message.get("type", ""))
    person = data.get("subject")
    if isinstance(person, dict) and person.get("id") == subject_id:  # an event's payload
        data["snapshot_url"] = None
        if erased:
            data["subject"] = None
        else:
            person["photo_url"] = None
    elif erased and kind in (WebhookType.SUBJECT_CREATED, WebhookType.SUBJECT_UPDATED) and data.get("id") == subject_id:
        message["data"] = {name: data[name] for name in SUBJECT_KEPT_FIELDS if name in data}
    else:
        return False
    if erased:
        message["redacted"] = REDACTED_ERASED
    return True
