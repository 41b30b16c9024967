"""The real live pages in headless Chromium: what a revoked page does, and a dashboard
that stays complete through a Redis outage."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from tests.events.conftest import event
from tests.events.live_client import admin_logout, call, post_events, post_like_a_device, session_of
from tests.events.test_browser import signed_in_page
from tests.factories import SubjectFactory

COUNT_WEBSOCKETS = """
window.__sockets = [];
const RealWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const socket = new RealWebSocket(url, protocols);
  window.__sockets.push(socket);
  return socket;
};
window.WebSocket.prototype = RealWebSocket.prototype;
"""


@pytest.mark.browser
def test_a_tv_page_whose_key_is_revoked_asks_for_a_key_and_stops(asgi_server, browser, tenant_a, door_a):
    page = browser.new_page()
    page.add_init_script(COUNT_WEBSOCKETS)
    page.goto(f"{asgi_server}/tv/#key={door_a.tv_key}")
    page.wait_for_selector("#connection.live", timeout=10_000)
    assert call(asgi_server, "POST", f"/api/v1/tv-boxes/{door_a.tv.pk}/revoke-key", tenant_a.admin) == 200
    page.wait_for_selector("#key-form:not([hidden])", timeout=10_000)
    assert "refused" in page.get_attribute("#connection", "class")
    assert page.evaluate("() => localStorage.getItem('kangaroo.tvKey')") is None  # the dead key is forgotten
    post_events(
        asgi_server, door_a.box_key, [event("unseen", door_a.entrance, SubjectFactory(company=tenant_a.company))]
    )
    page.wait_for_timeout(2_000)
    assert page.locator(".card").count() == 0
    assert page.evaluate("() => window.__sockets.length") == 1  # no reconnecting with a dead key


@pytest.mark.browser
def test_a_dashboard_whose_session_logs_out_goes_to_the_sign_in_page(asgi_server, client, browser, tenant_a):
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    assert admin_logout(asgi_server, session_of(client)) == 200
    page.wait_for_url("**/admin/login/**", timeout=10_000)


@pytest.mark.browser
def test_the_dashboard_shows_every_event_once_across_a_redis_outage(
    layer_on_private_redis,
    asgi_server,
    browser,
    tenant_a,
    door_a,
):
    redis = layer_on_private_redis
    mei = SubjectFactory(company=tenant_a.company, name="Mei")
    page = signed_in_page(browser, Client(), asgi_server, tenant_a.admin)
    page.add_init_script(COUNT_WEBSOCKETS)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    posted: list[int] = []
    for round_ in range(40):
        if round_ == 10:
            redis.stop()
        if round_ == 30:
            redis.start()
        items = [event(f"b{round_}-{n}", door_a.entrance, mei) for n in range(3)]
        answer = post_like_a_device(asgi_server, door_a.box_key, items)
        posted += [result["id"] for result in answer["results"]]
        time.sleep(0.05)
    page.wait_for_function(
        "ids => ids.every(id => window.kangarooLive.shownIds().includes(id))", arg=posted, timeout=30_000
    )
    assert sorted(page.evaluate("() => window.kangarooLive.shownIds()")) == sorted(posted)
    cards = page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.eventId)")
    assert len(cards) == len(set(cards)) == 12  # the newest, each once
    assert page.evaluate("() => window.__sockets.length") == 1  # no reconnect was needed
