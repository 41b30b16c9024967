"""One channel-layer subscription per live group per process, shared by its sockets.

Without it, every live socket of a process subscribes to its company's (or screen's) group
on its own, and every message of the group is taken off the layer, decoded and dispatched
once per socket, through Channels' receive loop, before the socket sends the same frame as
its neighbours. With 100 dashboards on one company that is 100 receives of every post.

A process's hub (one per event loop) instead subscribes once per group, on a channel of its
own, takes each message off the layer once, and hands it to the sockets of that process
that joined the group: each socket has an inbox, emptied in order by a task of its own,
so a slow client only delays itself. New events (`events.push`) are wrapped once in a
`SharedPush`, which decodes the frame and strips the face links for viewers' pages at most
once per message, whatever the number of sockets. Other messages go to the socket's
handler as they came.

Scoping is the groups' own: a socket is handed only the messages of the groups it joined,
which `events.consumers` decides from its authenticated identity. The last socket of a
group leaving unsubscribes the process from it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

from events.payload import without_faces

logger = logging.getLogger(__name__)


class Member(Protocol):
    def hub_deliver(self, message: Any) -> None:
        """Takes a message of a group it joined; must not block (it queues)."""


class SharedPush:
    """An `events.push` message (`events.live.events_push_message`), as every socket of the
    process shares it: the frame as encoded by the publisher, and, decoded at most once,
    its events and the frame without face links (a viewer's page)."""

    __slots__ = ("_events", "_faceless_frame", "frame", "ids")

    def __init__(self, message: dict):
        self.ids: list[int] = message.get("ids") or [shown["id"] for shown in message.get("events", [])]
        self.frame: str | None = message.get("frame")
        # From a process not yet upgraded (a rolling deploy), the events come decoded.
        self._events: list[dict] | None = None if self.frame is not None else message.get("events", [])
        self._faceless_frame: str | None = None

    @property
    def events(self) -> list[dict]:
        if self._events is None:
            self._events = json.loads(self.frame)["events"]
        return self._events

    @property
    def faceless_frame(self) -> str:
        if self._faceless_frame is None:
            self._faceless_frame = json.dumps(
                {"type": "events", "events": [without_faces(shown) for shown in self.events]}
            )
        return self._faceless_frame


def shared(message: dict) -> Any:
    return SharedPush(message) if message.get("type") == "events.push" else message


class _Group:
    __slots__ = ("channel", "members", "name", "reader")

    def __init__(self, name: str, channel: str):
        self.name = name
        self.channel = channel
        self.members: set[Member] = set()
        self.reader: asyncio.Task | None = None


class LiveHub:
    def __init__(self, layer):
        self.layer = layer
        self.groups: dict[str, _Group] = {}
        self.lock = asyncio.Lock()  # joins and leaves, so that a group is subscribed once

    async def join(self, name: str, member: Member) -> None:
        async with self.lock:
            group = self.groups.get(name)
            if group is None:
                channel = await self.layer.new_channel(prefix="live-hub.")
                await self.layer.group_add(name, channel)
                group = _Group(name, channel)
                group.reader = asyncio.ensure_future(self._read(group))
                self.groups[name] = group
            group.members.add(member)

    async def leave(self, name: str, member: Member) -> None:
        async with self.lock:
            group = self.groups.get(name)
            if group is None or member not in group.members:
                return
            group.members.discard(member)
            if group.members:
                return
            del self.groups[name]
        # Outside the lock: another socket joining meanwhile subscribes afresh on a new channel.
        group.reader.cancel()  # the pub/sub layer unsubscribes a channel whose receive is cancelled
        try:
            await self.layer.group_discard(name, group.channel)
        except Exception:  # nobody here listens any more; the layer forgets it in time
            logger.warning("Leaving %s failed", name, exc_info=True)

    def members_of(self, name: str) -> set[Member]:
        group = self.groups.get(name)
        return set(group.members) if group is not None else set()

    async def _read(self, group: _Group) -> None:
        while True:
            try:
                message = await self.layer.receive(group.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # the layer recovers by itself; the sockets' ticks catch up meanwhile
                logger.warning("Reading %s from the channel layer failed", group.name, exc_info=True)
                await asyncio.sleep(1)
                continue
            message = shared(message)
            for member in list(group.members):
                try:
                    member.hub_deliver(message)
                except Exception:  # one socket's trouble is not its neighbours'
                    logger.exception("Handing a live message to a socket failed")


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveHub] = weakref.WeakKeyDictionary()


def live_hub() -> LiveHub:
    """This process's hub (one per event loop, on the current default channel layer)."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = LiveHub(layer)
    return hub
