"""A small HTTP/1.1 client for the live curve's sender: keep-alive connections on asyncio
streams, requests written as bytes, answers read by their Content-Length (or chunks).

The live curve measures the server while the sender, the dashboards, PostgreSQL and Redis
share the same two cores. httpx took about 3 ms of CPU per post (3 CPU-seconds of every 10
at 1,000 events/s, as much as PostgreSQL), CPU the server then did not have: the curve
measured the sender as much as the product. This client sends the same requests, byte for
byte in what the server reads (method, path, Host, Content-Type, Content-Length,
Authorization, the body), for a tenth of that. It imports nothing of the project.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit


class LeanHTTPError(Exception):
    """The connection failed, or the answer was not HTTP/1.1 as this client reads it."""


@dataclass
class Answer:
    status: int
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    async def request(self, head: bytes, body: bytes) -> Answer:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line.startswith(b"HTTP/1.1 "):
            raise LeanHTTPError(f"not an HTTP/1.1 answer: {status_line[:80]!r}")
        status = int(status_line[9:12])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(part[:-2] for part in parts)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            self.close()
        return Answer(status, body)

    @property
    def closed(self) -> bool:
        return self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """At most `connections` connections to `base` (http://host:port), reused in turn."""

    def __init__(self, base: str, connections: int):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.host_header = parts.netloc.encode()
        # The connection idle longest goes first, as httpx takes them: a box's posts go round
        # every connection it opened, and so round the server's workers, each of which keeps
        # the connections it accepted. Taking the newest first sent most of a box's posts
        # over one connection, to one worker.
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(connections)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        head = b"".join(
            [
                b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self.host_header + b"\r\n",
                *(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers.items()),
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n",
            ]
        )
        async with self.slots:
            # A kept connection the server closed while it was idle (its keep-alive timeout)
            # fails before any answer: the request goes again once, on a new connection, as
            # other clients do. A post is safe to repeat: its events' uids make it idempotent.
            while self.idle:
                connection = self.idle.popleft()
                if connection.closed:
                    continue
                try:
                    return self._keep(connection, await connection.request(head, body))
                except (OSError, asyncio.IncompleteReadError, LeanHTTPError):
                    connection.close()
                    break
                except BaseException:
                    connection.close()
                    raise
            reader, writer = await asyncio.open_connection(self.host, self.port)
            connection = _Connection(reader, writer)
            try:
                return self._keep(connection, await connection.request(head, body))
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                connection.close()
                raise LeanHTTPError(repr(error)) from error
            except BaseException:
                connection.close()
                raise

    def _keep(self, connection: _Connection, answer: Answer) -> Answer:
        if not connection.closed:
            self.idle.append(connection)
        return answer

    async def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
