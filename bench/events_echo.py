"""The calibration server of the live-latency curve (bench/events_bench.py): a bare ASGI app,
no Django, no Redis, one process, that only echoes. `POST /api/v1/device/events` with
`{"events": [...]}` sends the items as they came, as `{"type": "events", "events": [...]}`, to
every open websocket, encoded once; every websocket path is accepted and greeted with
`{"type": "hello"}`. What the curve measures through it is the cost of the measuring
clients themselves (the sender, the dashboards' processes) and of uvicorn's websocket
frames: the floor below which no server could go on this machine.
"""

import json

sockets: set = set()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps({"type": "hello"})})
        sockets.add(send)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sockets.discard(send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        items = json.loads(body)["events"]
        text = json.dumps({"type": "events", "events": items})
        for socket_send in list(sockets):
            try:
                await socket_send({"type": "websocket.send", "text": text})
            except Exception:  # a socket closing meanwhile
                sockets.discard(socket_send)
        status, answer = 200, {"created": len(items), "errors": 0, "results": []}
    else:
        status, answer = 405, {}
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
