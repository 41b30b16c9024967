"""The live event stream behind /dashboard/ and /tv/.

Who may listen to what is decided here, from the authenticated identity, never from what
the client asks for:
- an admin's session: the whole company, or one of its screens (`?screen=<id>`);
- a TV box's key (an `Authorization: Device` header, or a first `{"type": "auth"}`
  message from a browser page): only the screens that TV box shows.
Anything else is refused. The close codes, and what a client does on each, are listed in
kangaroo.consumers: 4400 bad message, 4401 unauthenticated, 4403 refused, 4410 revoked.

Messages from the server: `hello` (who is listening, today's figures, the latest events,
`tick_seconds`), `events` (new events, each with its id, oldest first), `tick`,
`stranger_seen` (a stranger event's face belongs to an unknown person: `event`,
`unknown_person`, `seen_today`, `ignored`), `event_corrected` (`events`: corrected
events in their new shape, whose cards the page replaces; `arrived_today` afresh) and, to
admins' pages, `devices` (`lagging`: the number of boxes behind the gallery, when it changed).
Messages from a client: `auth`, `resume` (`{"type": "resume", "after": <id>}`: everything
after it, from the database, in order; once per socket, later ones are ignored) and `ping`
(answered by `pong`).

A page resumes after the last `complete` it heard, not after the highest id it saw: `hello`
and every `tick` carry `complete`, an id at or below which the socket has sent every event
of its scope. Events do not arrive in id order (a transaction that took an id commits after
a later one; a live copy lost while Redis was away comes from the database a tick later
than newer ones came live), so a page that saw id 120 may still be owed 117. It drops what
it was sent twice across the reconnect by id. The resumed socket's catch-up reads from the
resume point for its lookback too, for what commits late below the newest id, but from no
lower than RESUME_LOOKBACK_IDS below where it read from (right after the hello, the newest
id then): ids are shared by every company, so however small an `after` a client sends, a
tick reads at most that many more ids, for LOOKBACK_TICKS ticks, once per socket. The
replay itself reads what the page missed once, REPLAY_LIMIT events at a time.

No gap, no repeat, whatever the channel layer does. Live copies come through the channel
layer, which may lose messages while Redis is unreachable without the socket noticing.
So every LIVE_TICK_SECONDS the consumer also reads from the database the ids in its scope
above what it had sent a few ticks ago (late commits get that long to show up), sends the
ones it has not sent, and then a `tick` with the newest id it has sent. While live copies
keep arriving, it reads only up to where they had come a tick ago: the newer ones are
still on their way, and reading them again for every socket of a busy page made each
tick cost more than the live stream itself. Even that range it first only counts: when
the database holds as many ids there, with the same sum, as the socket sent, nothing is
missing and no id is read (at 1,000 events/s a range is 15,000 ids per socket and tick,
and every socket of a process ticking at once stalled its live pushes). When none arrived
during a tick (the layer may be down), it reads everything. So a page is at most two ticks behind, and a page that
hears no tick for a while knows its connection is dead and reconnects. The consumer
remembers what it sent, so an event that arrives both live and from the database, or in
a replay, is sent once.

The sockets of a process hear their company's and screens' groups through the process's
hub (events.hub): one subscription per group and process, each message taken off the
layer once and queued to every socket of the group, which sends the frame as the
publisher encoded it. A socket holds at most LIVE_INBOX_MESSAGES of them for its page: a
page that falls further behind (it stopped reading, or reads too slowly) is closed with
1011, and reconnects and resumes after its `complete`; none is dropped from an open socket.
A socket that does not get as far as its hello (refused, revoked, or something failed on
the way) leaves every group it had joined at once. The lagging boxes figure each tick
sends when it changed is read once per company and process for all its sockets
(`shared_lagging_count`). A client that goes away is how a page ends: a frame that finds
it gone is no error.

Authentication happens once, when the socket opens, so every socket also joins a group
per principal it was opened with (events.revocation) and closes with 4410 the moment that
session logs out, that user is deactivated or changes password, or that TV box's key is
rotated or revoked. Every LIVE_RECHECK_SECONDS it also re-checks its principal against
the database, in case such a message was lost.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections import deque
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.db import InterfaceError, OperationalError

from devices.models import Screen, TVBox
from devices.selectors import device_for_key
from events import live, selectors
from events.hub import SharedPush, live_hub
from events.live import company_group, event_payload, screen_group
from events.revocation import device_group, session_group, user_group
from kangaroo.consumers import (
    CLOSE_REFUSED,
    CLOSE_REVOKED,
    CLOSE_UNAUTHENTICATED,
    AsyncStrictJsonConsumer,
)
from kangaroo.errors import KangarooError

logger = logging.getLogger(__name__)

AUTH_TIMEOUT = 10
RECENT_ON_OPEN = 12
# At least this many of the ids a socket sent are remembered, and every one the database
# catch-up could still read (above its floor, however many that is at a high rate), so that
# no event is sent twice.
SENT_MEMORY = 5000
# How many ticks back the database catch-up looks: an event whose transaction commits
# after a later one was already sent still gets this many ticks to be found.
LOOKBACK_TICKS = 3
# The catch-up reads the ids above its floor this many at a time (ids only: at 1,000
# events/s two ticks are 10,000 of them, which pages of REPLAY_LIMIT made twenty queries
# per socket and tick), and loads the events it has not sent REPLAY_LIMIT at a time.
CATCH_UP_ID_PAGE = 5000
# A resume lowers the catch-up's floor by at most this many ids: those of LOOKBACK_TICKS
# ticks at 1,000 events/s, so that what commits late is still found, while a tiny `after`
# cannot make the ticks re-read the company's history.
RESUME_LOOKBACK_IDS = 15_000
CLOSE_SERVER_ERROR = 1011


# company id -> (when it was read, the read), per process: see shared_lagging_count.
_lagging_reads: dict[int, tuple[float, asyncio.Future]] = {}


async def shared_lagging_count(company) -> int:
    """The company's lagging boxes figure, read once for every socket of this process that
    asks within half a tick (each socket's tick asks; 100 dashboards made it 20 counts a
    second), so a change still reaches every page by its next tick."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    entry = _lagging_reads.get(company.pk)
    if (
        entry is None
        or now - entry[0] >= settings.LIVE_TICK_SECONDS / 2
        or entry[1].get_loop() is not loop
        or (entry[1].done() and (entry[1].cancelled() or entry[1].exception() is not None))
    ):
        read = database_sync_to_async(selectors.lagging_box_count)
        entry = _lagging_reads[company.pk] = (now, asyncio.ensure_future(read(company=company)))
    return await asyncio.shield(entry[1])


def user_may_listen(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.company_id
        and user.company.is_active
    )


class EventsConsumer(AsyncStrictJsonConsumer):
    async def __call__(self, scope, receive, send):
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await super().__call__(scope, receive, send)
        except (RedisConnectionError, RedisTimeoutError) as problem:
            # A page opening while Redis restarts: Channels could not give the socket its
            # channel. The page reconnects with backoff and resumes, as from a restart.
            logger.warning("A live socket could not open: Redis cannot be reached (%s)", problem)
            await send({"type": "websocket.close", "code": CLOSE_SERVER_ERROR})

    async def connect(self):
        self.company = None
        self.screen_ids: list[int] | None = None
        self.tvbox: TVBox | None = None
        self.user_id: int | None = None
        self.faces = live.GREETING_FACES  # a TV box; a user's page, as their role allows
        self.session_key: str | None = None
        self.scope_groups: list[str] = []
        self.principal_groups: list[str] = []
        self.sent_ids: deque[int] = deque()
        self.sent_set: set[int] = set()
        self.cursor = 0  # the highest event id this socket has sent, or the newest when it opened
        # The cursor at each of the last ticks, the newest last: the catch-up reads above the
        # oldest and, while live copies arrive (`live_heard`), up to the one before the newest.
        self.floors: deque[int] = deque(maxlen=LOOKBACK_TICKS + 1)
        self.live_heard = False
        self.lagging: int | None = None  # the lagging boxes figure the page shows
        self.resumed = False
        self.auth_timer = None
        self.ticker: asyncio.Task | None = None
        # Messages of the scope's groups, from this process's hub (events.hub), in order; at
        # most LIVE_INBOX_MESSAGES of them wait for a page that reads slowly (`hub_deliver`).
        self.inbox: asyncio.Queue = asyncio.Queue(maxsize=settings.LIVE_INBOX_MESSAGES)
        self.inbox_reader: asyncio.Task | None = None
        self.closer: asyncio.Task | None = None
        self.closing = False
        await self.accept()
        # A TV page (?as=tv) is its TV box's, whoever's browser shows it: only its key admits
        # it, so an admin who opens it while signed in sees the lobby's page (the box's
        # screens, greetings and cool-down), not their own dashboard under the TV's look.
        as_tv = parse_qs(self.scope.get("query_string", b"").decode()).get("as") == ["tv"]
        user = self.scope.get("user")
        if user is not None and user.is_authenticated and not as_tv:
            await self.opening(self.start_for_user(user))
            return
        key = self._header_device_key()
        if key:
            await self.opening(self.start_for_key(key))
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

    async def send(self, text_data=None, bytes_data=None, close=False):
        if self.closing and not close:
            return
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            # The client went away (the server says so with an OSError: uvicorn's
            # ClientDisconnected) while something was on its way to it. That is how pages
            # end; its disconnect follows and ends this consumer.
            self.closing = True
            logger.debug("A live page's client left before a frame reached it")

    async def send_json(self, content, close=False):
        await self.send(text_data=await self.encode_json(content), close=close)  # through send above

    async def close(self, code=None, reason=None):
        if self.closing:
            return
        self.closing = True
        await self.send_close(code, reason)

    async def send_close(self, code, reason=None):
        try:
            await super().close(code=code, reason=reason)
        except Exception:  # the client went away first: there is nothing left to close
            logger.debug("Closing a socket whose client is gone", exc_info=True)

    async def opening(self, start):
        """Runs an open path (`start_for_user`, `start_for_key`) up to the hello. A socket that
        does not get that far (refused, revoked, gone, or something failed on the way) leaves
        every group it joined at once: nothing would ever empty its inbox, and its groups'
        subscriptions would outlive it. A failure closes it with 1011: its page reconnects."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            await start
        except asyncio.CancelledError:
            await self.leave_groups()
            raise
        except (RedisConnectionError, RedisTimeoutError) as problem:
            logger.warning("A live socket could not open: Redis cannot be reached (%s)", problem)
            await self.close(code=CLOSE_SERVER_ERROR)
        except (OperationalError, InterfaceError) as problem:
            logger.warning("A live socket could not open: the database cannot be reached (%s)", problem)
            await self.close(code=CLOSE_SERVER_ERROR)
        except Exception:
            logger.exception("A live socket failed to open; closing it so that its page reconnects")
            await self.close(code=CLOSE_SERVER_ERROR)
        if self.closing:
            await self.leave_groups()

    async def start_for_user(self, user):
        if not await self._user_may_listen(user):
            await self.close(code=CLOSE_REFUSED)
            return
        self.company = await self._company_of(user)
        self.user_id = user.pk
        # A viewer's page shows who came, not their face (no "view biometrics").
        self.faces = live.faces_for_user(user)
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        groups = [user_group(user.pk)]
        if self.session_key:
            groups.append(session_group(self.session_key))
        await self.join_principal(groups)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        screen = query.get("screen", [None])[0]
        if screen:
            if not screen.isdigit() or not await self._screen_exists(int(screen)):
                await self.close(code=CLOSE_REFUSED)  # another company's screen reads like a missing one
                return
            self.screen_ids = [int(screen)]
            await self.join_scope([screen_group(int(screen))])
        else:
            await self.join_scope([company_group(self.company.pk)])
        await self.start()

    async def start_for_key(self, key: str):
        device = await self._device_for_key(key)
        if not isinstance(device, TVBox):
            await self.close(code=CLOSE_UNAUTHENTICATED if device is None else CLOSE_REFUSED)
            return
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        self.tvbox = device
        self.company = device.company
        await self.join_principal([device_group(device.kind, device.pk)])
        self.screen_ids = await self._tvbox_screen_ids(device)
        await self.join_scope([screen_group(pk) for pk in self.screen_ids])
        await self.start()

    async def start(self):
        # The principal's groups were joined first: a revocation from now on closes this
        # socket. One that came between the handshake and the joining is caught here.
        if not await self.principal_still_valid():
            await self.close(code=CLOSE_REVOKED)
            return
        await self.send_hello()
        if self.closing:
            return
        # What the groups brought meanwhile waited in the inbox: the page hears `hello` first.
        self.inbox_reader = asyncio.ensure_future(self.read_inbox())
        self.ticker = asyncio.ensure_future(self.run_ticker())

    # Each group is noted as joined the moment it is, and forgotten only once left, so that
    # a failure or a cancellation half-way leaves nothing joined behind (`leave_groups`).
    async def join_principal(self, groups: list[str]):
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.principal_groups.append(group)

    async def join_scope(self, groups: list[str]):
        """Joins the scope's groups through the process's hub (events.hub): one
        subscription per group and process, whatever the number of sockets."""
        hub = live_hub()
        for group in [group for group in self.scope_groups if group not in groups]:
            await hub.leave(group, self)
            self.scope_groups.remove(group)
        for group in groups:
            if group not in self.scope_groups:
                await hub.join(group, self)
                self.scope_groups.append(group)

    async def leave_groups(self):
        hub = live_hub()
        for group in list(self.scope_groups):
            await hub.leave(group, self)
            if group in self.scope_groups:
                self.scope_groups.remove(group)
        for group in list(self.principal_groups):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the socket is gone either way; the layer forgets it in time
                logger.warning("Leaving %s failed", group, exc_info=True)
            if group in self.principal_groups:
                self.principal_groups.remove(group)

    async def disconnect(self, code):
        self.closing = True
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        if self.ticker is not None:
            self.ticker.cancel()
        if self.inbox_reader is not None:
            self.inbox_reader.cancel()
        await self.leave_groups()

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if self.company is None:
            if kind == "auth" and isinstance(content.get("key"), str):
                await self.opening(self.start_for_key(content["key"]))
            else:
                await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if kind == "resume":
            after = content.get("after")
            # One per socket: a page sends it once, after its hello; more would only make
            # the server read the same range again.
            if isinstance(after, int) and not isinstance(after, bool) and after >= 0 and not self.resumed:
                self.resumed = True
                await self.replay(after)
        elif kind == "ping":
            await self.send_json({"type": "pong"})

    async def replay(self, after: int):
        # What commits late above `after` is caught up as on a socket open since then, within
        # the lookback an open socket has (RESUME_LOOKBACK_IDS).
        lowest = max(after, min(self.floors) - RESUME_LOOKBACK_IDS)
        self.floors = deque((min(floor, lowest) for floor in self.floors), maxlen=self.floors.maxlen)
        while not self.closing:
            events, payloads = await self._events_after(after)
            if not events:
                return
            await self.send_events(payloads)
            after = events[-1].pk
            if len(events) < selectors.REPLAY_LIMIT:
                return

    # --- messages of the scope's groups, from the hub ----------------------------------------
    def hub_deliver(self, message):
        if self.closing:
            return
        try:
            self.inbox.put_nowait(message)
        except asyncio.QueueFull:
            self.fell_behind()

    def fell_behind(self):
        """The page reads slower than its scope's messages come, or not at all: rather than
        hold ever more of them for it, or drop some and leave a gap while it stays open, the
        socket closes with 1011 and its page reconnects and resumes after its `complete`.
        Its sends may be stuck on the client: they are abandoned, not waited for."""
        logger.warning(
            "A live page fell %d messages behind; closing its socket so that it reconnects and resumes",
            self.inbox.maxsize,
        )
        self.closing = True  # nothing more is queued or sent to it
        for task in (self.inbox_reader, self.ticker):
            if task is not None:
                task.cancel()
        self.inbox = asyncio.Queue(maxsize=self.inbox.maxsize)  # what it held goes now
        self.closer = asyncio.ensure_future(self.close_behind())

    async def close_behind(self):
        await self.leave_groups()
        await self.send_close(CLOSE_SERVER_ERROR)

    async def read_inbox(self):
        while not self.closing:
            message = await self.inbox.get()
            try:
                if isinstance(message, SharedPush):
                    # New events, a busy page's most frequent message by far, touch no
                    # database: no hop to a thread to close stale connections first.
                    await self.events_push(message)
                else:
                    await self.dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The page reconnects and resumes; a socket that stopped reading its
                # inbox would fall behind for good.
                logger.exception("A live message failed; closing the socket so that its page reconnects")
                await self.close(code=CLOSE_SERVER_ERROR)
                return

    async def events_push(self, push: SharedPush | dict):
        if not isinstance(push, SharedPush):  # the layer's message itself, not through the hub
            push = SharedPush(push)
        self.live_heard = True
        if self.closing:
            return
        if push.frame is None or any(pk in self.sent_set for pk in push.ids):
            # Some were sent already (by the catch-up, or a replay): only the others go.
            await self.send_events(push.events)
            return
        if self.faces == live.GREETING_FACES:
            # A TV box's page: the cards without their snapshot links (`live.shown`).
            await self.send_events(push.events)
            return
        self.remember_sent(push.ids)
        # As encoded once for every socket; a viewer's page without the face links.
        await self.send(text_data=push.frame if self.faces == live.ALL_FACES else push.faceless_frame)

    async def events_stranger_seen(self, message):
        if not self.closing:
            await self.send_json({"type": "stranger_seen", **message["seen"]})

    async def events_corrected(self, message):
        # The page replaces the card it shows, if any, and takes today's arrivals afresh: the
        # wrongly greeted subject may have had no other pass today.
        arrived = await self._arrived_today()
        if not self.closing:
            await self.send_json(
                {"type": "event_corrected", "events": self.shown(message["events"]), "arrived_today": arrived}
            )

    async def principal_revoked(self, message):
        await self.close(code=CLOSE_REVOKED)

    # --- the tick: catch-up from the database and the principal's re-check ----------------------
    async def run_ticker(self):
        loop = asyncio.get_running_loop()
        recheck_at = loop.time() + settings.LIVE_RECHECK_SECONDS
        try:
            while not self.closing:
                await asyncio.sleep(settings.LIVE_TICK_SECONDS)
                try:
                    if loop.time() >= recheck_at:
                        if not await self.principal_still_valid():
                            await self.close(code=CLOSE_REVOKED)
                            return
                        recheck_at = loop.time() + settings.LIVE_RECHECK_SECONDS
                    await self.catch_up()
                    if self.tvbox is None:
                        await self.send_lagging_if_changed()
                except (OperationalError, InterfaceError):
                    # The database is briefly unavailable: the next tick re-checks and catches
                    # up from the same point. No tick is sent meanwhile, so a page left without
                    # any for long reconnects.
                    logger.warning("A live tick could not read the database", exc_info=True)
                    continue
                if not self.closing:
                    await self.send_json({"type": "tick", "last": self.cursor, "complete": min(self.floors)})
        except asyncio.CancelledError:
            raise
        except Exception:
            if self.closing:  # the client left meanwhile: nothing is wrong, nothing to close
                logger.debug("A live tick ended with its socket", exc_info=True)
                return
            # The page reconnects and resumes; a silent socket would fall behind for good.
            logger.exception("The live tick failed; closing the socket so that its page reconnects")
            await self.close(code=CLOSE_SERVER_ERROR)

    async def catch_up(self):
        self.floors.append(self.cursor)
        after = min(self.floors)
        upto = self.floors[-2] if self.live_heard and len(self.floors) > 1 else None
        self.live_heard = False
        # The ids sent, copied here on the loop, where they change (`remember_sent`).
        if upto is not None and await self._sent_all(after, upto, tuple(self.sent_ids)):
            return
        while not self.closing:
            ids, more, payloads = await self._unsent_after(after, upto)
            if payloads:
                await self.send_events(payloads)
            if not more:
                if ids:
                    self.cursor = max(self.cursor, ids[-1])
                return
            after = ids[-1]

    async def send_events(self, payloads: list[dict]):
        fresh = [p for p in payloads if p["id"] not in self.sent_set]
        if not fresh or self.closing:
            return
        self.remember_sent([p["id"] for p in fresh])
        await self.send_json({"type": "events", "events": self.shown(fresh)})

    def shown(self, payloads: list[dict]) -> list[dict]:
        return live.shown(payloads, self.faces)

    def remember_sent(self, ids: list[int]):
        for pk in ids:
            self.sent_ids.append(pk)
            self.sent_set.add(pk)
            self.cursor = max(self.cursor, pk)
        self.forget_sent()

    def forget_sent(self):
        """Forgets the oldest ids sent beyond SENT_MEMORY, but none the catch-up may read
        again: above its floor (the cursor of LOOKBACK_TICKS ticks ago) are as many events
        as arrived in those ticks: at 1,000 events/s, three times SENT_MEMORY."""
        floor = min(self.floors, default=0)
        while len(self.sent_ids) > SENT_MEMORY and self.sent_ids[0] <= floor:
            self.sent_set.discard(self.sent_ids.popleft())

    async def send_lagging_if_changed(self):
        """A box starts or stops lagging with no event to tell (it falls behind as time
        passes, and catches up by a heartbeat), so each tick counts the lagging boxes again
        and tells the page when the figure changed."""
        lagging = await self._lagging()
        if lagging != self.lagging and not self.closing:
            self.lagging = lagging
            await self.send_json({"type": "devices", "lagging": lagging})

    async def send_hello(self):
        hello = await self._hello()
        self.lagging = hello["devices"]["lagging"]
        self.cursor = hello.pop("newest")
        self.floors.append(self.cursor)
        hello["complete"] = self.cursor
        await self.send_json(hello)

    # --- database ------------------------------------------------------------------------------
    @database_sync_to_async
    def _user_may_listen(self, user) -> bool:
        return user_may_listen(user)

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

    async def _lagging(self) -> int:
        return await shared_lagging_count(self.company)

    @database_sync_to_async
    def _tvbox_screen_ids(self, tvbox: TVBox) -> list[int]:
        return list(tvbox.screens.values_list("pk", flat=True))

    async def principal_still_valid(self) -> bool:
        """Whether what the socket was opened with still admits it; a TV box whose screens
        changed moves to its new screens' groups."""
        if self.tvbox is not None:
            screen_ids = await self._tvbox_current_screens()
            if screen_ids is None:
                return False
            if sorted(screen_ids) != sorted(self.screen_ids or []):
                self.screen_ids = screen_ids
                await self.join_scope([screen_group(pk) for pk in screen_ids])
            return True
        return await self._session_still_valid()

    @database_sync_to_async
    def _tvbox_current_screens(self) -> list[int] | None:
        tvbox = (
            TVBox.objects.for_company(self.company)
            .filter(
                pk=self.tvbox.pk,
                key_hash=self.tvbox.key_hash,
                key_revoked_at__isnull=True,
                company__is_active=True,
            )
            .first()
        )
        return None if tvbox is None else list(tvbox.screens.values_list("pk", flat=True))

    @database_sync_to_async
    def _session_still_valid(self) -> bool:
        if not self.session_key:
            return False
        # A fresh read of the session: logged out (deleted), expired, or no longer matching
        # the user's password (Django's session hash) all answer an anonymous user.
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=self.session_key)
        user = auth.get_user(SimpleNamespace(session=store))
        return user.pk == self.user_id and user_may_listen(user) and user.company_id == self.company.pk

    @database_sync_to_async
    def _events_after(self, after: int):
        events = selectors.events_after(company=self.company, screen_ids=self.screen_ids, after_id=after)
        return events, self._payloads(events)

    @database_sync_to_async
    def _sent_all(self, after: int, upto: int, sent: tuple[int, ...]) -> bool:
        """Whether this socket sent every event of its scope with an id in (after, upto]: the
        database's count and sum of those ids against the same of the ids it sent, which
        holds every id sent above the catch-up's floor (`forget_sent`). Both agreeing while
        one were missing would take events deleted meanwhile, after being sent, whose ids
        sum to exactly the missing ones'."""
        ids = sorted(sent)  # sent in nearly increasing order: sorting is a pass over them
        low, high = bisect_right(ids, after), bisect_right(ids, upto)
        stored = selectors.id_count_and_sum(
            company=self.company, screen_ids=self.screen_ids, after_id=after, upto_id=upto
        )
        return stored == (high - low, sum(ids[low:high]))

    @database_sync_to_async
    def _unsent_after(self, after: int, upto: int | None = None) -> tuple[list[int], bool, list[dict]]:
        """(the ids in scope read above `after`, whether there may be more above them, the
        unsent ones among them as payloads, at most REPLAY_LIMIT)."""
        scope = selectors.events_in_scope(company=self.company, screen_ids=self.screen_ids)
        if upto is not None:
            scope = scope.filter(id__lte=upto)
        ids = list(scope.filter(id__gt=after).order_by("id").values_list("id", flat=True)[:CATCH_UP_ID_PAGE])
        more = len(ids) == CATCH_UP_ID_PAGE
        unsent = [pk for pk in ids if pk not in self.sent_set]
        if len(unsent) > selectors.REPLAY_LIMIT:  # the rest on the next round, from the last one loaded
            unsent = unsent[: selectors.REPLAY_LIMIT]
            ids = [pk for pk in ids if pk <= unsent[-1]]
            more = True
        if not unsent:
            return ids, more, []
        events = list(scope.filter(id__in=unsent).order_by("id"))
        return ids, more, self._payloads(events)

    def _payloads(self, events) -> list[dict]:
        photos = selectors.first_photo_ids(company=self.company, events=events)
        return [event_payload(event, photos.get(event.subject_id)) for event in events]

    @database_sync_to_async
    def _arrived_today(self) -> list[int]:
        return selectors.arrived_today(company=self.company, screen_ids=self.screen_ids)

    @database_sync_to_async
    def _hello(self) -> dict:
        scope = selectors.events_in_scope(company=self.company, screen_ids=self.screen_ids)
        hello = {
            "type": "hello",
            "company": self.company.name,
            "time_zone": self.company.time_zone,
            "screens": self.screen_ids,
            "arrived_today": selectors.arrived_today(company=self.company, screen_ids=self.screen_ids),
            "devices": selectors.device_counts(company=self.company),
            # A page that just opened shows today's latest; one that reconnects resumes instead.
            "recent": self.shown(
                self._payloads(
                    selectors.recent_today(company=self.company, screen_ids=self.screen_ids, limit=RECENT_ON_OPEN)
                )
            ),
            "tick_seconds": settings.LIVE_TICK_SECONDS,
            "newest": scope.order_by("-id").values_list("id", flat=True).first() or 0,
        }
        # The device figures already count every event up to here: a page replaying those
        # (today's latest, a resume) must not count their status changes again.
        hello["devices_as_of"] = hello["newest"]
        if self.tvbox is not None:
            hello["tv"] = {
                "name": self.tvbox.name,
                "theme": self.tvbox.theme,
                "cooldown_seconds": self.tvbox.greet_again_after * 60,
                "greetings": {
                    "employee": self.tvbox.greeting_employee,
                    "visitor": self.tvbox.greeting_visitor,
                    "vip": self.tvbox.greeting_vip,
                },
            }
        return hello
