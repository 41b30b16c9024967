"""ASGI entry of the events benchmark's server (bench/events_bench.py serves it with uvicorn
and DJANGO_SETTINGS_MODULE=bench.events_settings): the product's application, plus the
relay baseline of the live-latency curve, never mounted by the product.

The relay is what a bare Channels deployment does with the same messages through the same
Redis: `POST /bench/relay/post` with `{"events": [...]}` (no database, no authentication)
makes one `group_send` of the items as they came, and every `/bench/relay/` socket, a plain
`AsyncWebsocketConsumer` in that group, sends them on as `{"type": "events", "events": [...]}`.

The fan-out alone (`fanout` mode): `POST /bench/fanout/post` with `{"company": <id>, "events":
[...]}` (no database, no authentication) publishes the items, in the shape and size of the
product's event payload, to the company's group exactly as the product's broadcast does
(`events.live.events_push_message`), and the product's own dashboards (`/ws/events/`) take
them from there: the product's side from the channel layer to the sockets, without ingest.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from kangaroo.asgi import application as product  # sets Django up first

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


async def _body(receive) -> dict:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return json.loads(body)


async def _answer(send, items: list) -> None:
    answer = json.dumps({"created": len(items), "errors": 0, "results": []}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


async def relay_post(scope, receive, send):
    items = (await _body(receive))["events"]
    await get_channel_layer().group_send(RELAY_GROUP, {"type": "relay", "events": items})
    await _answer(send, items)


def _shown(item: dict) -> dict:
    """An item in the shape, and about the size, of the event payload a dashboard gets."""
    subject = item.get("subject_id")
    return {
        "id": item["id"],
        "kind": "recognized" if subject else "stranger",
        "happened_at": item["happened_at"],
        "received_at": item["happened_at"],
        "subject": subject
        and {
            "id": subject,
            "name": f"Person {subject}",
            "type": "employee",
            "job_number": f"J{subject:06d}",
            "photo_url": "/live/image/" + "x" * 96 + "/",
        },
        "device_kind": "box",
        "device_id": 1,
        "device_name": "Lobby box",
        "screen": item.get("screen_id"),
        "direction": "both",
        "confidence": item.get("confidence"),
        "distance": None,
        "snapshot_url": None,
        "unknown_person": None,
        "corrected": False,
    }


async def fanout_post(scope, receive, send):
    from events.live import company_group, events_push_message  # once Django is set up

    body = await _body(receive)
    items = body["events"]
    message = events_push_message([_shown(item) for item in items])
    await get_channel_layer().group_send(company_group(body["company"]), message)
    await _answer(send, items)


async def application(scope, receive, send):
    path = scope.get("path", "")
    if scope["type"] == "websocket" and path == "/bench/relay/":
        return await relay_consumer(scope, receive, send)
    if scope["type"] == "http" and path == "/bench/relay/post":
        return await relay_post(scope, receive, send)
    if scope["type"] == "http" and path == "/bench/fanout/post":
        return await fanout_post(scope, receive, send)
    return await product(scope, receive, send)
