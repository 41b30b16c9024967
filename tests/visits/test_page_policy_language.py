"""The policy on the visitor's page is in the visitor's language: the text of the current
version in it, else the main text with a note, in the visitor's language, saying which
language the policy is only available in; the consent names the version and the language
of the words shown, and the person's access export holds those words."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import retention_policy_current, retention_policy_set
from privacy import access
from subjects.models import Consent, ConsentMethod, SubjectType
from tests.factories import SubjectFactory
from tests.visits.helpers import invite

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(tenant_a):
    return SubjectFactory(company=tenant_a.company, name="Lin Chih-ming", subject_type=SubjectType.EMPLOYEE)


def visit_in(tenant, host, language):
    return invite(tenant, host=host, language=language, starts_at=timezone.now() + timedelta(minutes=30))


def shown_language(html: str) -> str:
    return re.search(r'<input type="hidden" name="policy_language" value="([\w-]+)">', html)[1]


def agree(client, token, html, **query):
    version = re.search(r'name="policy_version" value="(\d+)"', html)[1]
    return client.post(
        f"/visit/{token}/" + (f"?lang={query['lang']}" if query else ""),
        {"action": "consent", "agree": "1", "policy_version": version, "policy_language": shown_language(html)},
    )


def test_a_chinese_visitor_reads_and_agrees_to_the_chinese_text(tenant_a, tenant_b, host, client):
    retention_policy_set(
        company=tenant_a.company, actor=tenant_a.owner, texts={"en": "Kept 30 days.", "zh-hant": "保存 30 天。"}
    )
    retention_policy_set(company=tenant_b.company, actor=tenant_b.owner, texts={"zh-hant": "乙公司的條文。"})
    visit, token = visit_in(tenant_a, host, "zh-hant")

    html = client.get(f"/visit/{token}/").content.decode()
    assert '<div class="policy-text" lang="zh-Hant"><p>保存 30 天。</p></div>' in html
    assert "Kept 30 days." not in html and "乙公司" not in html and "僅提供" not in html
    assert "第 2 版" in html and shown_language(html) == "zh-hant"

    assert agree(client, token, html).status_code == 302
    consent = Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert (consent.method, consent.policy.version, consent.policy_language) == (ConsentMethod.WEB, 2, "zh-hant")
    assert consent.policy.text_for(consent.policy_language).text == "保存 30 天。"


def test_without_a_chinese_text_the_main_one_is_shown_with_a_note_in_chinese(tenant_a, host, client):
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"en": "Kept 30 days.", "zh-hant": ""})
    visit, token = visit_in(tenant_a, host, "zh-hant")

    html = client.get(f"/visit/{token}/").content.decode()
    assert "本政策僅提供英文版本。" in html
    assert '<div class="policy-text" lang="en"><p>Kept 30 days.</p></div>' in html
    assert shown_language(html) == "en"
    # An English reader of the same page gets no note.
    assert "only available" not in client.get(f"/visit/{token}/?lang=en").content.decode()

    agree(client, token, html)
    consent = Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert (consent.policy.version, consent.policy_language) == (2, "en")


def test_an_english_reader_of_a_chinese_only_policy_is_told_so_in_english(tenant_a, host, client):
    retention_policy_set(
        company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": "只有中文。", "en": ""}, language="zh-hant"
    )
    _visit, token = visit_in(tenant_a, host, "en")
    html = client.get(f"/visit/{token}/").content.decode()
    assert "This policy is only available in Traditional Chinese." in html
    assert '<div class="policy-text" lang="zh-Hant"><p>只有中文。</p></div>' in html


def test_the_language_switch_changes_the_words_and_the_recorded_language(tenant_a, host, client):
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": "中文條文。"})
    visit, token = visit_in(tenant_a, host, "zh-hant")
    html = client.get(f"/visit/{token}/?lang=en").content.decode()
    assert "中文條文。" not in html and shown_language(html) == "en"
    agree(client, token, html, lang="en")
    consent = Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert consent.policy_language == "en"


def test_a_made_up_language_is_refused_in_words_and_nothing_recorded(tenant_a, host, client):
    visit, token = visit_in(tenant_a, host, "en")
    client.get(f"/visit/{token}/")
    answer = client.post(
        f"/visit/{token}/", {"action": "consent", "agree": "1", "policy_version": "1", "policy_language": "xx"}
    )
    assert answer.status_code == 400
    assert "not one of the product&#x27;s languages" in answer.content.decode()
    assert not Consent.objects.for_company(tenant_a.company).filter(subject=visit.visitor).exists()


def test_the_access_export_holds_the_words_in_the_language_shown(tenant_a, host, client, tmp_path):
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": "保存 30 天。"})
    visit, token = visit_in(tenant_a, host, "zh-hant")
    agree(client, token, client.get(f"/visit/{token}/").content.decode())
    # A later version changes nothing of what this consent names.
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": "保存 7 天。"})
    assert retention_policy_current(company=tenant_a.company).version == 3

    out = tmp_path / "export.zip"
    with out.open("wb") as file:
        access.subject_access_export(company=tenant_a.company, actor=tenant_a.owner, subject=visit.visitor, out=file)
    record = json.loads(zipfile.ZipFile(out).read("subject.json"))
    [consent] = record["consents"]
    assert (consent["policy_version"], consent["policy_language"], consent["policy_text"]) == (
        2,
        "zh-hant",
        "保存 30 天。",
    )
