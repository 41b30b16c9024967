"""Request ids and the shape of log lines.

Every HTTP request gets an id: the `X-Request-ID` its proxy set, if that is a plausible id,
else a new one. The response carries it back in the same header, API error envelopes name it
(`request_id`), and every log line written while the request runs carries it, as do the
lines of the jobs it queued (`kangaroo.jobs` hands it to the job) and one access line per
request, written here rather than by uvicorn. A websocket connection gets an id the same way,
for the lines its consumer writes. An operator who has the id from a client's error report
finds everything that request did, on every process.

The id lives in a context variable: asgiref's `sync_to_async` and `async_to_sync` copy the
context into the thread they run in, and asyncio tasks inherit it, so it follows a request
and a socket wherever their code runs. A plain thread starts empty: `bound()` sets it there.

Two line shapes (`LOG_FORMAT`): a plain one for a person reading a terminal (the embedded
default), and one JSON object per line for a log collector. The JSON formatter is written by
hand rather than taken from python-json-logger: it writes an allow-list of fields, where that
library writes every attribute a caller passed in `extra`, and Django passes the request
itself (whose text holds the query string) with each of its `django.request` lines.

No line may carry a secret: tokens in URL paths (a password-reset or a visitor's link) are
written as `***`, in the access line and in Django's own request warnings.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.functional import SimpleLazyObject, empty

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is taken as it is when it looks like an id (nginx's $request_id, a UUID, a
# trace id); anything else, which could smuggle text into log lines, is replaced.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# URL parameters that are secrets: they are written as this in every logged path.
SECRET_URL_PARAMETERS = frozenset({"token"})
MASK = "***"

access_logger = logging.getLogger("kangaroo.access")


@dataclass(frozen=True)
class LogContext:
    request_id: str
    request: Any = None  # the HttpRequest, read for the path and the requester when a line is written
    path: str | None = None  # a websocket's path (it has no HttpRequest)


_context: ContextVar[LogContext | None] = ContextVar("log_context", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(raw: str | None) -> str:
    """The id a proxy sent, if it is one; otherwise a new id."""
    if raw and REQUEST_ID_PATTERN.fullmatch(raw):
        return raw
    return new_request_id()


def current_request_id() -> str | None:
    context = _context.get()
    return context.request_id if context is not None else None


@contextmanager
def bound(request_id: str | None, *, path: str | None = None) -> Iterator[None]:
    """Lines written inside carry `request_id` (a job queued by a request, a websocket);
    with None, they carry none, whatever an outer block set."""
    token = _context.set(LogContext(request_id, path=path) if request_id else None)
    try:
        yield
    finally:
        _context.reset(token)


# The paths whose next segment is a secret (a visitor's link, a host's settings link, a
# signed image link, a password reset), masked even when the path matched no route (no
# trailing slash, a made-up suffix): such requests are logged too.
SECRET_PATH_PREFIXES = re.compile(r"^(/(?:visit|host-settings|live/image|reset/[^/]+)/)[^/]+")


def masked_path(request) -> str:
    """The request's path with the values of secret URL parameters replaced by `***`."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name, value in match.kwargs.items():
            if name in SECRET_URL_PARAMETERS and isinstance(value, str) and value:
                path = path.replace(value, MASK)
    return SECRET_PATH_PREFIXES.sub(rf"\1{MASK}", path)


def requester(request) -> dict[str, Any]:
    """Who made the request, once authentication has said so: company and user, API key or
    device. Reads only what is already loaded: a session not yet looked at stays unread."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped if user._wrapped is not empty else None
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    fields: dict[str, Any] = {"company_id": getattr(user, "company_id", None)}
    device = getattr(user, "device", None) if getattr(user, "is_device", False) else None
    api_key = getattr(user, "api_key", None)
    if device is not None:
        fields["device"] = f"{device.kind}:{device.pk}"
    elif api_key is not None:
        fields["api_key_id"] = api_key.pk
    else:
        fields["user_id"] = user.pk
    return fields


# --- The request's middleware -------------------------------------------------------------


class RequestIdMiddleware:
    """First in MIDDLEWARE: names the request, answers its id, writes its access line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # Django's own request lines, written after this returns, find it here
        token = _context.set(LogContext(request_id, request=request))
        started = time.perf_counter()
        status = 500  # unless a response comes back
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            status = response.status_code
            return response
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            access_logger.info(
                "%s %s %s %.1f ms",
                request.method,
                masked_path(request),
                status,
                duration_ms,
                extra={"status": status, "duration_ms": duration_ms},
            )
            _context.reset(token)


class WebsocketRequestId:
    """ASGI middleware: a websocket connection's id (its handshake's `X-Request-ID` if valid,
    else a new one) on every line its consumer writes while it is open."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.application(scope, receive, send)
        header = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.lower().encode())
        request_id = accepted_request_id(header.decode("latin-1") if header else None)
        with bound(request_id, path=scope.get("path")):
            return await self.application(scope, receive, send)


# --- Logging configuration ------------------------------------------------------------------


def _line_context(record: logging.LogRecord) -> dict[str, Any]:
    context = _context.get()
    request = context.request if context is not None else None
    request_id = context.request_id if context is not None else None
    if request is None:
        # Django writes a failed request's line after the middleware has returned, with the request.
        request = getattr(record, "request", None)
        request_id = request_id or getattr(request, "request_id", None)
    fields: dict[str, Any] = {"request_id": request_id}
    if request is not None and hasattr(request, "path"):
        fields.update(requester(request), path=masked_path(request), method=request.method)
    elif context is not None and context.path:
        fields["path"] = context.path
    return fields


class ContextFilter(logging.Filter):
    """On a handler: stamps each record with its request's id, requester, path and method."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _line_context(record).items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if record.request_id is None:
            record.request_id = "-"  # the plain shape's placeholder; the JSON shape leaves it out
        return True


class SecretPathFilter(logging.Filter):
    """On Django's request loggers: their "Not Found: /visit/<token>/" lines name the path
    that failed; a secret in it is written as `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        if path and isinstance(record.args, tuple):
            masked = masked_path(request)
            if masked != path:
                record.args = tuple(masked if arg == path else arg for arg in record.args)
        return True


class RedisOutageFilter(logging.Filter):
    """On the loggers of the live pages (broadcasts, the hub, the sockets) and of the channel
    layer: their failures while Redis cannot be reached are recovered by design (the events
    are stored; dashboards catch up from the database, the layer reconnects), so each is one
    WARNING line naming the cause, not an ERROR or a traceback per post that would bury the
    errors that did lose something. Any other failure stays as it was: only redis' own
    exceptions count, as Python's ConnectionError or TimeoutError on these loggers may be a
    socket to somewhere else (a mail server, a webhook) that did lose something."""

    def filter(self, record: logging.LogRecord) -> bool:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        problem = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.WARNING and isinstance(problem, (RedisConnectionError, RedisTimeoutError)):
            record.msg = f"{record.getMessage()}: Redis cannot be reached ({problem})"
            record.args = ()
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.exc_info = record.exc_text = None
        return True


class PlainFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"  # a handler without ContextFilter
        return super().format(record)


# The fields of a JSON line, in order; those without a value are left out.
JSON_FIELDS = (
    "request_id",
    "company_id",
    "user_id",
    "api_key_id",
    "device",
    "method",
    "path",
    "status",
    "duration_ms",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then the
    request's fields that have a value, then the exception's traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        stamped = _line_context(record) if not hasattr(record, "request_id") else {}
        for name in JSON_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = stamped.get(name)
            if name == "status" and value is None:
                value = getattr(record, "status_code", None)  # Django's request lines
            if value is not None and value != "-":
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


LOG_FORMATS = {"plain": PlainFormatter, "json": JsonFormatter}
