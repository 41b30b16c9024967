"""`visit.invited`, `visit.arrived` and `visit.left` for the company's webhooks (the types are declared
with the others, in `integrations.models.WebhookType`). `data` is the visit as the API shows
it (`api.VisitSerializer`): names, contact, host, window and state, never the personal link,
a photo or a face. Queued inside the caller's transaction, so a message commits or rolls
back with the change it announces."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from accounts.models import Company
from integrations.models import WebhookType
from integrations.services import webhook_endpoints_wanting, webhooks_queue
from visits.models import Visit

TYPES = {"invited": WebhookType.VISIT_INVITED, "arrived": WebhookType.VISIT_ARRIVED, "left": WebhookType.VISIT_LEFT}


def visit_webhooks_queue(*, company: Company, kind: str, visits: Sequence[Visit]) -> int:
    """Queue `visit.<kind>` for `visits` to the endpoints that want it; returns how many
    messages (one query when no endpoint wants it)."""
    from visits.api import VisitSerializer
    from visits.selectors import visit_list, with_photo_ready

    event_type = TYPES[kind]
    endpoints = webhook_endpoints_wanting(company=company, event_types={event_type})
    if not endpoints or not visits:
        return 0
    rows = with_photo_ready(visit_list(company=company).filter(pk__in=[visit.pk for visit in visits])).order_by("id")
    now = timezone.now()
    with timezone.override(company.zone):
        messages = [(event_type, now, dict(data)) for data in VisitSerializer(rows, many=True).data]
    webhooks_queue(company=company, messages=messages, endpoints=endpoints)
    return len(messages)
