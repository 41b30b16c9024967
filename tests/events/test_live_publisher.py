"""The live publisher (`events.live.Publisher`): a request hands its messages over and goes
on; the server's loop sends them in order, merging what was queued meanwhile, and a failed
send neither raises nor stops the ones after it."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import transaction

from events import live, services
from events.models import Event, EventKind
from tests.events.conftest import event as item


@pytest.fixture(autouse=True)
def memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def stored(pk: int, company_id: int = 1, screen_id: int | None = None) -> Event:
    """An event as ingest hands it to the hook (no database needed to show it)."""
    at = datetime(2026, 3, 2, 8, 58, tzinfo=UTC)
    return Event(
        pk=pk,
        company_id=company_id,
        kind=EventKind.STRANGER,
        device_kind="box",
        device_id=1,
        device_name="Lobby box",
        screen_id=screen_id,
        happened_at=at,
        received_at=at,
    )


async def listening(*groups: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


async def received(channel: str, count: int) -> list[dict]:
    layer = get_channel_layer()
    messages = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]
    with pytest.raises(asyncio.TimeoutError):  # and nothing more
        await asyncio.wait_for(layer.receive(channel), 0.2)
    return messages


def test_a_request_does_not_wait_for_the_publish_and_what_it_queued_meanwhile_goes_out_in_order_merged(
    monkeypatch,
):
    send = live._send_to_groups
    held = []

    async def scenario():
        company = await listening(live.company_group(1))
        screen = await listening(live.screen_group(7))
        gate = asyncio.Event()

        async def first_one_held(layer, by_group):
            if not held:
                held.append(by_group)
                await gate.wait()  # Redis slow to answer the first publish
            await send(layer, by_group)

        monkeypatch.setattr(live, "_send_to_groups", first_one_held)
        # Each call is a request's worker thread handing its events over; none waits for
        # the held publish.
        await sync_to_async(live.broadcast)([stored(1, screen_id=7)])
        await asyncio.sleep(0.05)
        assert held  # the first one is being sent
        await sync_to_async(live.broadcast)([stored(2), stored(3, screen_id=7)])
        await sync_to_async(live.broadcast)([stored(4)])
        await sync_to_async(live.broadcast_corrected)([stored(2)])
        await sync_to_async(live.broadcast)([stored(5, screen_id=7)])
        gate.set()
        await live.PUBLISHER.idle()
        return await received(company, 4), await received(screen, 3)

    to_company, to_screen = asyncio.run(scenario())
    assert [(m["type"], m.get("ids")) for m in to_company] == [
        ("events.push", [1]),
        ("events.push", [2, 3, 4]),  # queued while the first was held: one message
        ("events.corrected", None),  # after the events it is about, before the later ones
        ("events.push", [5]),
    ]
    assert [m["ids"] for m in to_screen] == [[1], [3], [5]]
    # The frame is the page's `events` frame, as one json.dumps of the payloads would write it.
    shown = [live.event_payload(stored(n, screen_id=7 if n == 3 else None)) for n in (2, 3, 4)]
    assert to_company[1]["frame"] == json.dumps({"type": "events", "events": shown})
    assert [e["id"] for e in json.loads(to_screen[1]["frame"])["events"]] == [3]


def test_a_failing_publish_is_logged_and_the_next_ones_still_go(monkeypatch, caplog):
    send = live._send_to_groups
    failures = []

    async def redis_blinks_once(layer, by_group):
        if not failures:
            failures.append(by_group)
            raise ConnectionError("Redis is restarting")
        await send(layer, by_group)

    async def scenario():
        channel = await listening(live.company_group(1))
        monkeypatch.setattr(live, "_send_to_groups", redis_blinks_once)
        await sync_to_async(live.broadcast)([stored(1)])  # does not raise into the request
        await live.PUBLISHER.idle()
        await sync_to_async(live.broadcast)([stored(2)])
        await live.PUBLISHER.idle()
        return await received(channel, 1)

    # A Redis outage loses nothing (dashboards catch up), so it is a warning, not an error.
    with caplog.at_level(logging.WARNING, logger="events.live"):
        [message] = asyncio.run(scenario())
    assert failures
    assert message["ids"] == [2]
    assert "Broadcasting 1 event(s) failed" in caplog.text


def test_a_large_merge_is_split_into_messages_of_at_most_a_batch(monkeypatch):
    monkeypatch.setattr(live, "MESSAGE_MAX_EVENTS", 3)

    async def scenario():
        channel = await listening(live.company_group(1))
        await sync_to_async(live.broadcast)([stored(n) for n in range(1, 8)])
        await live.PUBLISHER.idle()
        return await received(channel, 3)

    assert [m["ids"] for m in asyncio.run(scenario())] == [[1, 2, 3], [4, 5, 6], [7]]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_published_for_events_whose_transaction_rolls_back(tenant_a, door_a):
    def post_then_fail():
        with transaction.atomic():
            services.event_ingest(device=door_a.box, items=[item("r1", door_a.entrance)])
            raise RuntimeError("the request failed after storing")

    def post():
        services.event_ingest(device=door_a.box, items=[item("c1", door_a.entrance)])

    async def scenario():
        channel = await listening(live.company_group(tenant_a.company.pk))
        with pytest.raises(RuntimeError):
            await sync_to_async(post_then_fail)()
        await sync_to_async(post)()
        await live.PUBLISHER.idle()
        return await received(channel, 1)

    [message] = asyncio.run(scenario())
    committed = Event.objects.for_company(tenant_a.company).get(uid="c1")
    assert message["ids"] == [committed.pk]
    assert not Event.objects.for_company(tenant_a.company).filter(uid="r1").exists()


def test_without_a_server_loop_the_publish_is_done_before_broadcast_returns():
    # A job or a management command: no loop to hand over to, so it publishes itself.
    layer = get_channel_layer()

    async def join():
        channel = await layer.new_channel()
        await layer.group_add(live.company_group(1), channel)
        return channel

    channel = asyncio.run(join())
    live.broadcast([stored(9)])
    message = asyncio.run(asyncio.wait_for(layer.receive(channel), 1))
    assert message["ids"] == [9]
