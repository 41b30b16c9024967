"""`kangaroo.handlers.OneHopASGIHandler`: a request's synchronous steps (the request signals,
the middleware and the view) run in one call to one thread of its own, and the threads are
kept for the next requests instead of being started for each one."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from kangaroo.handlers import OneHopASGIHandler

seen: list[tuple[str, threading.Thread]] = []  # (path, thread) of each view call, kept alive
both_in = threading.Barrier(2, timeout=5)


def where(request):
    seen.append((request.path, threading.current_thread()))
    return HttpResponse("ok")


def meet(request):
    both_in.wait()  # both requests at once: this deadlocks if they shared a thread
    return where(request)


streamed: list[bool] = []  # True once a streamed answer's last part was taken


def stream(request):
    def parts():
        yield b"one "
        yield b"two"
        streamed.append(True)

    seen.append((request.path, threading.current_thread()))
    return StreamingHttpResponse(parts())


urlpatterns = [path("where/", where), path("meet/", meet), path("stream/", stream)]


def http_scope(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
    }


async def get(handler, url: str) -> dict:
    communicator = ApplicationCommunicator(handler, http_scope(url))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        part = await communicator.receive_output(10)
        body += part.get("body", b"")
        if not part.get("more_body"):
            break
    await communicator.wait(10)
    return {"status": start["status"], "headers": start["headers"], "body": body}


def test_the_middleware_chain_is_synchronous_and_the_view_runs_off_the_event_loop(settings):
    settings.ROOT_URLCONF = __name__
    handler = OneHopASGIHandler()
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)
    seen.clear()

    async def two_in_a_row():
        loop_thread = threading.current_thread()
        first = await get(handler, "/where/")
        second = await get(handler, "/where/")
        return loop_thread, first, second

    loop_thread, first, second = asyncio.run(two_in_a_row())
    assert first["status"] == second["status"] == 200
    assert first["body"] == b"ok"
    # The middleware ran: the security and clickjacking headers are on the answer.
    assert (b"X-Frame-Options", b"DENY") in first["headers"]
    (_, thread_1), (_, thread_2) = seen
    assert thread_1 is not loop_thread
    assert thread_1 is thread_2  # the same thread served the next request: none started


def test_requests_at_the_same_time_each_get_a_thread_of_their_own(settings):
    settings.ROOT_URLCONF = __name__
    handler = OneHopASGIHandler()
    seen.clear()

    async def together():
        return await asyncio.gather(get(handler, "/meet/"), get(handler, "/meet/"))

    answers = asyncio.run(together())
    assert [a["status"] for a in answers] == [200, 200]
    assert len({thread for _, thread in seen}) == 2


def test_the_request_signals_run_in_the_request_thread(settings):
    """`request_started` and, for an answer in memory, `request_finished` (which gives the
    database connection back) run in the same call as the view: no hop of their own."""
    settings.ROOT_URLCONF = __name__
    handler = OneHopASGIHandler()
    seen.clear()
    signalled: list[tuple[str, threading.Thread]] = []

    def started(**kwargs):
        signalled.append(("started", threading.current_thread()))

    def finished(**kwargs):
        signalled.append(("finished", threading.current_thread()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:

        async def one():
            return threading.current_thread(), await get(handler, "/where/")

        loop_thread, answer = asyncio.run(one())
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert answer["status"] == 200 and answer["body"] == b"ok"
    [(_, view_thread)] = seen
    assert view_thread is not loop_thread
    assert signalled == [("started", view_thread), ("finished", view_thread)]


def test_a_streamed_answer_is_closed_after_it_was_sent(settings):
    settings.ROOT_URLCONF = __name__
    handler = OneHopASGIHandler()
    seen.clear()
    streamed.clear()
    at_finish: list[bool] = []

    def finished(**kwargs):
        at_finish.append(bool(streamed))

    signals.request_finished.connect(finished)
    try:
        answer = asyncio.run(get(handler, "/stream/"))
    finally:
        signals.request_finished.disconnect(finished)
    assert answer["status"] == 200
    assert answer["body"] == b"one two"
    assert at_finish == [True]  # once, when the whole stream had been sent


def test_a_streamed_answer_whose_client_left_is_still_closed(settings):
    """Closing it releases what it streams and the request's database connection
    (`request_finished`), even when sending it failed."""
    settings.ROOT_URLCONF = __name__
    handler = OneHopASGIHandler()
    finished: list[bool] = []

    def on_finished(**kwargs):
        finished.append(True)

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        if message["type"] == "http.response.body":
            raise OSError("the client is gone")

    scope = http_scope("/stream/")
    signals.request_finished.connect(on_finished)
    try:
        with pytest.raises(OSError):
            asyncio.run(handler(scope, receive, send))
    finally:
        signals.request_finished.disconnect(on_finished)
    assert finished == [True]


def test_requests_are_counted_per_client_connection_and_the_counts_stay_bounded(settings, monkeypatch):
    settings.HTTP_KEEPALIVE_REQUESTS = 2
    handler = OneHopASGIHandler()

    def scope(port):
        return {"client": ("10.0.0.1", port), "server": ("127.0.0.1", 8000)}

    assert [handler.last_on_its_connection(scope(5000)) for _ in range(2)] == [False, True]
    assert handler.last_on_its_connection(scope(5001)) is False  # another connection
    assert handler.last_on_its_connection(scope(5000)) is False  # 5000 again: a new connection
    assert handler.last_on_its_connection({"client": None}) is False  # a Unix socket: not counted
    # Connections that went away without a last request leave counts behind: bounded.
    monkeypatch.setattr("kangaroo.handlers.COUNTED_CONNECTIONS_MAX", 3)
    for port in range(6000, 6010):
        handler.last_on_its_connection(scope(port))
    assert len(handler._requests_on) <= 3
