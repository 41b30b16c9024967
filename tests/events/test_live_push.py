"""New events reaching a socket through the channel layer: the frame encoded once by the
broadcasting process is sent as it is, what the socket sent already is never repeated, and
a message from a process of the previous release still gets through."""

from __future__ import annotations

import asyncio
import json
from collections import deque

import pytest

from events.consumers import EventsConsumer
from events.live import events_push_message


def a_socket() -> tuple[EventsConsumer, list]:
    consumer = EventsConsumer()
    consumer.sent_ids, consumer.sent_set, consumer.floors = deque(), set(), deque([0])
    consumer.cursor, consumer.closing, consumer.live_heard, consumer.faces = 0, False, False, True
    frames: list = []

    async def base_send(message):  # what goes to the server's websocket
        frames.append(json.loads(message["text"]))

    consumer.base_send = base_send
    return consumer, frames


def test_a_new_events_frame_goes_out_as_encoded_and_nothing_twice():
    consumer, frames = a_socket()
    asyncio.run(consumer.events_push(events_push_message([{"id": 1}, {"id": 2}])))
    asyncio.run(consumer.events_push(events_push_message([{"id": 2}, {"id": 3}])))  # 2 came already
    asyncio.run(consumer.events_push(events_push_message([{"id": 3}])))
    assert frames == [
        {"type": "events", "events": [{"id": 1}, {"id": 2}]},
        {"type": "events", "events": [{"id": 3}]},
    ]
    assert consumer.cursor == 3 and consumer.live_heard


def test_events_from_a_process_of_the_previous_release_still_reach_the_page():
    consumer, frames = a_socket()
    asyncio.run(consumer.events_push({"type": "events.push", "events": [{"id": 5}]}))
    assert frames == [{"type": "events", "events": [{"id": 5}]}]


@pytest.mark.django_db
def test_a_ticks_count_finds_a_range_complete_only_when_every_event_in_it_was_sent(tenant_a, tenant_b):
    from tests.factories import EventFactory

    ids = []
    for _ in range(5):
        ids.append(EventFactory(company=tenant_a.company).pk)
        EventFactory(company=tenant_b.company)  # another company's, between ours: never counted
    consumer, _frames = a_socket()
    consumer.company, consumer.screen_ids = tenant_a.company, None
    sent_all = EventsConsumer.__dict__["_sent_all"].func  # as the tick's thread runs it

    after, upto = ids[0], ids[3]  # the range holds ids[1:4]
    assert sent_all(consumer, after, upto, (ids[3], ids[1], ids[2], ids[4]))  # any order, more above
    assert not sent_all(consumer, after, upto, (ids[1], ids[3]))  # ids[2] missing
    assert not sent_all(consumer, after, upto, (ids[1], ids[2]))  # the range's last missing
    assert sent_all(consumer, upto, upto, ())  # an empty range
