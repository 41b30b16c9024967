"""The portal's device API as the box uses it: heartbeat, gallery feed, event batches.

Every failure is sorted into what the box should do about it:

- `Unreachable`: no answer, a timeout, 5xx, 429 — the portal is down or busy. Keep
  everything and try again later (with backoff); nothing is dropped for it.
- `KeyRefused`: 401 — the key was revoked or is not valid. Trying again changes nothing:
  the box stops and says so.
- `ResyncRequired`: 410 `gallery_resync_required` from the gallery feed.
- `Refused`: any other answer of 4xx: this request is wrong and will stay wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

REVOKED = "device_key_revoked"
RESYNC = "gallery_resync_required"


class PortalError(Exception):
    pass


class Unreachable(PortalError):
    def __init__(self, reason: str, *, retry_after: float = 0.0):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class Refused(PortalError):
    status: int
    code: str
    message: str
    fields: dict

    def __str__(self) -> str:
        fields = f" {json.dumps(self.fields, ensure_ascii=False)}" if self.fields else ""
        return f"{self.status} {self.code}: {self.message}{fields}"


class KeyRefused(Refused):
    @property
    def revoked(self) -> bool:
        return self.code == REVOKED


class ResyncRequired(Refused):
    pass


@dataclass(frozen=True)
class GalleryPage:
    """A feed answer; `changes` is None for 304 (nothing changed since `etag`)."""

    changes: list[dict] | None
    next: int
    more: bool
    sequence: int | None
    etag: str | None


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "0")), 0.0)
    except ValueError:
        return 0.0


def _refusal(response: httpx.Response) -> Refused:
    try:
        error = response.json()["error"]
        code, message, fields = str(error["code"]), str(error.get("message", "")), error.get("fields") or {}
    except (ValueError, KeyError, TypeError):
        code, message, fields = f"http_{response.status_code}", response.text[:200], {}
    kind = Refused
    if response.status_code == 401:
        kind = KeyRefused
    elif code == RESYNC:
        kind = ResyncRequired
    return kind(response.status_code, code, message, fields)


class Portal:
    """`base_url` is the portal's address (`https://portal.example.com`); the API lives under
    `/api/v1`. `transport` is for tests that stand in for the network."""

    def __init__(self, base_url: str, key: str, *, timeout: float = 20.0, transport: httpx.BaseTransport | None = None):
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/device/",
            headers={"Authorization": f"Device {key}", "Accept": "application/json", "Accept-Encoding": "gzip"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.RequestError as exc:  # refused, reset, timed out, name not found, a broken gzip...
            raise Unreachable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise Unreachable(f"HTTP {response.status_code}", retry_after=_retry_after(response))
        if response.status_code >= 400:
            raise _refusal(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            # A proxy's error page with a 200: the portal did not answer this.
            raise Unreachable(f"HTTP {response.status_code} without JSON") from None

    def heartbeat(self, body: dict) -> dict:
        return self._json(self._send("POST", "heartbeat", json=body))

    def gallery(self, *, after: int, limit: int, etag: str | None = None) -> GalleryPage:
        headers = {"If-None-Match": etag} if etag else {}
        response = self._send("GET", "gallery", params={"after": after, "limit": limit}, headers=headers)
        if response.status_code == 304:
            return GalleryPage(changes=None, next=after, more=False, sequence=None, etag=etag)
        answer = self._json(response)
        return GalleryPage(
            changes=answer["changes"],
            next=int(answer["next"]),
            more=bool(answer["more"]),
            sequence=int(answer["sequence"]),
            etag=response.headers.get("ETag"),
        )

    def post_events(self, items: list[dict]) -> list[dict]:
        """The portal's result for each item, in order (`created`, `duplicate` or `error`)."""
        answer = self._json(self._send("POST", "events", json={"events": items}))
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise Unreachable("the event answer does not hold a result per event")
        return results
