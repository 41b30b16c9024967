from channels.generic.websocket import JsonWebsocketConsumer


class PingConsumer(JsonWebsocketConsumer):
    """Answers `{"type": "ping"}` with `{"type": "pong", "user": ...}` for signed-in admins.

    Lets a deployment check that websockets pass its proxy and carry the session, before
    any dashboard depends on them.
    """

    def connect(self):
        if not self.scope["user"].is_authenticated:
            self.close(code=4401)
            return
        self.accept()

    def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            self.send_json({"type": "pong", "user": self.scope["user"].get_username()})
