"""In a real headless Chromium, in English and Traditional Chinese: the dashboard's "Expected
today" panel shows the invited visitor, and when a door recognises them the page greets them
like any recognised visitor and the panel turns to "arrived at hh:mm" without a reload; the
TV greets them too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from subjects.models import SubjectType
from tests.events.conftest import event
from tests.events.live_client import post_events
from tests.events.test_browser import signed_in_page
from tests.factories import SubjectFactory
from tests.visits.helpers import invite

WORDS = {
    "en": {"title": "Expected today", "invited": "Invited", "arrived": "Arrived at "},
    "zh-hant": {"title": "今日預約訪客", "invited": "已邀請", "arrived": " 已抵達"},
}


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_panel_follows_the_visitor_from_invited_to_arrived(asgi_server, client, browser, tenants, door_a, language):
    a, b = tenants
    host = SubjectFactory(company=a.company, name="Lin Host", subject_type=SubjectType.EMPLOYEE)
    visit, _ = invite(a, host=host, visitor_name="林怡君", starts_at=timezone.now() - timedelta(minutes=10))
    other_host = SubjectFactory(company=a.company, name="Wang Host", subject_type=SubjectType.EMPLOYEE)
    invite(a, host=other_host, visitor_name="Ana", visitor_email="ana@example.org", starts_at=timezone.now())
    invite(b, visitor_name="Their Visitor", starts_at=timezone.now() - timedelta(minutes=10))
    a.admin.language = language
    a.admin.save(update_fields=["language"])
    words = WORDS[language]

    page = signed_in_page(browser, client, asgi_server, a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_selector("#connection.live", timeout=10_000)
    panel = page.locator("#expected-panel")
    assert words["title"] in panel.inner_text()
    row = page.locator(f'#expected-panel li[data-visit="{visit.pk}"]')
    assert "林怡君" in row.inner_text() and words["invited"] in row.inner_text()
    assert "Their Visitor" not in panel.inner_text()

    tv = browser.new_page()
    tv.goto(f"{asgi_server}/tv/#key={door_a.tv_key}")
    tv.wait_for_selector("#connection.live", timeout=10_000)

    post_events(asgi_server, door_a.box_key, [event("visitor-in", door_a.entrance, visit.visitor)])

    card = page.wait_for_selector(".card.recognized", timeout=5_000)
    assert "林怡君" in card.inner_text()
    # A locator, not an element handle: the panel is swapped for a fresh one by each refresh
    # (one more follows the first a few seconds later), so the row is read wherever it now is.
    arrived = page.locator(f'#expected-panel li[data-visit="{visit.pk}"][data-state="arrived"]')
    arrived.wait_for(timeout=8000)
    visit.refresh_from_db()
    hhmm = timezone.localtime(visit.arrived_at, a.company.zone).strftime("%H:%M")
    expected = f"{words['arrived']}{hhmm}" if language == "en" else f"{hhmm}{words['arrived']}"
    assert expected in arrived.inner_text()
    assert "林怡君" in tv.wait_for_selector(".card.recognized", timeout=5_000).inner_text()

    # The host filter narrows the panel, in place. Waiting for the panel that answers the choice
    # (one row, and its own list showing the host picked), not for any panel with one row.
    assert page.locator("#expected-panel li").count() == 2
    page.select_option("#expected-panel [data-expected-host]", str(host.pk))
    page.wait_for_function(
        """(picked) => document.querySelectorAll('#expected-panel li').length === 1
            && document.querySelector('#expected-panel [data-expected-host]').value === picked""",
        arg=str(host.pk),
        timeout=5_000,
    )
    assert "林怡君" in page.locator("#expected-panel li").inner_text()
    assert page.locator("#expected-panel [data-expected-host]").input_value() == str(host.pk)


# Run in the page: an automatic refresh (all hosts) is sent, then reception picks a host; the
# two answers come back in the other order. The page's fetch is held to choose that order; the
# answers are the server's own panels.
ANSWERS_OUT_OF_ORDER = """async (picked) => {
  const realFetch = window.fetch.bind(window);
  const sent = [];
  window.fetch = (url) => new Promise((resolve) => sent.push({ url, resolve }));
  const answer = async (request) => {
    const html = await (await realFetch(request.url, { credentials: "same-origin" })).text();
    request.resolve({ ok: true, text: () => Promise.resolve(html) });
    await new Promise((done) => setTimeout(done, 0));  // the page's handlers run before this task
  };
  const rows = () => document.querySelectorAll("#expected-panel li").length;
  window.kangarooExpected.refresh();
  const select = document.querySelector("#expected-panel [data-expected-host]");
  select.value = picked;
  select.dispatchEvent(new Event("change", { bubbles: true }));
  await answer(sent[1]);
  const afterTheChoice = rows();
  await answer(sent[0]);
  window.fetch = realFetch;
  return {
    urls: sent.map((request) => request.url.split("?")[1]),
    afterTheChoice,
    afterTheOlderAnswer: rows(),
    picked: document.querySelector("#expected-panel [data-expected-host]").value,
  };
}"""


@pytest.mark.browser
def test_an_older_refresh_answering_late_does_not_undo_the_host_picked(asgi_server, client, browser, tenant_a):
    host = SubjectFactory(company=tenant_a.company, name="Lin Host", subject_type=SubjectType.EMPLOYEE)
    other_host = SubjectFactory(company=tenant_a.company, name="Wang Host", subject_type=SubjectType.EMPLOYEE)
    invite(tenant_a, host=host, visitor_name="林怡君", starts_at=timezone.now())
    invite(tenant_a, host=other_host, visitor_name="Ana", visitor_email="ana@example.org", starts_at=timezone.now())
    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.goto(f"{asgi_server}/dashboard/")
    page.wait_for_function("() => window.kangarooExpected !== undefined", timeout=10_000)

    seen = page.evaluate(ANSWERS_OUT_OF_ORDER, str(host.pk))

    assert seen["urls"] == ["host=", f"host={host.pk}"]
    assert seen == {**seen, "afterTheChoice": 1, "afterTheOlderAnswer": 1, "picked": str(host.pk)}
    assert "林怡君" in page.locator("#expected-panel li").inner_text()
