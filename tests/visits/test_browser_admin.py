"""The visits admin in a real Chromium at 1366 × 768, in English and Traditional Chinese: the
list fits the screen beside the menu and the filters (no sideways scrolling, long names and
companies wrap), the add form says once which zone its times are in, and Expected today
checks a visitor in and marks a visitor left. Screenshots go to KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from subjects.models import SubjectType
from tests.factories import SubjectFactory
from tests.screenshots import screenshot
from tests.subjects.test_browser_import import sign_in
from tests.visits.helpers import invite
from visits import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WORDS = {
    "en": {"note": "Times are in {company}'s time zone (Asia/Taipei); your computer is 8 hours behind.",
           "leave": "Mark as left", "left": "Left at ", "declined": "No photo — reception checks in",
           "check_in": "Check in", "checked_in": "Checked in at "},
    "zh-hant": {"note": "時間以 {company} 的時區（Asia/Taipei）為準；您的電腦比它慢 8 小時。",
                "leave": "標記為已離開", "left": " 已離開", "declined": "不使用照片，由櫃檯報到",
                "check_in": "報到", "checked_in": " 已報到"},
}  # fmt: skip


def admin_page(browser, base, user, language):
    user.language = language
    user.save(update_fields=["language"])
    page = browser.new_context(viewport={"width": 1366, "height": 768}, locale=language, timezone_id="UTC").new_page()
    sign_in(page, base, f"{user.username}@{user.company.slug}")
    return page


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_visit_list_fits_1366_pixels(asgi_server, browser, tenant_a, language):
    company = tenant_a.company
    host = SubjectFactory(company=company, name="林志明 Lin Chih-ming", subject_type=SubjectType.EMPLOYEE)
    soon = timezone.now() + timedelta(hours=1)
    for number in range(3):
        invite(
            tenant_a, host=host, visitor_name=f"歐陽菲菲 Visitor With A Rather Long Name {number}",
            visitor_company="Acme Taiwan International Trading Company Limited", visitor_email=f"v{number}@example.org",
            starts_at=soon, ends_at=soon + timedelta(days=1, hours=2),
        )  # fmt: skip
    cancelled, _ = invite(tenant_a, host=host, visitor_name="Called Off", visitor_email="c@example.org")
    services.visit_cancel(company=company, actor=tenant_a.admin, visit=cancelled)
    declined, _ = invite(tenant_a, host=host, visitor_name="No Face", visitor_email="d@example.org")
    services.visit_face_decline(visit=declined)  # the longest state there is
    page = admin_page(browser, asgi_server, tenant_a.owner, language)

    page.goto(f"{asgi_server}/admin/visits/visit/")

    results = page.locator("#changelist .results")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    assert results.evaluate("(el) => el.scrollWidth <= el.clientWidth"), "the list scrolls sideways"
    table = page.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= page.locator("#changelist-filter").bounding_box()["x"]
    # Every column is on screen, the last (the badge) too; a long company wraps under the name.
    assert page.locator("#result_list tbody tr").first.locator("td").last.is_visible()
    company_cell = page.locator("#result_list .visitor-company").first
    assert company_cell.bounding_box()["height"] > 20
    assert page.locator(f'#result_list a[href="/admin/visits/visit/{cancelled.pk}/badge/"]').count() == 0
    assert page.locator("#result_list .state-face_declined").is_visible()
    screenshot(page, f"visit-list-{language}")


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_add_form_names_the_zone_once_and_starts_in_the_admins_language(asgi_server, browser, tenant_a, language):
    page = admin_page(browser, asgi_server, tenant_a.owner, language)
    page.goto(f"{asgi_server}/admin/visits/visit/add/")
    page.wait_for_load_state("load")  # Django's date-time shortcuts start on "load"

    notes = [text for text in page.locator(".zone-note:visible, .timezonewarning:visible").all_inner_texts() if text]
    assert notes == [WORDS[language]["note"].format(company=tenant_a.company.name)]
    assert page.locator("#id_language").input_value() == language
    screenshot(page, f"visit-add-{language}")


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_reception_marks_a_visitor_left_from_expected_today(asgi_server, browser, tenant_a, language):
    host = SubjectFactory(company=tenant_a.company, name="林志明", subject_type=SubjectType.EMPLOYEE)
    visit, _ = invite(tenant_a, host=host, visitor_name="林怡君", starts_at=timezone.now() - timedelta(minutes=30))
    services.visit_check_in(company=tenant_a.company, actor=tenant_a.admin, visit=visit)
    page = admin_page(browser, asgi_server, tenant_a.admin, language)
    page.goto(f"{asgi_server}/admin/visits/visit/today/")
    row = page.locator(f'#expected_today tr[data-visit="{visit.pk}"]')

    row.get_by_role("button", name=WORDS[language]["leave"]).click()

    page.wait_for_selector(f'#expected_today tr[data-visit="{visit.pk}"][data-state="left"]')
    visit.refresh_from_db()
    hhmm = timezone.localtime(visit.left_at, tenant_a.company.zone).strftime("%H:%M")
    words = WORDS[language]["left"]
    assert (f"{words}{hhmm}" if language == "en" else f"{hhmm}{words}") in row.inner_text()
    assert row.get_by_role("button").count() == 0
    screenshot(page, f"visit-expected-today-{language}")


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_reception_checks_a_visitor_without_photo_in_from_expected_today(
    asgi_server, browser, tenant_a, language, settings
):
    from integrations.models import VisitorArrival
    from visits.models import ArrivedVia

    settings.JOBS_INLINE = True  # the host's e-mail is sent by the server as it answers the click

    host = SubjectFactory(
        company=tenant_a.company, name="林志明", email="host@a.example", subject_type=SubjectType.EMPLOYEE
    )
    visit, _ = invite(tenant_a, host=host, visitor_name="林怡君", starts_at=timezone.now() - timedelta(minutes=5))
    services.visit_face_decline(visit=visit)
    page = admin_page(browser, asgi_server, tenant_a.admin, language)
    page.goto(f"{asgi_server}/admin/visits/visit/today/")
    row = page.locator(f'#expected_today tr[data-visit="{visit.pk}"]')
    words = WORDS[language]
    assert words["declined"] in row.inner_text()
    screenshot(page, f"visit-expected-today-to-check-in-{language}")

    row.get_by_role("button", name=words["check_in"], exact=True).click()

    page.wait_for_selector(f'#expected_today tr[data-visit="{visit.pk}"][data-state="arrived"]')
    visit.refresh_from_db()
    assert visit.arrived_via == ArrivedVia.RECEPTION
    hhmm = timezone.localtime(visit.arrived_at, tenant_a.company.zone).strftime("%H:%M")
    said = words["checked_in"]
    assert (f"{said}{hhmm}" if language == "en" else f"{hhmm}{said}") in row.inner_text()
    # Checked in once: no second button; the departure is still reception's to mark.
    assert row.get_by_role("button", name=words["check_in"], exact=True).count() == 0
    assert row.get_by_role("button", name=words["leave"]).count() == 1
    assert VisitorArrival.objects.for_company(tenant_a.company).count() == 1  # the host was told, once
    screenshot(page, f"visit-expected-today-check-in-{language}")
