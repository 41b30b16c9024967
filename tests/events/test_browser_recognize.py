"""In a real headless Chromium: a pad's snapshot of an enrolled person puts their card on the
live dashboard, a stranger's a stranger card; and the admin's "Search by face" page, in
English and Traditional Chinese."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from tests.events.test_browser import signed_in_page
from tests.faces import portraits
from tests.faces.enrolled import enrol, snapshot_of
from tests.screenshots import screenshot


def recognize(server: str, key: str, picture_bytes: bytes) -> dict:
    request = urllib.request.Request(
        f"{server}/api/v1/device/recognize",
        data=json.dumps({"image": base64.b64encode(picture_bytes).decode()}).encode(),
        headers={"Authorization": f"Device {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # only the local test server
        return json.loads(response.read())


@pytest.mark.browser
def test_a_pad_snapshot_puts_the_right_card_on_the_dashboard(asgi_server, client, browser, tenant_a, door_a):
    enrol(tenant_a, "Eileen Collins", portraits.astronaut(), subject_type="vip")
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)

    known = recognize(asgi_server, door_a.pad_key, snapshot_of(portraits.astronaut()))
    card = page.wait_for_selector(f'.card[data-event-id="{known["event_id"]}"]', timeout=10_000)
    assert "Eileen Collins" in card.inner_text() and "type-vip" in card.get_attribute("class")

    stranger = recognize(asgi_server, door_a.pad_key, snapshot_of(portraits.grace_hopper()))
    assert stranger["kind"] == "stranger"
    card = page.wait_for_selector(f'.card.stranger[data-event-id="{stranger["event_id"]}"]', timeout=10_000)
    page.wait_for_function("() => document.querySelector('.card.stranger img').naturalWidth > 0", timeout=5_000)
    assert door_a.entrance.name in card.inner_text()  # the pad's camera


@pytest.mark.browser
@pytest.mark.parametrize(("language", "heading"), [("en", "Search by face"), ("zh-hant", "以臉搜尋")])
def test_the_search_by_face_page_shows_cards(asgi_server, client, browser, tenant_a, tmp_path, language, heading):
    eileen = enrol(tenant_a, "Eileen Collins", portraits.astronaut(), job_number="E-0001")
    enrol(tenant_a, "Grace Hopper", portraits.grace_hopper(), job_number="E-0002")
    tenant_a.admin.language = language
    tenant_a.admin.save(update_fields=["language"])
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(f"{asgi_server}/admin/subjects/subject/")
    page.click("a.face-search-link")
    assert heading in page.inner_text("#content")
    frame = tmp_path / "frame.jpg"
    frame.write_bytes(snapshot_of(portraits.astronaut()))
    page.set_input_files("#id_image", str(frame))
    page.click("#face-search-form input[type=submit]")
    page.wait_for_selector("#face-search-results .face-card", timeout=15_000)
    cards = page.locator("#face-search-results .face-card")
    assert cards.count() == 2
    assert cards.first.get_attribute("data-subject-id") == str(eileen.pk)
    assert "face-card-match" in cards.first.get_attribute("class")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.face-card-photo, .face-search-face')].every(i => i.naturalWidth > 0)",
        timeout=5_000,
    )
    screenshot(page, f"search-by-face-{language}", tmp_path)
    assert errors == []  # nothing refused by the Content-Security-Policy, no broken image
