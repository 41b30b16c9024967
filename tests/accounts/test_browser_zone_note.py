"""A date-time field in a real Chromium whose clock is in another zone than the company's:
the note under the field names the company's zone and how far the computer is from it, in
the user's language, where Django would say "You are N hours ahead of server time" (the
admin runs in the company's zone, so that "server time" is really the company's)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.screenshots import screenshot
from tests.subjects.test_browser_import import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def visitor_form(browser, base: str, user, *, language: str, browser_zone: str):
    user.language = language
    user.save(update_fields=["language"])
    page = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale=language, timezone_id=browser_zone
    ).new_page()
    sign_in(page, base, f"{user.username}@{user.company.slug}")
    page.goto(f"{base}/admin/subjects/subject/add/")
    page.wait_for_load_state("load")  # Django's date-time shortcuts start on "load"
    page.locator("details:has(#id_visit_start_0) > summary").click()  # open the "Visit" section
    return page


def visible_notes(page) -> list[str]:
    return [text for text in page.locator(".zone-note:visible, .timezonewarning:visible").all_inner_texts() if text]


@pytest.mark.parametrize(
    ("language", "browser_zone", "expected"),
    [
        ("en", "UTC", "Times are in {company}'s time zone (Asia/Taipei); your computer is 8 hours behind."),
        ("en", "Asia/Tokyo", "Times are in {company}'s time zone (Asia/Taipei); your computer is 1 hour ahead."),
        ("zh-hant", "UTC", "時間以 {company} 的時區（Asia/Taipei）為準；您的電腦比它慢 8 小時。"),
        ("zh-hant", "Asia/Kolkata", "時間以 {company} 的時區（Asia/Taipei）為準；您的電腦比它慢 2.5 小時。"),
    ],
)
def test_the_note_names_the_companys_zone_and_the_computers_distance_from_it(
    asgi_server, browser, tenant_a, language, browser_zone, expected
):
    page = visitor_form(browser, asgi_server, tenant_a.owner, language=language, browser_zone=browser_zone)

    # One note per date-time field (the visit's start and end, when a new consent was given),
    # none for the start date, which is a date alone; nothing says "server time".
    assert visible_notes(page) == [expected.format(company=tenant_a.company.name)] * 3
    assert page.locator("#consents-group .time-zone:visible").count() == 1
    assert page.locator("#id_start_date").locator("xpath=..").locator(".zone-note, .timezonewarning").count() == 0
    body = page.inner_text("body")
    assert "server time" not in body and "伺服器" not in body
    page.locator(".zone-note").first.scroll_into_view_if_needed()
    screenshot(page, f"zone-note-{language}-{browser_zone.replace('/', '-')}")


def test_no_note_when_the_computer_is_in_the_companys_zone(asgi_server, browser, tenant_a):
    page = visitor_form(browser, asgi_server, tenant_a.owner, language="en", browser_zone="Asia/Taipei")
    assert visible_notes(page) == []
    assert page.locator(".time-zone").first.inner_text() == "Time zone: Asia/Taipei (UTC+08:00)"


def test_each_company_sees_its_own_name_and_zone(asgi_server, browser, tenants):
    a, b = tenants
    b.company.time_zone = "Europe/Berlin"
    b.company.save(update_fields=["time_zone"])
    page = visitor_form(browser, asgi_server, b.owner, language="en", browser_zone="UTC")

    hours = int(datetime.now(ZoneInfo("Europe/Berlin")).utcoffset().total_seconds() // 3600)  # 1, or 2 in summer
    unit = "hour" if hours == 1 else "hours"
    expected = f"Times are in {b.company.name}'s time zone (Europe/Berlin); your computer is {hours} {unit} behind."
    assert visible_notes(page) == [expected] * 3
    assert a.company.name not in page.inner_text("body")
