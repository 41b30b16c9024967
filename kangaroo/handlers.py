"""The ASGI handler for HTTP: Django's, with the middleware and the view in one thread hop.

Every view and middleware of this project is synchronous. Django's `ASGIHandler` builds
its middleware chain for async use, and adapts each piece to it: the project's middleware
runs in a worker thread, hands back to the event loop at the first middleware that can
also run async (sessions' messages, clickjacking), which in turn hops to the thread for
each of its `process_request` and `process_response`, and again for the view. A device's
post crossed between the loop and its thread about eight times, each crossing a handful of
futures, locks and wake-ups: under load that was a tenth of the server's CPU
(bench/events_bench.py, "The live curve").

`OneHopASGIHandler` builds the chain as the WSGI handler does (every middleware in its
synchronous mode) and runs all of it, with the view, in one call to the request's thread:
the same thread Django's own handler uses for them (thread-sensitive, so database
connections and thread-locals behave as before). The request's other synchronous steps go
in the same call: the `request_started` signal (Django sends it from the loop, a hop of its
own to close stale database connections) and, for an answer that is not streamed, closing
it (`request_finished`, another hop after the answer was sent). Its body is in memory by
then, so it is sent after: the database connection goes back to the pool a little sooner.
Django also runs each request as two tasks, one of which only waits for the client to
leave early, to cancel the view; a synchronous view runs to its end in its thread anyway,
and an answer to a client that left is dropped by the server. So one call, no tasks: under
load the crossings and tasks were a tenth of a worker's CPU again (bench/README.md).

Django also starts a new thread for every request (its thread-sensitive context makes a
one-thread executor, and a second thread to join the first when the request ends): two
thread starts per request, as much CPU again as the hops. Here a request borrows an idle
one-thread executor and gives it back when it ends, as a threaded WSGI server keeps its
threads: a request's synchronous parts still all run in one thread that no other request
uses meanwhile, and a thread keeps its database connection from one request to the next,
as under WSGI.

A kept-alive connection stays with the server process that accepted it, so a handful of
boxes posting all day can pile onto one of several processes while the others idle (seen
at 500 events/s: one worker at 0.4 CPU seconds, the other at 5.3). As nginx does with
`keepalive_requests`, the answer to a connection's HTTP_KEEPALIVE_REQUESTS-th request says
`Connection: close`: the client opens a new connection for its next request, and a new
connection goes to whichever process is free to accept it first, the least busy one.
A connection is known by its client's address and port. Behind a proxy whose
X-Forwarded-For uvicorn trusts (`--proxy-headers`), which names an address without a port, the count is per
client address across the proxy's connections: the one that carries a client's 100th
request is closed (the proxy opens another), which spreads them over the processes alike.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

# Idle request threads kept for the next requests; a burst beyond this ends the extra ones.
IDLE_THREADS_MAX = 32

# Connections whose requests are counted: one entry per open client connection of this
# process. A connection the client closed leaves its entry behind; past this many, the counts
# start again from nothing (a connection then lives a few more requests, no harm).
COUNTED_CONNECTIONS_MAX = 10_000


class OneHopASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        self._requests_on: dict[tuple, int] = {}

    def last_on_its_connection(self, scope) -> bool:
        """Count this request on its client connection; whether the connection has now
        served HTTP_KEEPALIVE_REQUESTS requests (0: never close)."""
        limit = settings.HTTP_KEEPALIVE_REQUESTS
        client = scope.get("client")
        if not limit or client is None:
            return False
        connection = (*client, *(scope.get("server") or ()))
        served = self._requests_on.pop(connection, 0) + 1
        if served >= limit:
            return True
        if len(self._requests_on) >= COUNTED_CONNECTIONS_MAX:
            self._requests_on.clear()
        self._requests_on[connection] = served
        return False

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            executor = self._idle.pop()
        except IndexError:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # A view still running after its client went away only delays the next request
            # given this thread: its work queues behind, in order, in the same thread.
            if len(self._idle) < IDLE_THREADS_MAX:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            response = await sync_to_async(self.respond, thread_sensitive=True)(scope, body_file)
            if self.last_on_its_connection(scope):
                response["Connection"] = "close"
            try:
                await self.send_response(response, send)
            finally:
                # Even when sending failed: closing releases a streamed file and the request's
                # database connection (`request_finished`).
                if response.streaming:
                    await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def respond(self, scope, body_file):
        """Everything synchronous of a request, in its thread: `request_started`, the request,
        the middleware and the view, and, unless the answer streams, `request_finished`."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the server chunks it further
        if not response.streaming:
            response.close()
        return response
