"""Pushing events to the live dashboards over the channel layer.

Every stored event reaches here through the `events_recorded` hook (`events.hooks`), after
commit, in the one shape of `events.payload` with links the live pages can fetch.

Groups: one per company (admin dashboards) and one per screen (a dashboard showing one
screen, and the TV boxes showing that screen). A batch is sent as one message per group,
not one per event: a box posting 500 events costs a few publishes, not a thousand. The
message carries the pages' frame already encoded, so that twenty dashboards cost one
encoding, not twenty. A request does not wait for the publishes: `Publisher` sends them
from the server's event loop, in order, merging what several requests queued meanwhile.

Images on live pages are addressed by signed, short-lived links issued to a connection
that has already passed its authentication and company checks (`live_image_url`). A link is
reused for up to LIVE_IMAGE_REUSE seconds (a subject passing several doors gets one
signature, not one each), which shortens its life by at most that much.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, reverse

from events import payload
from events.models import Event
from kangaroo.channel_layers import group_send_many

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


def live_image_url(kind: str, pk: int, company_id: int, prefix: str | None = None) -> str:
    """`kind` is "photo" (a subject's thumbnail) or "snapshot" (an event's snapshot);
    `prefix`, the deployment's URL prefix, if the caller has it already."""
    key = (settings.SECRET_KEY, prefix or get_script_prefix(), kind, pk, company_id)
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
    passed its checks; a TV box has no user to fetch the API's links with. The URL prefix
    is read once, when the links are made for a batch, not once per link."""

    def __init__(self):
        self.prefix = get_script_prefix()

    def snapshot(self, event: Event) -> str:
        return live_image_url("snapshot", event.pk, event.company_id, self.prefix)

    def photo(self, event: Event, photo_id: int) -> str:
        return live_image_url("photo", photo_id, event.company_id, self.prefix)


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
    return payload.event_payload(event, links=LiveLinks(), photo_id=photo_id)


def broadcast_recorded(sender, *, company, events: list[Event], **kwargs) -> None:
    """The live pages' listener of `events_recorded` (connected in `EventsConfig.ready`)."""
    broadcast(events)


def broadcast(events: list[Event]) -> None:
    """Send `events` to their groups. Never raises: the events are stored already, and a
    device must get its normal answer even when Redis is down; dashboards catch up from
    the database when they reconnect."""
    by_group: dict[str, list[dict]] = defaultdict(list)
    try:
        for event, shown in zip(events, payload.event_payloads(events, links=LiveLinks()), strict=True):
            by_group[company_group(event.company_id)].append(shown)
            if event.screen_id:
                by_group[screen_group(event.screen_id)].append(shown)
    except Exception:
        logger.exception("Broadcasting %d event(s) failed; dashboards will catch up on reconnect", len(events))
        return
    if by_group:
        PUBLISHER.submit(_Push(dict(by_group)), f"{len(events)} event(s)")


async def _send_to_groups(layer, by_group: dict[str, list[dict]]) -> None:
    """One `events.push` message per group (of at most MESSAGE_MAX_EVENTS events), each
    event encoded once for all its groups, all of them sent in one go (`group_send_many`)."""
    encoded: dict[int, str] = {}
    messages = [
        (group, events_push_message(payloads[start : start + MESSAGE_MAX_EVENTS], encoded))
        for group, payloads in by_group.items()
        for start in range(0, len(payloads), MESSAGE_MAX_EVENTS)
    ]
    await group_send_many(layer, messages)


def events_push_message(payloads: list[dict], encoded: dict[int, str] | None = None) -> dict:
    """The channel-layer message of new events: the page's `events` frame, encoded here once
    for every socket of the group in every process (each socket would otherwise encode the
    same events again), and the events' ids, with which a socket checks that it has sent
    none of them yet (`EventsConsumer.events_push`). `encoded` keeps each event's text by
    id, for an event sent to several groups (its company's and its screen's)."""
    encoded = {} if encoded is None else encoded
    texts = []
    for shown in payloads:
        text = encoded.get(shown["id"])
        if text is None:
            text = encoded[shown["id"]] = json.dumps(shown)
        texts.append(text)
    # The same text as json.dumps({"type": "events", "events": payloads}) would write.
    return {
        "type": "events.push",
        "ids": [shown["id"] for shown in payloads],
        "frame": '{"type": "events", "events": [' + ", ".join(texts) + "]}",
    }


# A merged message carries at most this many events (a full batch of one post).
MESSAGE_MAX_EVENTS = 500


@dataclass
class _Push:
    """New events, by group: consecutive pushes are merged into one message per group."""

    by_group: dict[str, list[dict]]


@dataclass
class _Message:
    """Any other message, sent as it is to each of `groups`."""

    groups: list[str]
    message: dict


class Publisher:
    """Hands what a request announces to the channel layer without making the request wait.

    Under the ASGI server a request's synchronous code runs in a worker thread, and the
    channel layer's connections live on the server's event loop. Waiting there for Redis to
    answer each publish held the request (and its thread, and the device's connection) for
    round trips that change nothing in its answer. So a request only queues its messages
    (`submit`, which never blocks on Redis and never raises), and one task on the server's
    loop sends them, in the order they were queued. While a send is in flight, what is
    queued meanwhile waits and goes out merged: under load, many posts' events to one group
    cost one publish, not one each; when idle, a message goes at once.

    Nothing queued is dropped by the queue. A send that fails (Redis restarting) is logged
    and its messages are lost, as a synchronous publish's would be: the pages' database
    catch-up (`EventsConsumer`'s tick) shows those events, and the next sends go through
    once Redis is back. Only committed events get here (`events_recorded` is sent after
    commit), so nothing is published for a transaction that rolls back.

    Code running outside the server's loop (a job, a management command, a test without a
    server) has no loop to hand to: it publishes synchronously, as before.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._queues: dict[asyncio.AbstractEventLoop, list[_Push | _Message]] = {}
        self._flushing: set[asyncio.AbstractEventLoop] = set()

    def submit(self, entry: _Push | _Message, what: str) -> None:
        try:
            loop = _server_loop()
            if loop is None:
                async_to_sync(_send_entries)(get_channel_layer(), [entry])
                return
            with self._lock:
                self._queues.setdefault(loop, []).append(entry)
                if loop in self._flushing:
                    return  # the running flush takes it next
                self._flushing.add(loop)
            loop.call_soon_threadsafe(self._start, loop)
        except Exception:
            logger.exception("Broadcasting %s failed; dashboards will catch up", what)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._flush(loop))
        _flush_tasks.add(task)  # a task nobody refers to may be collected before it ends
        task.add_done_callback(_flush_tasks.discard)

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                entries = self._queues.pop(loop, [])
                if not entries:
                    self._flushing.discard(loop)
                    return
            try:
                await _send_entries(get_channel_layer(), entries)
            except Exception:
                count = sum(sum(len(p) for p in e.by_group.values()) for e in entries if isinstance(e, _Push))
                logger.exception("Broadcasting %d event(s) failed; dashboards will catch up", count)

    async def idle(self) -> None:
        """Wait until everything queued on the running loop is sent (for tests)."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if loop not in self._flushing:
                    return
            await asyncio.sleep(0.001)


PUBLISHER = Publisher()
_flush_tasks: set[asyncio.Task] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop that runs the caller: its own, or for a worker thread the loop it
    works for (asgiref's `SyncToAsync` marks its threads with it, as `async_to_sync` reads
    it), if that is alive; None for plain synchronous code."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(local, "main_event_loop", None)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


async def _send_entries(layer, entries: list[_Push | _Message]) -> None:
    """Send `entries` in order, consecutive pushes merged per group."""
    merged: dict[str, list[dict]] = {}
    for entry in entries:
        if isinstance(entry, _Push):
            for group, payloads in entry.by_group.items():
                merged.setdefault(group, []).extend(payloads)
            continue
        if merged:
            await _send_to_groups(layer, merged)
            merged = {}
        await group_send_many(layer, [(group, entry.message) for group in entry.groups])
    if merged:
        await _send_to_groups(layer, merged)


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
    # Through the same queue as new events, so that it never overtakes the event it is about.
    PUBLISHER.submit(_Message(groups, message), f"{what} (event {event.pk})")
