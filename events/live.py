"""Pushing events to the live dashboards over the channel layer.

Every stored event reaches here through the `events_recorded` hook (`events.hooks`), after
commit, in the one shape of `events.payload` with links the live pages can fetch.

Groups: one per company (admin dashboards) and one per screen (a dashboard showing one
screen, and the TV boxes showing that screen). A batch is sent as one message per group,
not one per event: a box posting 500 events costs a few publishes, not a thousand. The
message carries the pages' frame already encoded, so that twenty dashboards cost one
encoding, not twenty.

Images on live pages are addressed by signed, short-lived links issued to a connection
that has already passed its authentication and company checks (`live_image_url`). A link is
reused for up to LIVE_IMAGE_REUSE seconds (a subject passing several doors gets one
signature, not one each), which shortens its life by at most that much.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, reverse

from events import payload
from events.models import Event

logger = logging.getLogger(__name__)

LIVE_IMAGE_SALT = "kangaroo.live-image"
# Short: a card's image is fetched when the card appears; a revoked TV box key must not
# keep working through links it already received. Replayed cards get fresh links.
LIVE_IMAGE_MAX_AGE = 15 * 60
LIVE_IMAGE_REUSE = 60
_LIVE_IMAGE_LINKS_MAX = 10_000
_live_image_links: dict[tuple[str, str, str, int], tuple[float, str]] = {}


def company_group(company_id: int) -> str:
    return f"company.{company_id}"


def screen_group(screen_id: int) -> str:
    return f"screen.{screen_id}"


def live_image_url(kind: str, pk: int, company_id: int) -> str:
    """`kind` is "photo" (a subject's thumbnail) or "snapshot" (an event's snapshot)."""
    key = (settings.SECRET_KEY, get_script_prefix(), kind, pk, company_id)
    now = time.monotonic()
    cached = _live_image_links.get(key)
    if cached is not None and now - cached[0] < LIVE_IMAGE_REUSE:
        return cached[1]
    token = signing.dumps({"k": kind, "id": pk, "c": company_id}, salt=LIVE_IMAGE_SALT, compress=True)
    url = reverse("live-image", args=[token])
    if len(_live_image_links) >= _LIVE_IMAGE_LINKS_MAX:
        _live_image_links.clear()
    _live_image_links[key] = (now, url)
    return url


class LiveLinks:
    """Signed, short-lived links (`live_image_url`), for a live page's connection that has
    passed its checks; a TV box has no user to fetch the API's links with."""

    def snapshot(self, event: Event) -> str:
        return live_image_url("snapshot", event.pk, event.company_id)

    def photo(self, event: Event, photo_id: int) -> str:
        return live_image_url("photo", photo_id, event.company_id)


LIVE_LINKS = LiveLinks()


# What a live page's socket may show of faces (`EventsConsumer.faces`):
ALL_FACES = "all"  # a user with "view biometrics" (owners, admins): thumbnails and snapshots
NO_FACES = "none"  # a viewer: who and where, no face
# A TV box (a welcome display) is a device with no role. It greets a recognised person with
# their own enrolment thumbnail, seen by that person as they pass, which is what a welcome
# card is for; it never gets a snapshot: a camera frame of whoever stood at the door,
# strangers included, who never agreed to be shown on a lobby screen.
GREETING_FACES = "greeting"


def faces_for_user(user) -> str:
    return ALL_FACES if user.can_view_biometrics else NO_FACES


def shown(payloads: list[dict], faces: str) -> list[dict]:
    """The cards as a socket showing `faces` may send them: a copy without the links it may
    not have (the shared message is not changed)."""
    if faces == ALL_FACES:
        return payloads
    if faces == GREETING_FACES:
        return [{**card, "snapshot_url": None} if card.get("snapshot_url") else card for card in payloads]
    return [payload.without_faces(card) for card in payloads]


def event_payload(event: Event, photo_id: int | None = None) -> dict:
    """The event's one shape (`events.payload`), with live links."""
    return payload.event_payload(event, links=LIVE_LINKS, photo_id=photo_id)


def broadcast_recorded(sender, *, company, events: list[Event], **kwargs) -> None:
    """The live pages' listener of `events_recorded` (connected in `EventsConfig.ready`)."""
    broadcast(events)


def broadcast(events: list[Event]) -> None:
    """Send `events` to their groups. Never raises: the events are stored already, and a
    device must get its normal answer even when Redis is down; dashboards catch up from
    the database when they reconnect."""
    by_group: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        shown = event_payload(event)
        by_group[company_group(event.company_id)].append(shown)
        if event.screen_id:
            by_group[screen_group(event.screen_id)].append(shown)
    if not by_group:
        return
    try:
        # One hop to the event loop for all the groups, not one per group.
        async_to_sync(_send_to_groups)(get_channel_layer(), by_group)
    except Exception:
        logger.exception("Broadcasting %d event(s) failed; dashboards will catch up on reconnect", len(events))


async def _send_to_groups(layer, by_group: dict[str, list[dict]]) -> None:
    for group, payloads in by_group.items():
        await layer.group_send(group, events_push_message(payloads))


def events_push_message(payloads: list[dict]) -> dict:
    """The channel-layer message of new events: the page's `events` frame, encoded here once
    for every socket of the group in every process (each socket would otherwise encode the
    same events again), and the events' ids, with which a socket checks that it has sent
    none of them yet (`EventsConsumer.events_push`)."""
    return {
        "type": "events.push",
        "ids": [shown["id"] for shown in payloads],
        "frame": json.dumps({"type": "events", "events": payloads}),
    }


def broadcast_stranger_seen(event: Event, person, seen_today: int) -> None:
    """A stranger event's face belongs to unknown person `person`, seen `seen_today` times
    today: the dashboards add that to the event's card (or drop it, for an ignored person).
    Never raises, as `broadcast`."""
    message = {
        "type": "events.stranger_seen",
        "seen": {"event": event.pk, "unknown_person": person.pk, "seen_today": seen_today, "ignored": person.ignored},
    }
    _send(event, message, "a stranger's sighting")


def broadcast_corrected(events: list[Event]) -> None:
    """Corrected events, in their new shape: a dashboard replaces their cards, so it does
    not keep greeting the wrong person. Never raises, as `broadcast`."""
    for event in events:
        _send(event, {"type": "events.corrected", "events": [event_payload(event)]}, "a correction")


def _send(event: Event, message: dict, what: str) -> None:
    groups = [company_group(event.company_id)] + ([screen_group(event.screen_id)] if event.screen_id else [])
    try:
        async_to_sync(_send_to_each)(get_channel_layer(), groups, message)
    except Exception:
        logger.exception("Broadcasting %s (event %s) failed", what, event.pk)


async def _send_to_each(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group, message)
