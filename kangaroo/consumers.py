"""Websocket plumbing shared by every socket the server offers: close codes, the Origin
check, and JSON frames.

Close codes: the one list (the README's "Events and the live pages" repeats it), with what
a client should do on each.

- 1000 normal: the client closed.
- 1011 server error, 1012 restarting: reconnect with backoff, then resume. A live socket
  also closes with 1011 when its page fell LIVE_INBOX_MESSAGES messages behind (it stopped
  reading, or reads too slowly): resuming brings it what it missed, from the database.
- 4400 bad message: a frame that is not a JSON object. A client bug: reconnecting would
  only send the same again.
- 4401 unauthenticated: no session and no key, an unknown key, or no key within 10 s.
  Sign in again, or ask for the key; do not retry as is.
- 4403 refused: authenticated but not allowed here (not company staff, another company's
  screen, a key that is not a TV box's). Stop.
- 4410 revoked: what the socket was opened with has ended: its session logged out; its
  user was deactivated or deleted or had the password changed or set; its device key was
  rotated or revoked or its device deleted. Stop; sign in again, or ask for the new key.

A refused handshake (a browser Origin that is not ours) never becomes a websocket: it is
answered with HTTP 403, which a browser reports as close code 1006.
"""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_REFUSED = 4403
CLOSE_REVOKED = 4410

_WS_TO_HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _normalise(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of "scheme://host[:port]", or None if it is not one."""
    scheme, sep, rest = origin.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or not rest or "/" in rest:
        return None
    host, port = split_domain_port(rest)
    if not host:
        return None
    if port == "":
        return scheme, host, _DEFAULT_PORTS[scheme]
    if not port.isdigit():
        return None
    return scheme, host, int(port)


def origin_allowed(scope) -> bool:
    """Whether a websocket handshake's Origin may use the credentials it carries.

    Browsers always send Origin on a websocket, and they also send the session cookie: a
    page of another site must not open a socket in the admin's name (cross-site websocket
    hijacking). So a browser's origin must be exactly ours, scheme, host and port, the
    way Django's CSRF check compares them: the origin the socket was opened on (its own
    scheme and Host header, the host one of ALLOWED_HOSTS), or one of
    CSRF_TRUSTED_ORIGINS. Devices are not browsers: they send no Origin and authenticate
    with their key instead.
    """
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    parsed = _normalise(origin.strip())
    if parsed is None:
        return False
    scheme = _WS_TO_HTTP.get(scope.get("scheme", "ws"), "http")
    host_header = _header(scope, b"host") or ""
    own = _normalise(f"{scheme}://{host_header}")
    if own is not None and parsed == own and validate_host(own[1], settings.ALLOWED_HOSTS):
        return True
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        trusted_scheme, _, trusted_netloc = trusted.partition("://")
        if "*" in trusted_netloc:
            # Django's form: "https://*.example.com" trusts every subdomain, on that scheme.
            if parsed[0] == trusted_scheme.lower() and is_same_domain(
                origin.strip().partition("://")[2].lower(), trusted_netloc.lstrip("*").lower()
            ):
                return True
        elif _normalise(trusted) == parsed:
            return True
    return False


class SameOriginValidator:
    """ASGI middleware: refuses (HTTP 403) a websocket handshake whose Origin is not ours."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)


class StrictJsonMixin:
    """A frame that is not a JSON object closes the socket with 4400 (CLOSE_BAD_MESSAGE)
    instead of raising, which would drop the connection without a code."""

    @staticmethod
    def parse_frame(text_data, bytes_data):
        if text_data is None:
            return None
        try:
            content = json.loads(text_data)
        except ValueError:
            return None
        return content if isinstance(content, dict) else None


class AsyncStrictJsonConsumer(StrictJsonMixin, AsyncJsonWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        content = self.parse_frame(text_data, bytes_data)
        if content is None:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        await self.receive_json(content, **kwargs)


class PingConsumer(StrictJsonMixin, JsonWebsocketConsumer):
    """Answers `{"type": "ping"}` with `{"type": "pong", "user": ...}` for signed-in admins.

    Lets a deployment check that websockets pass its proxy and carry the session, before
    any dashboard depends on them.
    """

    def connect(self):
        if not self.scope["user"].is_authenticated:
            self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.accept()

    def receive(self, text_data=None, bytes_data=None, **kwargs):
        content = self.parse_frame(text_data, bytes_data)
        if content is None:
            self.close(code=CLOSE_BAD_MESSAGE)
            return
        if content.get("type") == "ping":
            self.send_json({"type": "pong", "user": self.scope["user"].get_username()})
