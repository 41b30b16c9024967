"""The live stream's clients against the real ASGI server (`asgi_server`), as the tests drive
them: a box posting events, a dashboard signed in with its admin session, a TV box with its
key, and an admin's clicks over HTTP. Shared by every test that opens a live socket."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.authentication import token_pair_for

# --- a box ----------------------------------------------------------------------------------


def post_events(server: str, key: str, items: list[dict], timeout: float = 10) -> dict:
    request = urllib.request.Request(
        f"{server}/api/v1/device/events",
        data=json.dumps({"events": items}).encode(),
        headers={"Authorization": f"Device {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # only the local test server
        return json.loads(response.read())


def post_like_a_device(server: str, key: str, items: list[dict]) -> dict:
    """Posts as a box does: a 503 (the database briefly busy, as SQLite gets under this
    load) is retried with the same uids, which the server stores once."""
    for _ in range(50):
        try:
            return post_events(server, key, items)
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
            time.sleep(0.2)
    raise AssertionError("the server kept answering 503")


# --- sockets --------------------------------------------------------------------------------


def ws_url(server: str, query: str = "") -> str:
    return server.replace("http://", "ws://") + "/ws/events/" + query


def session_of(client: Client) -> str:
    """The session cookie of a signed-in test client, as its browser would send it."""
    return f"sessionid={client.cookies['sessionid'].value}"


def dashboard(server: str, cookie: str, query: str = "", origin: str | None = None):
    """A live socket opened by a browser page with this session cookie (from our own origin
    unless told otherwise)."""
    headers = {"Cookie": cookie, "Origin": origin or server}
    return connect(ws_url(server, query), additional_headers=headers, open_timeout=10)


def as_admin(client, server, user, query=""):
    """`user`'s dashboard, signed in with `client` (one client, one browser: signing in as
    someone else ends its previous session)."""
    client.force_login(user)
    return dashboard(server, session_of(client), query)


@contextmanager
def as_tv(server: str, key: str, query: str = ""):
    """A TV box's socket: anonymous until it sends its key."""
    with connect(ws_url(server, query), additional_headers={"Origin": server}, open_timeout=10) as socket:
        socket.send(json.dumps({"type": "auth", "key": key}))
        yield socket


def receive(socket, kind: str, timeout: float = 10) -> dict:
    while True:
        message = json.loads(socket.recv(timeout=timeout))
        if message["type"] == kind:
            return message


def nothing_more(socket, wait: float = 0.5) -> bool:
    try:
        socket.recv(timeout=wait)
    except TimeoutError:
        return True
    return False


def closed_with(socket, timeout: float = 10) -> int:
    """Reads until the server closes; the close code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=timeout)
    return closed.value.rcvd.code


# --- an admin over HTTP ---------------------------------------------------------------------


def call(server: str, method: str, path: str, user=None, body=None, headers=None) -> int:
    request = urllib.request.Request(
        f"{server}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
        method=method,
    )
    if user is not None:
        request.add_header("Authorization", f"Bearer {token_pair_for(user)['access']}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # only the local test server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def admin_post(server: str, session_cookie: str, path: str, data: dict[str, str]) -> int:
    """Submits an admin form the way a signed-in browser does (with its CSRF token)."""
    request = urllib.request.Request(f"{server}/admin/", headers={"Cookie": session_cookie})
    with urllib.request.urlopen(request, timeout=10) as response:  # only the local test server
        page = response.read().decode()
        csrf_cookie = re.search(r"csrftoken=([^;]+)", response.headers.get("Set-Cookie", "")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    request = urllib.request.Request(
        f"{server}{path}",
        data=urllib.parse.urlencode({"csrfmiddlewaretoken": token, **data}).encode(),
        headers={
            "Cookie": f"{session_cookie}; csrftoken={csrf_cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # only the local test server
        return response.status


def admin_logout(server: str, session_cookie: str) -> int:
    """Signs a browser session out the way the admin's "Log out" button does."""
    return admin_post(server, session_cookie, "/admin/logout/", {})
