"""One shape of an event, for everyone who is shown one: the REST API (`EventSerializer`),
the live pages (`events.live`) and the hooks' listeners (webhooks, notifications).

Only the image links differ with the audience, so they come from a `links` object:
`API_LINKS` points at the company-checked API endpoints (a signed-in person or a token
fetches them), given only to a request that asked with `?include=images` and may see faces
(`kangaroo.api.disclosure`); the live pages' links are signed and short-lived
(`events.live.LiveLinks`), for a TV box that has no user; `NO_LINKS` gives none (webhooks,
an API answer that did not ask). Every link is built with `reverse`, so it follows the
deployment's URL prefix.

The subject's thumbnail comes from `event.first_photo_id` (annotated by
`events.selectors.with_first_photo_id`, set by ingest, or passed as `photo_id`); without it there is none.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from devices.models import DeviceKind, Direction
from events.models import Event, EventKind
from kangaroo.api.disclosure import image_links_shown
from subjects.models import SubjectType


def _iso(value, zone) -> str:
    """ISO 8601 in `zone`, UTC written `Z`: what DRF's DateTimeField answers everywhere else
    in the API, without its per-call settings lookups (a batch renders a thousand of them)."""
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class EventLinks(Protocol):
    def snapshot(self, event: Event) -> str | None: ...

    def photo(self, event: Event, photo_id: int) -> str | None: ...


class ApiLinks:
    """Links to the API's own endpoints, which check the caller's company."""

    def snapshot(self, event: Event) -> str:
        return event_snapshot_url(event)

    def photo(self, event: Event, photo_id: int) -> str:
        return reverse("photo-thumbnail", args=[photo_id])


def event_snapshot_url(event: Event) -> str:
    """The snapshot's address for a signed-in person (API, admin): the company-checked view."""
    return reverse("event-snapshot", args=[event.pk])


API_LINKS = ApiLinks()


class NoLinks:
    """No link to a face: the event says who and where, never shows them."""

    def snapshot(self, event: Event) -> None:
        return None

    def photo(self, event: Event, photo_id: int) -> None:
        return None


NO_LINKS = NoLinks()


def event_payload(event: Event, *, links: EventLinks, photo_id: int | None = None) -> dict[str, Any]:
    """The event as every audience sees it (`EventSerializer` documents the fields)."""
    zone = timezone.get_current_timezone()
    return _shape(event, links, photo_id, zone, _iso(event.received_at, zone))


def event_payloads(events: list[Event], *, links: EventLinks) -> list[dict[str, Any]]:
    """`event_payload` of each event (its thumbnail from `first_photo_id`), for a batch:
    the time zone is looked up once, and a time the previous event had is not written
    again (a batch's events share their `received_at`)."""
    zone = timezone.get_current_timezone()
    shapes = []
    received_at, received_text = None, ""
    for event in events:
        if event.received_at != received_at:
            received_at, received_text = event.received_at, _iso(event.received_at, zone)
        shapes.append(_shape(event, links, None, zone, received_text))
    return shapes


def _shape(event: Event, links: EventLinks, photo_id: int | None, zone, received_at: str) -> dict[str, Any]:
    if photo_id is None:
        photo_id = getattr(event, "first_photo_id", None)
    return {
        "id": event.pk,
        "kind": event.kind,
        "happened_at": _iso(event.happened_at, zone),
        "received_at": received_at,
        "subject": (
            {
                "id": event.subject_id,  # null once the subject is deleted; the names stay
                "name": event.subject_name,
                "type": event.subject_type,
                "job_number": event.subject_job_number,
                "photo_url": links.photo(event, photo_id) if photo_id and event.subject_id else None,
            }
            if event.subject_name
            else None
        ),
        "device_kind": event.device_kind,
        "device_id": event.device_id,
        "device_name": event.device_name,
        "screen": event.screen_id,
        "direction": event.direction,
        "confidence": event.confidence,
        "distance": event.distance,
        "snapshot_url": links.snapshot(event) if event.snapshot else None,
        "unknown_person": event.unknown_person_id,
        "corrected": event.corrected_at is not None,
    }


class EventSubjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Null once the subject is deleted; the names stay."
    )
    name = serializers.CharField(read_only=True)
    type = serializers.ChoiceField(read_only=True, choices=SubjectType.choices)
    job_number = serializers.CharField(read_only=True)
    photo_url = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The subject's first photo's thumbnail; null unless asked for with `?include=images`.",
    )


class EventSerializer(serializers.Serializer):
    """An event: who passed which door, when."""

    # The fields document `event_payload`, which renders them (a test holds the two together).
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(read_only=True, choices=EventKind.choices)
    happened_at = serializers.DateTimeField(read_only=True)
    received_at = serializers.DateTimeField(read_only=True)
    subject = EventSubjectSerializer(read_only=True, allow_null=True, help_text="Null for strangers and device events.")
    device_kind = serializers.ChoiceField(read_only=True, choices=DeviceKind.choices, allow_blank=True)
    device_id = serializers.IntegerField(read_only=True, allow_null=True)
    device_name = serializers.CharField(read_only=True)
    screen = serializers.IntegerField(read_only=True, allow_null=True, help_text="The screen's id.")
    direction = serializers.ChoiceField(read_only=True, choices=Direction.choices, allow_blank=True)
    confidence = serializers.FloatField(read_only=True, allow_null=True)
    distance = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="When the portal recognised the face (`/device/recognize`): the distance to the closest "
        "enrolled face (under the company's threshold: recognized). Null for events a box recognised.",
    )
    snapshot_url = serializers.CharField(
        read_only=True, allow_null=True, help_text="The event's snapshot; null unless asked for with `?include=images`."
    )
    unknown_person = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="A stranger event's unknown person (the face's group), once its snapshot has been clustered.",
    )
    corrected = serializers.BooleanField(
        read_only=True, help_text="An admin corrected who this event is about (see its corrections)."
    )

    def to_representation(self, event: Event) -> dict[str, Any]:
        return event_payload(event, links=API_LINKS if image_links_shown(self.context) else NO_LINKS)


def without_faces(shown: dict[str, Any]) -> dict[str, Any]:
    """The event's shape with no link to a face (photo or snapshot), for one who may not
    see biometric data (a viewer's live page): the card still says who and where."""
    if not shown.get("snapshot_url") and not (shown.get("subject") or {}).get("photo_url"):
        return shown
    shown = {**shown, "snapshot_url": None}
    if shown.get("subject"):
        shown["subject"] = {**shown["subject"], "photo_url": None}
    return shown
