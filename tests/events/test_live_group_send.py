"""`kangaroo.channel_layers.group_send_many`: every message reaches its group, a group's in
the order given, on the Redis pub/sub layer (one Redis or several shards) and in memory."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers, get_channel_layer

from kangaroo.channel_layers import group_send_many

GROUPS = ["company.1", "screen.3", "screen.4", "company.2"]


def messages() -> list[tuple[str, dict]]:
    # Interleaved, several per group, as a flush of merged posts sends them.
    return [(group, {"type": "events.push", "n": n, "group": group}) for n in range(5) for group in GROUPS]


async def sent_and_received() -> dict[str, list[int]]:
    layer = get_channel_layer()
    channels = {}
    for group in GROUPS:
        channels[group] = await layer.new_channel()
        await layer.group_add(group, channels[group])
    await group_send_many(layer, messages())
    received = {}
    for group, channel in channels.items():
        got = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(5)]
        assert {message["group"] for message in got} == {group}
        received[group] = [message["n"] for message in got]
        with pytest.raises(asyncio.TimeoutError):  # and nothing of another group
            await asyncio.wait_for(layer.receive(channel), 0.1)
    await layer.flush()
    return received


def layer_config(request, layer: str) -> dict:
    if layer == "memory":
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    url = request.getfixturevalue("private_redis").url
    # Pub/sub channels are the same in every database of a Redis: three URLs make three shards.
    hosts = [f"{url[:-2]}/{n}" for n in range({"redis": 1, "redis-3-shards": 3}[layer])]
    return {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": hosts}}


@pytest.mark.parametrize("layer", ["redis", "redis-3-shards", "memory"])
def test_each_group_gets_its_messages_in_order(settings, request, layer):
    settings.CHANNEL_LAYERS = {"default": layer_config(request, layer)}
    channel_layers.backends.clear()
    try:
        received = asyncio.run(sent_and_received())
    finally:
        channel_layers.backends.clear()
    assert received == {group: [0, 1, 2, 3, 4] for group in GROUPS}
