"""The retention page in a real Chromium, in English and Traditional Chinese: an owner sees
per rule what the next purge removes, purges now and sees the run; an admin has no button.
Screenshots go to KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

import pytest
from django.utils import timezone

from privacy.selectors import RULES, purge_preview
from tests.privacy.seed import seed_every_age
from tests.privacy.test_purge import EXPECTED
from tests.screenshots import screenshot
from tests.subjects.test_browser_import import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_an_owner_sees_the_preview_and_purges_now(asgi_server, browser, tenants, settings, language):
    settings.JOBS_INLINE = True
    tenant_a, tenant_b = tenants
    tenant_a.owner.language = language
    tenant_a.owner.save(update_fields=["language"])
    seed_every_age(tenant_a.company, timezone.now())
    seed_every_age(tenant_b.company, timezone.now())
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=language, timezone_id="Asia/Taipei")

    admin_page = context.new_page()
    sign_in(admin_page, asgi_server, "a-admin@a")
    admin_page.goto(f"{asgi_server}/admin/privacy/retentionpurge/")
    assert admin_page.locator("#purge_preview tr[data-rule=events] .count").inner_text() == "3"
    assert admin_page.locator("#purge-now").count() == 0
    context.clear_cookies()

    page = context.new_page()
    sign_in(page, asgi_server, "a-owner@a")
    page.goto(f"{asgi_server}/admin/privacy/retentionpurge/")
    shown = {
        row.get_attribute("data-rule"): int(row.locator(".count").inner_text())
        for row in page.locator("#purge_preview tbody tr").all()
    }
    assert shown == EXPECTED
    screenshot(page, f"retention-purge-{language}")
    page.click("#purge-now input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#purge_preview .count").all_inner_texts() == ["0"] * len(RULES)
    assert "a-owner" in page.locator("#purge_runs tbody").inner_text()
    screenshot(page, f"retention-purged-{language}")
    assert purge_preview(company=tenant_b.company, now=timezone.now()) == EXPECTED
