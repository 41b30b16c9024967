"""HTTP requests to addresses our customers type in, without server-side request forgery.

A webhook URL is someone else's input, and the portal sits inside a network: without care,
"http://169.254.169.254/" or "http://10.0.0.5:6379/" would make it call its own cloud
metadata service or database for whoever saved that URL. So:

- only `http` and `https`, with a host name;
- the host is resolved here, and every address it resolves to must be public: loopback,
  private, link-local, multicast, unspecified, reserved and other non-global addresses are
  refused (an IPv4 address written as IPv6 is judged as the IPv4 one);
- the request then connects to the address that was checked, not to the name again, so a
  name that resolves to a public address for the check and a private one for the connection
  (DNS rebinding) gains nothing. The Host header and the TLS server name (SNI, and the
  certificate check) still use the name;
- redirects are never followed (a redirect to an inner address would undo all this), proxy
  settings of the environment are ignored, and a request gives up after
  WEBHOOK_TIMEOUT_SECONDS; only the first kilobyte of an answer is read.

The check runs when a URL is saved and again before every request, since what a name
resolves to can change. WEBHOOK_ALLOW_PRIVATE_ADDRESSES lifts the address rule (a receiver
on the same network, the test suite's receiver on loopback); the rest still holds.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

# Reasons a URL is refused, shown with `webhook_url_refused`.
BAD_SCHEME = "scheme"
NO_HOST = "host"
UNRESOLVABLE = "unresolvable"
PRIVATE_ADDRESS = "private_address"

RESPONSE_READ_BYTES = 1024


class UrlRefused(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def address_refused(address: str) -> bool:
    """Whether `address` is one a webhook must not reach (see the module doc)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    )


def resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UrlRefused(UNRESOLVABLE, str(exc)) from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UrlRefused(UNRESOLVABLE)
    return addresses


def check_url(url: str) -> Target:
    """The URL's resolved target, or UrlRefused with the reason."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(NO_HOST, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused(BAD_SCHEME, scheme)
    host = parts.hostname
    if not host:
        raise UrlRefused(NO_HOST)
    port = port or (443 if scheme == "https" else 80)
    addresses = resolve(host, port)
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        refused = [address for address in addresses if address_refused(address)]
        if refused:
            raise UrlRefused(PRIVATE_ADDRESS, ", ".join(refused))
    return Target(scheme=scheme, host=host, port=port, addresses=addresses)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all (refused, unreachable, timed out)
    excerpt: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` under the rules of the module doc; never raises for the remote
    side's failures, which come back in the answer."""
    started = time.monotonic()

    def answer(status=None, excerpt="", error="") -> Answer:
        return Answer(status, excerpt, error[:300], int((time.monotonic() - started) * 1000))

    try:
        target = check_url(url)
    except UrlRefused as exc:
        return answer(error=f"refused: {exc}")
    parts = urlsplit(url)
    address = target.addresses[0]
    netloc = f"[{address}]" if ":" in address else address
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host and not target.host.startswith("["):  # an IPv6 literal
        host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    connect_url = urlunsplit((target.scheme, f"{netloc}:{target.port}", parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        with (
            httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client,
            client.stream(
                "POST",
                connect_url,
                content=body,
                headers={**headers, "host": host_header, "content-type": "application/json"},
                extensions=extensions,
            ) as response,
        ):
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= RESPONSE_READ_BYTES:
                    break
            return answer(response.status_code, excerpt[:RESPONSE_READ_BYTES].decode("utf-8", "replace")[:500])
    except httpx.TimeoutException:
        return answer(error=f"timed out after {timeout} s")
    except httpx.HTTPError as exc:
        return answer(error=f"{type(exc).__name__}: {exc}")
