"""Several group messages sent in one go.

`group_send_many` sends (group, message) pairs in order. On the Redis pub/sub layer (the
production one) the messages bound for one Redis go out as one pipeline: one write and
one read for all of them, where a `group_send` each waits for a round trip of its own. A
post of ten events names its company's group and up to a few screens' groups, so the live
publisher sent three to five publishes per post, one after the other; each is a socket
write that uvloop makes while holding the interpreter lock, and a busy server's profile
showed those writes as a tenth of its samples.

The pipeline goes through the layer's own connection, under the lock its `group_send`
takes, and names each group's channel as the layer does, which reaches into
channels_redis's per-loop layer (the version range of requirements/base.txt; the live
tests on Redis fail if that changes). Any other layer (the in-memory one of the embedded
shape and of tests) gets one `group_send` per message.
"""

from __future__ import annotations

from collections.abc import Sequence

from channels_redis.pubsub import RedisPubSubChannelLayer


async def group_send_many(layer, messages: Sequence[tuple[str, dict]]) -> None:
    """Send each (group, message) to its group; a group's messages arrive in the order given."""
    if not isinstance(layer, RedisPubSubChannelLayer) or len(messages) < 2:
        for group, message in messages:
            await layer.group_send(group, message)
        return
    loop_layer = layer._get_layer()
    by_shard: dict = {}  # a group's channel always lives on the same shard: its order holds
    for group, message in messages:
        channel = loop_layer._get_group_channel_name(group)
        by_shard.setdefault(loop_layer._get_shard(channel), []).append((channel, layer.serialize(message)))
    for shard, published in by_shard.items():
        async with shard._lock:
            shard._ensure_redis()
            pipeline = shard._redis.pipeline(transaction=False)
            for channel, data in published:
                pipeline.publish(channel, data)
            await pipeline.execute()
