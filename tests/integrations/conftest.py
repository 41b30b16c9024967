"""A real webhook receiver on a loopback port, and a door to post events through.

The receiver is a plain HTTP server in a thread: it records every request (headers and raw
body) and answers from a script of statuses (then 200), optionally after a delay or with a
redirect. Tests verify what it got with the Standard Webhooks reference library."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.events.conftest import make_door


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    delay: float = 0.0
    redirect_to: str = ""

    def answer(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks", port=port)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = state.answer()
            if state.delay:
                time.sleep(state.delay)
            if state.redirect_to:
                self.send_response(302)
                self.send_header("Location", state.redirect_to)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver says no")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _webhooks_to_loopback(settings):
    # The receiver listens on loopback, which production refuses; the SSRF tests turn it back off.
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.JOBS_INLINE = True  # jobs run at once after commit (the embedded shape)


@pytest.fixture
def door_a(tenant_a):
    return make_door(tenant_a, "A")


@pytest.fixture
def door_b(tenant_b):
    return make_door(tenant_b, "B")
