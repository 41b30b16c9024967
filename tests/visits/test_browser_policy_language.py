"""A visitor invited in Traditional Chinese reads the retention policy in Chinese on their
phone, in a real Chromium, and agrees to it; when the policy has no Chinese text they are
told, in Chinese, that it is only available in English. Screenshots go to
KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import retention_policy_set
from subjects.models import Consent, SubjectType
from tests.factories import SubjectFactory
from tests.screenshots import screenshot
from tests.visits.helpers import invite

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHINESE = "我們使用臉部辨識開門。訪客的照片在拜訪結束 30 天後刪除。"


def phone(browser):
    return browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en", timezone_id="Asia/Taipei"
    ).new_page()


def test_a_chinese_visitor_reads_the_chinese_policy_and_agrees(asgi_server, browser, tenant_a):
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": CHINESE})
    host = SubjectFactory(company=tenant_a.company, name="林志明", subject_type=SubjectType.EMPLOYEE)
    visit, token = invite(tenant_a, host=host, language="zh-hant", starts_at=timezone.now() + timedelta(minutes=20))
    page = phone(browser)
    page.goto(f"{asgi_server}/visit/{token}/")

    assert page.inner_text(".policy-text") == CHINESE
    assert "第 2 版" in page.inner_text(".policy") and page.locator(".policy-language").count() == 0
    screenshot(page, "visit-policy-zh-hant")
    page.check("form.consent input[name=agree]")
    page.click("text=同意並繼續")
    page.wait_for_selector("form.photo")
    consent = Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert (consent.policy.version, consent.policy_language) == (2, "zh-hant")


def test_without_a_chinese_text_the_visitor_is_told_in_chinese(asgi_server, browser, tenant_a):
    retention_policy_set(
        company=tenant_a.company, actor=tenant_a.owner, texts={"en": "Visitor photos go 30 days after.", "zh-hant": ""}
    )
    host = SubjectFactory(company=tenant_a.company, name="林志明", subject_type=SubjectType.EMPLOYEE)
    visit, token = invite(tenant_a, host=host, language="zh-hant", starts_at=timezone.now() + timedelta(minutes=20))
    page = phone(browser)
    page.goto(f"{asgi_server}/visit/{token}/")

    assert page.inner_text(".policy-language") == "本政策僅提供英文版本。"
    assert page.inner_text(".policy-text") == "Visitor photos go 30 days after."
    screenshot(page, "visit-policy-zh-hant-fallback")
    page.check("form.consent input[name=agree]")
    page.click("text=同意並繼續")
    page.wait_for_selector("form.photo")
    assert Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor).policy_language == "en"
