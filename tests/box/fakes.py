"""A stand-in for the portal's device API, for the agent's fast tests: it answers heartbeats,
the gallery feed and event batches the way the portal does (an event's uid is stored once;
a retry answers `duplicate`), and can be told to fail in the ways a real network does."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import httpx
import numpy as np

from faces import MODEL, embedding_to_bytes
from kangaroo_box.agent import Agent, Options
from kangaroo_box.portal import Portal

KEY = "kgr_box_7_0123456789ab_secret"
SCREEN = 31


def embedding(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector) * 0.6


def upsert(seq: int, subject_id: int, *seeds: int, model: str = MODEL) -> dict:
    return {
        "seq": seq,
        "op": "upsert",
        "id": subject_id,
        "name": f"Person {subject_id}",
        "type": "employee",
        "job_number": f"E-{subject_id}",
        "visit_start": None,
        "visit_end": None,
        "faces": [
            {
                "photo_id": subject_id * 100 + n,
                "model": model,
                "embedding": base64.b64encode(embedding_to_bytes(embedding(seed))).decode(),
            }
            for n, seed in enumerate(seeds)
        ],
    }


@dataclass
class FakePortal:
    log: list[dict] = field(default_factory=list)  # the changes, in order (seq, op, id, ...)
    compacted_through: int = 0
    threshold: float = 0.55
    next_heartbeat_in: int = 30
    down: bool = False  # connections refused
    fail_with: int | None = None  # answer every request with this status
    lose_answers: int = 0  # store the events, then drop the connection this many times
    revoked: bool = False
    stored: dict[str, int] = field(default_factory=dict)  # uid -> times it was posted and stored
    posts: list[list[str]] = field(default_factory=list)  # the uids of each event post
    refuse_uids: set[str] = field(default_factory=set)  # answered with an item error
    requests: list[tuple[str, dict]] = field(default_factory=list)
    heartbeats: list[dict] = field(default_factory=list)
    not_modified: int = 0  # 304 answers

    @property
    def sequence(self) -> int:
        return max((change["seq"] for change in self.log), default=0)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _error(self, status: int, code: str) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": code, "fields": {}}})

    def handle(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        self.requests.append((name, dict(request.url.params)))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.fail_with:
            return httpx.Response(self.fail_with, text="busy")
        if self.revoked:
            return self._error(401, "device_key_revoked")
        if name == "heartbeat":
            body = json.loads(request.content)
            self.heartbeats.append(body)
            return httpx.Response(
                200,
                json={
                    "status": "online",
                    "server_time": "2026-11-27T10:00:00Z",
                    "next_heartbeat_in": self.next_heartbeat_in,
                    "gallery_sequence": self.sequence,
                    "match_threshold": self.threshold,
                },
            )
        if name == "gallery":
            return self._gallery(request)
        if name == "events":
            return self._events(request)
        return self._error(404, "not_found")

    def _gallery(self, request: httpx.Request) -> httpx.Response:
        after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
        if after > self.sequence or 0 < after < self.compacted_through:
            return self._error(410, "gallery_resync_required")
        etag = f'W/"{self.sequence}-{after}-{limit}"'
        if request.headers.get("If-None-Match") == etag:
            self.not_modified += 1
            return httpx.Response(304, headers={"ETag": etag})
        latest = {}
        for change in self.log:  # each subject once, at its latest change, as the portal sends
            if change["seq"] > after:
                latest[change["id"]] = change
        changes = sorted(latest.values(), key=lambda change: change["seq"])
        if after == 0:
            changes = [change for change in changes if change["op"] == "upsert"]
        page = changes[:limit]
        more = len(changes) > limit
        next_ = page[-1]["seq"] if more else self.sequence
        body = {"after": after, "next": next_, "more": more, "sequence": self.sequence, "changes": page}
        return httpx.Response(200, json=body, headers={"ETag": etag})

    def _events(self, request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["events"]
        self.posts.append([item["uid"] for item in items])
        results = []
        for item in items:
            uid = item["uid"]
            if uid in self.refuse_uids:
                error = {"code": "event_too_old", "message": "too old", "fields": {"happened_at": ["too old"]}}
                results.append({"uid": uid, "status": "error", "error": error})
            elif uid in self.stored:
                results.append({"uid": uid, "status": "duplicate", "id": 1})
            else:
                self.stored[uid] = 1
                results.append({"uid": uid, "status": "created", "id": 1})
        if self.lose_answers:
            self.lose_answers -= 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json={"created": 0, "duplicates": 0, "errors": 0, "results": results})


class NoPictures:
    """A source that sees nothing (the tests put events in the outbox themselves)."""

    def status(self) -> str:
        return "ok"

    def poll(self) -> list:
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_agent(fake: FakePortal, state, *, source=None, clock=None, **options) -> Agent:
    options = Options(url="http://portal.test", key=KEY, screen_id=SCREEN, state=state, **options)
    portal = Portal(options.url, options.key, transport=fake.transport())
    return Agent(options, portal=portal, source=source or NoPictures(), clock=clock or Clock())
