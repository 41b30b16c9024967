"""The visitor's page in a real Chromium on a phone-sized screen, in English and Traditional
Chinese: the visitor opens the link from the invitation, reads the policy, agrees, sends a
selfie (a real portrait), and is told they are ready; a photo without a face is explained
first. Screenshots go to KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from subjects.models import Consent, Photo, PhotoStatus, SubjectType
from tests.faces import portraits
from tests.factories import SubjectFactory
from tests.screenshots import screenshot
from tests.visits.helpers import invite

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WORDS = {
    "en": {"agree": "Agree and continue", "no_face": "We could not find a face", "ready": "You are all set"},
    "zh-hant": {"agree": "同意並繼續", "no_face": "我們找不到臉部", "ready": "一切就緒"},
}


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_visitor_enrols_from_their_phone(asgi_server, browser, tenant_a, tenant_b, settings, tmp_path, language):
    settings.JOBS_INLINE = True  # the enrolment job runs in the server, after the upload's commit
    host = SubjectFactory(company=tenant_a.company, name="林志明", subject_type=SubjectType.EMPLOYEE)
    SubjectFactory(company=tenant_b.company, name="Other Company Person")
    visit, token = invite(tenant_a, host=host, language=language, starts_at=timezone.now() + timedelta(minutes=20))
    words = WORDS[language]
    (tmp_path / "landscape.jpg").write_bytes(portraits.jpeg(portraits.landscape()))
    (tmp_path / "selfie.jpg").write_bytes(portraits.jpeg(portraits.grace_hopper()))
    page = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en", timezone_id="Asia/Taipei"
    ).new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{asgi_server}/visit/{token}/")
    assert page.locator("html").get_attribute("lang") == ("zh-Hant" if language == "zh-hant" else "en")
    assert "林志明" in page.inner_text("main") and "Other Company Person" not in page.content()
    screenshot(page, f"visit-consent-{language}")
    # The button is refused by the browser until the box is ticked.
    page.click("form.consent button")
    assert not Consent.objects.for_company(tenant_a.company).filter(subject=visit.visitor).exists()
    page.check("form.consent input[name=agree]")
    page.click(f"text={words['agree']}")
    page.wait_for_selector("form.photo")
    assert Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor).method == "web"

    page.set_input_files("input[name=photo]", str(tmp_path / "landscape.jpg"))
    page.click("form.photo button")
    page.wait_for_selector(f"text={words['no_face']}", timeout=20000)
    screenshot(page, f"visit-no-face-{language}")

    page.set_input_files("input[name=selfie]", str(tmp_path / "selfie.jpg"))
    page.click("form.photo button")
    page.wait_for_selector(f"text={words['ready']}", timeout=20000)
    screenshot(page, f"visit-ready-{language}")
    [photo] = Photo.objects.for_company(tenant_a.company).filter(subject=visit.visitor)
    assert photo.status == PhotoStatus.OK
    assert errors == []  # nothing refused by the content security policy, no script errors
