"""The live event stream behind /dashboard/ and /tv/.

Who may listen to what is decided here, from the authenticated identity, never from what
the client asks for:
- an admin's session: the whole company, or one of its screens (`?screen=<id>`);
- a TV box's key (an `Authorization: Device` header, or a first `{"type": "auth"}`
  message from a browser page): only the screens that TV box shows.
Anything else is refused (close codes 4401 unauthenticated, 4403 refused).

Every event carries its id. A client that reconnects sends `{"type": "resume", "after":
<last id seen>}` and first gets everything after it from the database, in order; the
consumer remembers what it sent, so a live copy of a replayed event is not sent twice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from devices.models import Screen, TVBox
from devices.selectors import device_for_key
from events import selectors
from events.live import company_group, event_payload, screen_group
from kangaroo.errors import KangarooError

AUTH_TIMEOUT = 10
RECENT_ON_OPEN = 12
SENT_MEMORY = 5000

CLOSE_UNAUTHENTICATED = 4401
CLOSE_REFUSED = 4403


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.company = None
        self.screen_ids: list[int] | None = None
        self.tvbox: TVBox | None = None
        self.groups_joined: list[str] = []
        self.sent_ids: deque[int] = deque(maxlen=SENT_MEMORY)
        self.sent_set: set[int] = set()
        self.auth_timer = None
        await self.accept()
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await self.start_for_user(user)
            return
        key = self._header_device_key()
        if key:
            await self.start_for_key(key)
            return
        # A browser cannot set headers on a websocket: the TV page sends its key first.
        self.auth_timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT, lambda: asyncio.ensure_future(self.close(code=CLOSE_UNAUTHENTICATED))
        )

    def _header_device_key(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"authorization":
                parts = value.decode("latin-1").split()
                if len(parts) == 2 and parts[0].lower() == "device":
                    return parts[1]
        return None

    async def start_for_user(self, user):
        if not (user.is_active and user.is_staff and user.company_id):
            await self.close(code=CLOSE_REFUSED)
            return
        self.company = await self._company_of(user)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        screen = query.get("screen", [None])[0]
        if screen:
            if not screen.isdigit() or not await self._screen_exists(int(screen)):
                await self.close(code=CLOSE_REFUSED)  # another company's screen reads like a missing one
                return
            self.screen_ids = [int(screen)]
            await self.join([screen_group(int(screen))])
        else:
            await self.join([company_group(self.company.pk)])
        await self.send_hello()

    async def start_for_key(self, key: str):
        device = await self._device_for_key(key)
        if not isinstance(device, TVBox):
            await self.close(code=CLOSE_UNAUTHENTICATED if device is None else CLOSE_REFUSED)
            return
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        self.tvbox = device
        self.company = device.company
        self.screen_ids = await self._tvbox_screen_ids(device)
        await self.join([screen_group(pk) for pk in self.screen_ids])
        await self.send_hello()

    async def join(self, groups: list[str]):
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups

    async def disconnect(self, code):
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if self.company is None:
            if kind == "auth" and isinstance(content.get("key"), str):
                await self.start_for_key(content["key"])
            else:
                await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if kind == "resume":
            after = content.get("after")
            if isinstance(after, int) and after >= 0:
                await self.replay(after)
        elif kind == "ping":
            await self.send_json({"type": "pong"})

    async def replay(self, after: int):
        while True:
            events, payloads = await self._events_after(after)
            if not events:
                return
            await self.send_events(payloads)
            after = events[-1].pk
            if len(events) < selectors.REPLAY_LIMIT:
                return

    async def events_push(self, message):
        await self.send_events(message["events"])

    async def send_events(self, payloads: list[dict]):
        fresh = [p for p in payloads if p["id"] not in self.sent_set]
        if not fresh:
            return
        for payload in fresh:
            if len(self.sent_ids) == self.sent_ids.maxlen:
                self.sent_set.discard(self.sent_ids[0])
            self.sent_ids.append(payload["id"])
            self.sent_set.add(payload["id"])
        await self.send_json({"type": "events", "events": fresh})

    async def send_hello(self):
        await self.send_json(await self._hello())

    # --- database ------------------------------------------------------------------------------
    @database_sync_to_async
    def _company_of(self, user):
        return user.company

    @database_sync_to_async
    def _screen_exists(self, screen_id: int) -> bool:
        return Screen.objects.for_company(self.company).filter(pk=screen_id).exists()

    @database_sync_to_async
    def _device_for_key(self, key: str):
        try:
            device = device_for_key(key)
        except KangarooError:
            return None
        device.company  # noqa: B018 - load it here, in the thread that may touch the database
        return device

    @database_sync_to_async
    def _tvbox_screen_ids(self, tvbox: TVBox) -> list[int]:
        return list(tvbox.screens.values_list("pk", flat=True))

    @database_sync_to_async
    def _events_after(self, after: int):
        events = selectors.events_after(company=self.company, screen_ids=self.screen_ids, after_id=after)
        return events, self._payloads(events)

    def _payloads(self, events) -> list[dict]:
        photos = selectors.first_photo_ids(company=self.company, events=events)
        return [event_payload(event, photos.get(event.subject_id)) for event in events]

    @database_sync_to_async
    def _hello(self) -> dict:
        hello = {
            "type": "hello",
            "company": self.company.name,
            "time_zone": self.company.time_zone,
            "screens": self.screen_ids,
            "arrived_today": selectors.arrived_today(company=self.company, screen_ids=self.screen_ids),
            "devices": selectors.device_counts(company=self.company),
            # A page that just opened shows today's latest; one that reconnects resumes instead.
            "recent": self._payloads(
                selectors.recent_today(company=self.company, screen_ids=self.screen_ids, limit=RECENT_ON_OPEN)
            ),
        }
        if self.tvbox is not None:
            hello["tv"] = {
                "name": self.tvbox.name,
                "theme": self.tvbox.theme,
                "greetings": {
                    "employee": self.tvbox.greeting_employee,
                    "visitor": self.tvbox.greeting_visitor,
                    "vip": self.tvbox.greeting_vip,
                },
            }
        return hello
