"""The ASGI entry serves HTTP and websockets, with the admin session on both."""

import http.client
import json
import socket
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def session_cookie(client, user) -> str:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_it_serves_http(asgi_server):
    with urllib.request.urlopen(f"{asgi_server}/api/schema/", timeout=10) as response:
        assert response.status == 200


def test_a_signed_in_admin_gets_a_websocket_with_their_identity(asgi_server, client, tenant_a):
    ws_url = asgi_server.replace("http", "ws") + "/ws/ping/"
    headers = {"Cookie": session_cookie(client, tenant_a.admin), "Origin": asgi_server}
    with connect(ws_url, additional_headers=headers, open_timeout=10) as socket:
        socket.send(json.dumps({"type": "ping"}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "pong", "user": "a-admin"}


def test_an_anonymous_websocket_is_refused(asgi_server):
    ws_url = asgi_server.replace("http", "ws") + "/ws/ping/"
    with pytest.raises(InvalidStatus), connect(ws_url, additional_headers={"Origin": asgi_server}, open_timeout=10):
        pass


def test_a_websocket_from_a_foreign_origin_is_refused(asgi_server, client, tenant_a):
    ws_url = asgi_server.replace("http", "ws") + "/ws/ping/"
    headers = {"Cookie": session_cookie(client, tenant_a.admin), "Origin": "https://evil.example.com"}
    with pytest.raises(InvalidStatus), connect(ws_url, additional_headers=headers, open_timeout=10):
        pass


def requests_on_one_connection(base: str, count: int) -> tuple[list[str | None], bytes]:
    """`count` GET /healthz over one kept-alive connection: each answer's Connection header,
    and what the connection gives after the last answer (b"" once the server closed it)."""
    host, port = base.removeprefix("http://").split(":")
    headers = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for _ in range(count):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = http.client.HTTPResponse(sock, method="GET")
            answer.begin()
            answer.read()
            assert answer.status == 200
            headers.append(answer.getheader("Connection"))
        sock.settimeout(2)
        try:
            after = sock.recv(1)
        except TimeoutError:
            after = b"(still open)"
    return headers, after


def test_a_kept_alive_connection_is_closed_after_its_last_request(asgi_server, settings):
    # So devices' connections spread again over the server's processes (kangaroo.handlers).
    settings.HTTP_KEEPALIVE_REQUESTS = 3
    headers, after = requests_on_one_connection(asgi_server, 3)
    assert headers == [None, None, "close"]
    assert after == b""
    # A new connection counts from one again.
    assert requests_on_one_connection(asgi_server, 2) == ([None, None], b"(still open)")


def test_with_no_request_limit_a_kept_alive_connection_stays_open(asgi_server, settings):
    settings.HTTP_KEEPALIVE_REQUESTS = 0
    assert requests_on_one_connection(asgi_server, 5) == ([None] * 5, b"(still open)")
