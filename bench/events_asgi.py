"""ASGI entry of the events benchmark's server (bench/events_bench.py serves it with uvicorn
and DJANGO_SETTINGS_MODULE=bench.events_settings): the product's application, plus the
relay baseline of the live-latency curve, never mounted by the product.

The relay is what a bare Channels deployment does with the same messages through the same
Redis: `POST /bench/relay/post` with `{"events": [...]}` (no database, no authentication)
makes one `group_send` of the items as they came, and every `/bench/relay/` socket, a plain
`AsyncWebsocketConsumer` in that group, sends them on as `{"type": "events", "events": [...]}`.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from kangaroo.asgi import application as product

RELAY_GROUP = "bench.relay"


class RelayConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(RELAY_GROUP, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"type": "hello"}))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(RELAY_GROUP, self.channel_name)

    async def relay(self, message):
        await self.send(text_data=json.dumps({"type": "events", "events": message["events"]}))


relay_consumer = RelayConsumer.as_asgi()


async def relay_post(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    items = json.loads(body)["events"]
    await get_channel_layer().group_send(RELAY_GROUP, {"type": "relay", "events": items})
    answer = json.dumps({"created": len(items), "errors": 0, "results": []}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


async def application(scope, receive, send):
    path = scope.get("path", "")
    if scope["type"] == "websocket" and path == "/bench/relay/":
        return await relay_consumer(scope, receive, send)
    if scope["type"] == "http" and path == "/bench/relay/post":
        return await relay_post(scope, receive, send)
    return await product(scope, receive, send)
