"""End to end in a real headless Chromium: a device posts, the card appears."""

from __future__ import annotations

import base64

import pytest

from tests.events.conftest import event
from tests.events.live_client import post_events
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes


def signed_in_page(browser, client, server, user):
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server}])
    return context.new_page()


@pytest.mark.browser
def test_a_recognition_appears_on_the_dashboard(asgi_server, client, browser, tenant_a, door_a):
    mei = SubjectFactory(company=tenant_a.company, name="陳美玲", subject_type="vip")
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    created = post_events(asgi_server, door_a.box_key, [event("b1", door_a.entrance, mei)])
    card = page.wait_for_selector(f'.card[data-event-id="{created["results"][0]["id"]}"]', timeout=5_000)
    assert "陳美玲" in card.inner_text()
    assert "type-vip" in card.get_attribute("class")
    assert page.inner_text("#arrivals") == "1"


@pytest.mark.browser
def test_a_stranger_alert_shows_its_snapshot(asgi_server, client, browser, tenant_a, door_a):
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    snapshot = base64.b64encode(jpeg_bytes((160, 120))).decode()
    post_events(asgi_server, door_a.box_key, [event("s1", door_a.entrance, snapshot=snapshot)])
    card = page.wait_for_selector(".card.stranger", timeout=5_000)
    page.wait_for_function("() => document.querySelector('.card.stranger img').naturalWidth > 0", timeout=5_000)
    assert door_a.entrance.name in card.inner_text()  # the camera, not the box that relayed it


@pytest.mark.browser
def test_the_tv_page_greets_with_its_own_template(asgi_server, browser, tenant_a, door_a):
    from devices import services

    services.tvbox_update(
        company=tenant_a.company, actor=tenant_a.admin, tvbox=door_a.tv, greeting_employee="早安，{name}！"
    )
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    page = browser.new_page()
    page.goto(f"{asgi_server}/tv/#key={door_a.tv_key}")
    page.wait_for_selector("#connection.live", timeout=10_000)
    assert "key=" not in page.url  # the key leaves the address bar
    post_events(asgi_server, door_a.box_key, [event("t1", door_a.exit, lin), event("t2", door_a.entrance, lin)])
    card = page.wait_for_selector(".card.recognized", timeout=5_000)
    assert "早安，林志明！" in card.inner_text()
    assert page.locator(".card").count() == 1  # the exit is not one of this TV's screens


# Lets the test cut the page's connection and hold it down, as a network outage would.
CUTTABLE_WEBSOCKETS = """
window.__cut = false;
window.__sockets = [];
const RealWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const socket = new RealWebSocket(window.__cut ? "ws://127.0.0.1:9/" : url, protocols);
  window.__sockets.push(socket);
  return socket;
};
window.WebSocket.prototype = RealWebSocket.prototype;
"""


@pytest.mark.browser
def test_a_dashboard_that_lost_its_connection_catches_up(asgi_server, client, browser, tenant_a, door_a):
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.add_init_script(CUTTABLE_WEBSOCKETS)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    post_events(asgi_server, door_a.box_key, [event("before", door_a.entrance)])
    page.wait_for_selector(".card", timeout=5_000)
    page.evaluate("() => { window.__cut = true; window.__sockets.forEach(s => s.close()); }")
    page.wait_for_selector("#connection.connecting", timeout=5_000)
    missed = post_events(asgi_server, door_a.box_key, [event(f"missed{n}", door_a.entrance) for n in range(3)])
    page.evaluate("() => { window.__cut = false; }")
    page.wait_for_selector("#connection.live", timeout=20_000)
    for result in missed["results"]:
        page.wait_for_selector(f'.card[data-event-id="{result["id"]}"]', timeout=5_000)
    ids = page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.eventId)")
    assert len(ids) == len(set(ids)) == 4


@pytest.mark.django_db
def test_the_dashboard_page_is_for_signed_in_company_staff_only(client, tenant_a, platform_admin):
    assert client.get("/dashboard/").status_code == 302  # to the admin login
    client.force_login(tenant_a.viewer)
    page = client.get("/dashboard/")
    assert page.status_code == 200 and tenant_a.company.name in page.content.decode()
    client.force_login(platform_admin)
    assert client.get("/dashboard/").status_code == 404


@pytest.mark.browser
def test_a_dashboard_opened_later_shows_todays_latest_arrivals(asgi_server, client, browser, tenant_a, door_a):
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    created = post_events(asgi_server, door_a.box_key, [event("earlier", door_a.entrance, lin)])
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    card = page.wait_for_selector(f'.card[data-event-id="{created["results"][0]["id"]}"]', timeout=10_000)
    assert "林志明" in card.inner_text()
