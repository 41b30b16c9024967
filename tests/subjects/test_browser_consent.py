"""Consent in a real Chromium, in English and Traditional Chinese: the owner words the
retention policy on the company page; HR records a subject's paper consent with the signed
form and a photo on one page, then withdraws it through the confirmation page. Screenshots
go to KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

import pytest

from accounts.services import retention_policy_current
from subjects.models import Consent, Photo
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes
from tests.screenshots import screenshot
from tests.subjects.test_browser_import import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_hr_records_and_withdraws_a_consent(asgi_server, browser, tenant_a, tmp_path, language):
    owner = tenant_a.owner
    owner.language = language
    owner.save(update_fields=["language"])
    subject = SubjectFactory(company=tenant_a.company, consent=False, name="林志明", job_number="E-77")
    page = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale=language, timezone_id="Asia/Taipei"
    ).new_page()
    sign_in(page, asgi_server, "a-owner@a")

    # The owner rewords the policy: version 2.
    page.goto(f"{asgi_server}/admin/accounts/company/{tenant_a.company.pk}/change/")
    page.fill("#id_retention_policy", "臉部照片在您撤回同意時立即刪除。")
    screenshot(page, f"company-privacy-{language}")
    page.click("input[name=_save]")
    page.wait_for_url(f"{asgi_server}/admin/**")
    assert retention_policy_current(company=tenant_a.company).version == 2

    # A photo without consent is refused on the page, nothing stored.
    (tmp_path / "face.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "form.jpg").write_bytes(jpeg_bytes((300, 420)))
    change = f"{asgi_server}/admin/subjects/subject/{subject.pk}/change/"
    page.goto(change)
    page.set_input_files("#id_photos-0-upload", str(tmp_path / "face.jpg"))
    page.click("input[name=_continue]")
    page.wait_for_selector(".errornote")
    assert not Photo.objects.for_company(tenant_a.company).exists()

    # With the paper form on the same page, both are kept.
    page.goto(change)
    page.select_option("#id_consents-0-consent_method", value="paper")
    page.set_input_files("#id_consents-0-evidence_upload", str(tmp_path / "form.jpg"))
    page.set_input_files("#id_photos-0-upload", str(tmp_path / "face.jpg"))
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    consent = Consent.objects.for_company(tenant_a.company).get()
    assert (consent.method, consent.policy.version, bool(consent.evidence)) == ("paper", 2, True)
    assert Photo.objects.for_company(tenant_a.company).filter(subject=subject).count() == 1
    assert page.locator("#consents-group a[href*='/evidence']").count() == 1
    screenshot(page, f"subject-consent-{language}")

    # Withdrawing asks first, then deletes the photo.
    page.locator("#consents-group a[href*='/consent/withdraw/']").click()
    page.wait_for_selector("#consent-withdraw-form")
    screenshot(page, f"consent-withdraw-{language}")
    page.click("#consent-withdraw-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert not Photo.objects.for_company(tenant_a.company).exists()
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None and consent.withdrawn_by == owner
