"""What the integrations app hears from the apps below it, turned into webhook messages.

- `events.hooks.events_recorded` (after commit): every stored event; its kind names the
  type (`event.recognized`, `event.stranger`, `event.visitor_outside_window`,
  `device.offline`, `device.online`), and `data` is the event in the one shape of
  `events.payload` (the REST API's `Event`, the live pages' card), without image links.
- `events.hooks.event_corrected` (after commit): `event.corrected`, the event as it now reads.
- `subjects.domain_signals.subject_changed` (inside the change's transaction, so the
  messages commit or roll back with it): `subject.created` / `subject.updated` with the
  subject as the API shows it (without its photos), `subject.deleted` with its id only.
- `subjects.domain_signals.photo_enrolled`: `photo.rejected` for the photos the face
  engine refused, with the reason code.
- `subjects.domain_signals.subject_erased` (inside the erasure's transaction): the person
  is scrubbed from the bodies the delivery log keeps (`webhook_bodies_scrub`), and from the
  arrival e-mails' record when they were a host; `consent_withdrawn`: their messages lose
  the links to the pictures that were deleted.
- A box's lag is computed, never announced (`devices.selectors.gallery_lag`), so a periodic
  check here (`webhooks_for_lagging_boxes`) sends `device.lagging` when a box starts to lag.

Nothing is rendered unless an active endpoint of the company wants the type, so companies
without webhooks pay one small query per announcement. Photos, snapshots and embeddings are
never in a message, nor links to them: an event's `photo_url` and `snapshot_url` are null
(`events.payload.NO_LINKS`) and a subject is sent without its photos. A receiver that needs a
face fetches it through the API, as a user who may see faces, asking for it
(`?include=images`), and that view is audited; a webhook is not.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from accounts.models import Company
from events.hooks import event_corrected, events_recorded
from events.models import Event, EventKind
from events.payload import NO_LINKS, event_payload
from integrations.arrivals import queue_visitor_arrivals
from integrations.models import VisitorArrival, WebhookType
from integrations.services import webhook_bodies_scrub, webhook_endpoints_wanting, webhooks_queue
from subjects.api import SubjectSerializer
from subjects.domain_signals import (
    CREATED,
    DELETED,
    consent_withdrawn,
    photo_enrolled,
    subject_changed,
    subject_erased,
)
from subjects.models import Photo, PhotoStatus, Subject
from subjects.selectors import with_consent_given_at

EVENT_TYPES = {
    EventKind.RECOGNIZED: WebhookType.EVENT_RECOGNIZED,
    EventKind.STRANGER: WebhookType.EVENT_STRANGER,
    EventKind.VISITOR_OUTSIDE_WINDOW: WebhookType.EVENT_VISITOR_OUTSIDE_WINDOW,
    EventKind.DEVICE_OFFLINE: WebhookType.DEVICE_OFFLINE,
    EventKind.DEVICE_ONLINE: WebhookType.DEVICE_ONLINE,
}
RENDER_CHUNK = 2000


def connect() -> None:
    events_recorded.connect(webhooks_for_events, dispatch_uid="integrations.webhooks.events")
    event_corrected.connect(webhooks_for_correction, dispatch_uid="integrations.webhooks.corrected")
    subject_changed.connect(webhooks_for_subjects, dispatch_uid="integrations.webhooks.subjects")
    photo_enrolled.connect(webhooks_for_rejected_photos, dispatch_uid="integrations.webhooks.photos")
    events_recorded.connect(queue_visitor_arrivals, dispatch_uid="integrations.arrivals.queue")
    subject_erased.connect(scrub_erased_subjects, dispatch_uid="integrations.privacy.erased")
    consent_withdrawn.connect(scrub_withdrawn_pictures, dispatch_uid="integrations.privacy.withdrawn")


def event_data(company, event: Event) -> dict[str, Any]:
    """An event as a webhook's `data`: the one event shape, times in the company's zone."""
    with timezone.override(company.zone):
        return event_payload(event, links=NO_LINKS)


def webhooks_for_events(sender, *, company, events, **kwargs) -> None:
    kinds = {EVENT_TYPES[event.kind] for event in events if event.kind in EVENT_TYPES}
    endpoints = webhook_endpoints_wanting(company=company, event_types=kinds)
    if not endpoints:
        return
    messages = [
        (EVENT_TYPES[event.kind], event.happened_at, event_data(company, event))
        for event in events
        if event.kind in EVENT_TYPES
    ]
    webhooks_queue(company=company, messages=messages, endpoints=endpoints)


def webhooks_for_correction(sender, *, company, event, **kwargs) -> None:
    endpoints = webhook_endpoints_wanting(company=company, event_types={WebhookType.EVENT_CORRECTED})
    if endpoints:
        messages = [(WebhookType.EVENT_CORRECTED, timezone.now(), event_data(company, event))]
        webhooks_queue(company=company, messages=messages, endpoints=endpoints)


class WebhookSubjectSerializer(SubjectSerializer):
    """A subject as the API shows it, without its photos (a webhook carries no biometric data)."""

    class Meta(SubjectSerializer.Meta):
        fields = [name for name in SubjectSerializer.Meta.fields if name not in ("photos", "usable_photos")]


def webhooks_for_subjects(sender, *, company, ids, action, **kwargs) -> None:
    kind = {CREATED: WebhookType.SUBJECT_CREATED, DELETED: WebhookType.SUBJECT_DELETED}.get(
        action, WebhookType.SUBJECT_UPDATED
    )
    endpoints = webhook_endpoints_wanting(company=company, event_types={kind})
    if not endpoints:
        return
    now = timezone.now()
    if kind == WebhookType.SUBJECT_DELETED:
        messages = [(kind, now, {"id": pk}) for pk in ids]
    else:
        messages = []
        with timezone.override(company.zone):
            for start in range(0, len(ids), RENDER_CHUNK):
                chunk = Subject.objects.for_company(company).filter(pk__in=ids[start : start + RENDER_CHUNK])
                # The consent in force annotated: read per subject, it cost a query each.
                chunk = with_consent_given_at(chunk.select_related("department").order_by("id"))
                rendered = WebhookSubjectSerializer(chunk, many=True).data
                messages += [(kind, now, dict(data)) for data in rendered]
    webhooks_queue(company=company, messages=messages, endpoints=endpoints)


class RejectedPhotoSerializer(serializers.ModelSerializer):
    class Meta:
        model = Photo
        fields = ["id", "subject", "status", "reason"]


def webhooks_for_rejected_photos(sender, *, company, ids, **kwargs) -> None:
    endpoints = webhook_endpoints_wanting(company=company, event_types={WebhookType.PHOTO_REJECTED})
    if not endpoints:
        return
    rejected = Photo.objects.for_company(company).filter(pk__in=ids, status=PhotoStatus.REJECTED).order_by("id")
    now = timezone.now()
    messages = [
        (WebhookType.PHOTO_REJECTED, now, dict(data)) for data in RejectedPhotoSerializer(rejected, many=True).data
    ]
    if messages:
        webhooks_queue(company=company, messages=messages, endpoints=endpoints)


def webhooks_for_lagging_boxes(*, now=None) -> int:
    """Periodic (`webhooks.lagging`): `device.lagging` once for each box that has started to
    lag behind the gallery (see `devices.selectors.gallery_lag`), with the box as the API
    shows it; returns how many were announced. Only companies with an endpoint that wants it."""
    from devices.api import BoxSerializer
    from devices.models import Box
    from devices.selectors import lagging_boxes
    from integrations.models import LaggingBox, WebhookEndpoint

    now = now or timezone.now()
    active = WebhookEndpoint.objects.filter(is_active=True)  # tenant: the check serves every company
    company_ids = sorted(
        {
            endpoint.company_id
            for endpoint in active.only("company_id", "event_types")
            if endpoint.wants(WebhookType.DEVICE_LAGGING)
        }
    )
    announced = 0
    for company_id in company_ids:
        company = Company.objects.get(pk=company_id)  # tenant: one of the companies above
        lagging = {box.pk: box for box in lagging_boxes(company=company, now=now)}
        known = set(LaggingBox.objects.for_company(company).values_list("box_id", flat=True))
        LaggingBox.objects.for_company(company).exclude(box_id__in=lagging).delete()
        new = [box for pk, box in lagging.items() if pk not in known]
        if not new:
            continue
        LaggingBox.objects.bulk_create(
            [LaggingBox(company=company, box=box, since=now) for box in new], ignore_conflicts=True
        )
        with timezone.override(company.zone):
            rendered = BoxSerializer(
                Box.objects.for_company(company).filter(pk__in=[b.pk for b in new]).order_by("id"), many=True
            ).data
        webhooks_queue(company=company, messages=[(WebhookType.DEVICE_LAGGING, now, dict(data)) for data in rendered])
        announced += len(new)
    return announced


def scrub_erased_subjects(sender, *, company, ids, identifiers, **kwargs) -> None:
    for pk in ids:
        texts = identifiers.get(pk, [])
        webhook_bodies_scrub(company=company, subject_id=pk, identifiers=texts)
        # The arrival record of a visitor they hosted kept the address it was sent to.
        if texts:
            VisitorArrival.objects.for_company(company).filter(host_email__in=texts).update(host_email="")


def scrub_withdrawn_pictures(sender, *, company, ids, **kwargs) -> None:
    for pk in ids:
        webhook_bodies_scrub(company=company, subject_id=pk, erased=False)
