"""The owner words the retention policy in English and Traditional Chinese on the company
page, in a real Chromium, with the admin in either language: both texts are there to edit,
each marked with its language, and saving one of them makes the next version of both.
Screenshots go to KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

import pytest

from accounts.services import retention_policy_current
from tests.screenshots import screenshot
from tests.subjects.test_browser_import import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

LABELS = {
    "en": ("Retention policy in English", "Retention policy in Traditional Chinese", "Main language of the policy"),
    "zh-hant": ("英文保存政策", "繁體中文保存政策", "政策的主要語言"),
}


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_owner_edits_the_policy_in_both_languages(asgi_server, browser, tenant_a, tenant_b, language):
    owner = tenant_a.owner
    owner.language = language
    owner.save(update_fields=["language"])
    first = retention_policy_current(company=tenant_a.company)
    page = browser.new_context(
        viewport={"width": 1366, "height": 1400}, locale=language, timezone_id="Asia/Taipei"
    ).new_page()
    sign_in(page, asgi_server, "a-owner@a")
    page.goto(f"{asgi_server}/admin/accounts/company/{tenant_a.company.pk}/change/")

    english, chinese, main = LABELS[language]
    labels = page.inner_text("fieldset:has(#id_retention_policy)")
    assert english in labels and chinese in labels and main in labels
    assert page.input_value("#id_retention_policy") == first.text
    assert page.input_value("#id_retention_policy_zh_hant") == first.translations["zh-hant"]
    assert page.get_attribute("#id_retention_policy_zh_hant", "lang") == "zh-Hant"
    page.locator("#id_retention_policy_zh_hant").scroll_into_view_if_needed()
    screenshot(page, f"company-policy-languages-{language}")

    page.fill("#id_retention_policy_zh_hant", "訪客照片在拜訪結束 30 天後刪除。")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    policy = retention_policy_current(company=tenant_a.company)
    assert (policy.version, policy.text) == (2, first.text)
    assert policy.translations == {"zh-hant": "訪客照片在拜訪結束 30 天後刪除。"}
    assert page.input_value("#id_retention_policy_zh_hant") == "訪客照片在拜訪結束 30 天後刪除。"
    assert retention_policy_current(company=tenant_b.company).version == 1
