"""Unknown people and corrections in a real headless Chromium: the admin's list and page of an
unknown person, and the dashboard's cards (how often a stranger was seen; a corrected card).
Screenshots in English and Traditional Chinese go to $KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

import json
import urllib.request

import pytest

from accounts.authentication import token_pair_for
from events.models import Event, UnknownPerson
from tests.events import live_client
from tests.events.conftest import event
from tests.events.test_browser import signed_in_page
from tests.events.test_unknown_people import drain, sightings
from tests.faces import portraits
from tests.factories import SubjectFactory
from tests.screenshots import screenshot


def post_events(server: str, key: str, items: list[dict]) -> dict:
    """As a box posts; the answer waits for the inline clustering job (dlib), hence the timeout."""
    answer = live_client.post_events(server, key, items, timeout=120)
    drain()
    return answer


def correct(server: str, user, event_id: int, subject_id: int) -> dict:
    """An admin corrects the event through the API, as a client would."""
    request = urllib.request.Request(
        f"{server}/api/v1/events/{event_id}/correct",
        data=json.dumps({"subject": subject_id}).encode(),
        headers={"Authorization": f"Bearer {token_pair_for(user)['access']}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # only the local test server
        return json.loads(response.read())


def csp_violations(page) -> list[str]:
    found: list[str] = []
    page.on(
        "console", lambda message: found.append(message.text) if "Content Security Policy" in message.text else None
    )
    return found


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_admin_lists_unknown_people_and_shows_one(asgi_server, client, browser, tenant_a, door_a, language):
    tenant_a.admin.language = language
    tenant_a.admin.save(update_fields=["language"])
    post_events(asgi_server, door_a.box_key, [event(f"a{n}", door_a.entrance, snapshot=s)
                                              for n, s in enumerate(sightings(portraits.astronaut())[:3])])  # fmt: skip
    post_events(
        asgi_server, door_a.box_key, [event("g0", door_a.exit, snapshot=sightings(portraits.grace_hopper())[0])]
    )
    people = list(UnknownPerson.objects.for_company(tenant_a.company).order_by("-last_seen_at"))
    assert [p.sightings for p in people] == [1, 3]

    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    violations = csp_violations(page)
    page.goto(f"{asgi_server}/admin/events/unknownperson/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "3" in rows.nth(1).inner_text() and "A entrance" in rows.nth(1).inner_text()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#result_list img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, f"unknown-people-list-{language}")

    page.goto(f"{asgi_server}/admin/events/unknownperson/{people[1].pk}/change/")
    page.wait_for_selector("#unknown-person-panel")
    assert page.locator(".unknown-snapshots img").count() == 3
    assert page.locator(".unknown-sightings tbody tr").count() == 3
    screenshot(page, f"unknown-person-{language}")

    page.fill("#id_enrol-name", "Eileen Collins")
    page.fill("#id_enrol-job_number", "E1999")
    page.select_option("#id_enrol-consent_method", value="paper")  # they signed the consent form
    page.locator("#enrol-form input[type=submit]").click()
    page.wait_for_url("**/admin/subjects/subject/*/change/**")
    assert Event.objects.for_company(tenant_a.company).filter(subject_name="Eileen Collins").count() == 3
    assert violations == []


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_dashboard_counts_a_strangers_sightings_and_replaces_a_corrected_card(
    asgi_server, client, browser, tenant_a, door_a, language
):
    tenant_a.admin.language = language
    tenant_a.admin.save(update_fields=["language"])
    wrong = SubjectFactory(company=tenant_a.company, name="林志明")
    right = SubjectFactory(company=tenant_a.company, name="陳美玲")
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    violations = csp_violations(page)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)

    shots = sightings(portraits.grace_hopper())
    post_events(asgi_server, door_a.box_key, [event("s0", door_a.entrance, snapshot=shots[0])])
    second = post_events(asgi_server, door_a.box_key, [event("s1", door_a.entrance, snapshot=shots[1])])
    card = page.locator(f'.card[data-event-id="{second["results"][0]["id"]}"] .seen')
    card.wait_for(timeout=10_000)
    assert "2" in card.inner_text()

    matched = post_events(asgi_server, door_a.box_key, [event("m1", door_a.entrance, wrong)])
    event_id = matched["results"][0]["id"]
    page.wait_for_selector(f'.card[data-event-id="{event_id}"]', timeout=5_000)
    correct(asgi_server, tenant_a.admin, event_id, right.pk)
    fixed = page.wait_for_selector(f'.card.corrected[data-event-id="{event_id}"]', timeout=5_000)
    assert "陳美玲" in fixed.inner_text() and "林志明" not in fixed.inner_text()
    page.wait_for_function("() => document.querySelector('#arrivals').textContent === '1'")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.wait_for_timeout(600)  # the replaced card's arrival animation ends
    screenshot(page, f"dashboard-corrected-{language}")
    assert violations == []
