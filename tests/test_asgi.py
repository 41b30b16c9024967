"""The ASGI entry serves HTTP and websockets, with the admin session on both."""

import json
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
