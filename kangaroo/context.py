"""Where the current request comes from, for the audit log.

Services record "from where" without taking the request as an argument: the middleware
stores the client's address here for the duration of a request. Context variables follow
the request into the thread that runs a sync view under ASGI.
"""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestOrigin:
    ip_address: str | None = None
    user_agent: str = ""


_origin: ContextVar[RequestOrigin | None] = ContextVar("request_origin", default=None)


def current_origin() -> RequestOrigin:
    return _origin.get() or RequestOrigin()


def client_ip(request) -> str | None:
    # REMOTE_ADDR is the only address a client cannot forge. Behind a proxy, the proxy
    # (or uvicorn's --proxy-headers) rewrites it from X-Forwarded-For.
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        origin = RequestOrigin(
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )
        token = _origin.set(origin)
        try:
            return self.get_response(request)
        finally:
            _origin.reset(token)
