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
connections and thread-locals behave as before). Reading the body, sending the answer and
the request signals stay Django's.

Django also starts a new thread for every request (its thread-sensitive context makes a
one-thread executor, and a second thread to join the first when the request ends): two
thread starts per request, as much CPU again as the hops. Here a request borrows an idle
one-thread executor and gives it back when it ends, as a threaded WSGI server keeps its
threads: a request's synchronous parts still all run in one thread that no other request
uses meanwhile, and a thread keeps its database connection from one request to the next,
as under WSGI.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

# Idle request threads kept for the next requests; a burst beyond this ends the extra ones.
IDLE_THREADS_MAX = 32


class OneHopASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

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

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
