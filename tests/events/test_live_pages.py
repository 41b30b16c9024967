"""The live pages as a lobby and an HR desk see them, in a real headless Chromium.

TV: each person greeted once per the TV box's cool-down, the newest greeting largest, no
internal figures. Dashboard: cards name the camera and its direction, device changes go to
the device panel, and before any device reports the panel says so.
"""

from __future__ import annotations

import datetime
import json
import urllib.request

import pytest
from django.utils import timezone
from django.utils.translation import override

from events.models import Event, EventKind
from events.views import live_labels
from subjects import services as subject_services
from subjects.models import GalleryChange
from subjects.selectors import gallery_sequence
from tests.events.conftest import event
from tests.events.live_client import post_events
from tests.events.test_browser import signed_in_page
from tests.factories import SubjectFactory


def heartbeat(server: str, key: str, **body) -> None:
    request = urllib.request.Request(
        f"{server}/api/v1/device/heartbeat",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Device {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # only the local test server
        pass


@pytest.mark.browser
def test_the_tv_greets_a_person_once_per_cool_down_and_the_newest_largest(asgi_server, browser, tenant_a, door_a):
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    mei = SubjectFactory(company=tenant_a.company, name="陳美玲", subject_type="visitor")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{asgi_server}/tv/#key={door_a.tv_key}")
    page.wait_for_selector("#connection.live", timeout=10_000)
    now = timezone.now() - datetime.timedelta(minutes=30)  # devices may not post from the future
    first = post_events(asgi_server, door_a.box_key, [event("t1", door_a.entrance, lin, when=now)])
    page.wait_for_selector(f'.card[data-event-id="{first["results"][0]["id"]}"]', timeout=5_000)
    # Seen again five minutes later (inside the default ten): no second greeting.
    again = post_events(
        asgi_server, door_a.box_key, [event("t2", door_a.entrance, lin, when=now + datetime.timedelta(minutes=5))]
    )
    later = post_events(
        asgi_server, door_a.box_key, [event("t3", door_a.entrance, mei, when=now + datetime.timedelta(minutes=6))]
    )
    page.wait_for_selector(f'.card[data-event-id="{later["results"][0]["id"]}"]', timeout=5_000)
    page.wait_for_function(f"() => window.kangarooLive.shownIds().includes({again['results'][0]['id']})", timeout=5_000)
    page.wait_for_function("() => document.getAnimations().length === 0", timeout=5_000)  # arrivals settle
    names = page.eval_on_selector_all(".card .name", "nodes => nodes.map(n => n.textContent)")
    assert names == ["陳美玲", "林志明"]
    sizes = page.eval_on_selector_all(
        ".card .name", "nodes => nodes.map(n => parseFloat(getComputedStyle(n).fontSize))"
    )
    assert sizes[0] > sizes[1]
    opacities = page.eval_on_selector_all(".card", "nodes => nodes.map(n => parseFloat(getComputedStyle(n).opacity))")
    assert opacities[0] == 1 and opacities[1] < 1
    # Past the cool-down the same person is greeted again.
    past = post_events(
        asgi_server, door_a.box_key, [event("t4", door_a.entrance, lin, when=now + datetime.timedelta(minutes=11))]
    )
    page.wait_for_selector(f'.card[data-event-id="{past["results"][0]["id"]}"]', timeout=5_000)
    # A lobby screen shows no internal figures.
    assert page.locator("#arrivals").count() == 0
    assert page.locator("#device-status").count() == 0
    assert "Your host has been told" not in page.inner_text("body")


@pytest.mark.browser
def test_the_tv_page_is_the_tv_boxs_even_in_a_browser_signed_in_to_the_admin(
    asgi_server, client, browser, tenant_a, door_a
):
    """HR opens the TV's link on their own computer to check it: the page is still the TV
    box's (its screens only, its greetings, its cool-down), not the admin's dashboard."""
    tv = door_a.tv
    tv.greeting_employee = "Good morning, {name}"
    tv.save(update_fields=["greeting_employee"])
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    mei = SubjectFactory(company=tenant_a.company, name="陳美玲")
    page = signed_in_page(browser, client, asgi_server, tenant_a.owner)
    page.goto(f"{asgi_server}/tv/#key={door_a.tv_key}")
    page.wait_for_selector("#connection.live", timeout=10_000)
    now = timezone.now() - datetime.timedelta(minutes=30)
    first = post_events(asgi_server, door_a.box_key, [event("s1", door_a.entrance, lin, when=now)])
    page.wait_for_selector(f'.card[data-event-id="{first["results"][0]["id"]}"]', timeout=5_000)
    again = post_events(asgi_server, door_a.box_key, [
        event("s2", door_a.entrance, lin, when=now + datetime.timedelta(minutes=1)),  # inside the cool-down
        event("s3", door_a.exit, mei, when=now + datetime.timedelta(minutes=2)),  # a camera the TV does not show
    ])  # fmt: skip
    later = post_events(
        asgi_server, door_a.box_key, [event("s4", door_a.entrance, mei, when=now + datetime.timedelta(minutes=3))]
    )
    page.wait_for_selector(f'.card[data-event-id="{later["results"][0]["id"]}"]', timeout=5_000)
    page.wait_for_function(f"() => window.kangarooLive.shownIds().includes({again['results'][0]['id']})", timeout=5_000)
    assert again["results"][1]["id"] not in page.evaluate("() => window.kangarooLive.shownIds()")
    names = page.eval_on_selector_all(".card .name", "nodes => nodes.map(n => n.textContent)")
    assert names == ["陳美玲", "林志明"]
    assert "Good morning, 林志明" in page.inner_text("body")


@pytest.mark.browser
def test_the_tv_box_cool_down_is_its_own_setting(asgi_server, browser, tenant_a, door_a):
    from devices import services

    services.tvbox_update(company=tenant_a.company, actor=tenant_a.admin, tvbox=door_a.tv, greet_again_after=0)
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    page = browser.new_page()
    page.goto(f"{asgi_server}/tv/#key={door_a.tv_key}")
    page.wait_for_selector("#connection.live", timeout=10_000)
    now = timezone.now() - datetime.timedelta(minutes=5)
    post_events(asgi_server, door_a.box_key, [event("c1", door_a.entrance, lin, when=now)])
    post_events(
        asgi_server, door_a.box_key, [event("c2", door_a.entrance, lin, when=now + datetime.timedelta(seconds=30))]
    )
    page.wait_for_function("() => document.querySelectorAll('.card').length === 2", timeout=5_000)


@pytest.mark.browser
def test_dashboard_cards_name_the_camera_and_device_changes_go_to_the_panel(
    asgi_server, client, browser, tenant_a, door_a, settings
):
    settings.LIVE_TICK_SECONDS = 0.5
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/", wait_until="domcontentloaded")
    page.wait_for_selector("#connection.live", timeout=10_000)
    with override("en"):
        none_yet = live_labels()["devices_none"].replace("{count}", "5")  # a box, two screens, a pad, a TV box
    assert page.inner_text("#device-status") == none_yet  # not "0 online · 0 offline"
    created = post_events(asgi_server, door_a.box_key, [event("d1", door_a.exit, lin)])
    card = page.wait_for_selector(f'.card[data-event-id="{created["results"][0]["id"]}"]', timeout=5_000)
    assert card.inner_text().count("A exit · Out") == 1
    assert door_a.box.name not in card.inner_text()
    now = timezone.now()
    offline = Event.objects.create(
        company=tenant_a.company,
        kind=EventKind.DEVICE_OFFLINE,
        device_kind="pad",
        device_id=door_a.pad.pk,
        device_name="A pad",
        happened_at=now,
        received_at=now,
    )
    row = page.wait_for_selector(f'#device-log li[data-event-id="{offline.pk}"]', timeout=10_000)
    assert "A pad" in row.inner_text()
    assert page.locator(f'.card[data-event-id="{offline.pk}"]').count() == 0


@pytest.mark.browser
def test_once_a_device_reports_the_panel_counts_online_and_offline(asgi_server, client, browser, tenant_a, door_a):
    heartbeat(asgi_server, door_a.box_key)
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    page.wait_for_selector("#device-status .state-online", timeout=5_000)
    assert page.inner_text("#device-status .state-online b") == "1"


@pytest.mark.browser
def test_the_lagging_boxes_figure_follows_the_boxes_without_a_reload(
    asgi_server, client, browser, tenant_a, door_a, settings
):
    settings.LIVE_TICK_SECONDS = 1
    heartbeat(asgi_server, door_a.box_key, gallery_cursor=0)
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    assert page.locator("#device-status .state-lagging").count() == 0
    # A change the box has not applied, made long enough ago: the box is lagging.
    subject = subject_services.subject_create(company=tenant_a.company, actor=None, name="林志明", job_number="E1")
    GalleryChange.objects.for_company(tenant_a.company).filter(subject_ref=subject.pk).update(
        at=timezone.now() - datetime.timedelta(minutes=20)
    )
    page.wait_for_selector("#device-status .state-lagging", timeout=5_000)
    assert page.inner_text("#device-status .state-lagging b") == "1"
    heartbeat(asgi_server, door_a.box_key, gallery_cursor=gallery_sequence(tenant_a.company.pk))
    page.wait_for_selector("#device-status .state-lagging", state="detached", timeout=5_000)


@pytest.mark.django_db
def test_the_dashboard_draws_todays_and_this_weeks_arrivals_per_hour(client, tenant_a, door_a):
    lin = SubjectFactory(company=tenant_a.company, name="林志明")
    now = timezone.now()
    Event.objects.create(company=tenant_a.company, kind=EventKind.RECOGNIZED, subject=lin, subject_name=lin.name,
                         screen=door_a.entrance, direction="in", happened_at=now, received_at=now)  # fmt: skip
    client.force_login(tenant_a.viewer)
    page = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert page.count('<svg viewBox="0 0 480 160" role="img"') == 2
    hour = timezone.localtime(now, tenant_a.company.zone).hour
    assert f"<title>{hour}:00 – 1 arrival</title>" in page
    assert "cdn" not in page.lower()
