"""The retention policy in each of the product's languages: one version number covers every
language's text; a new company's first version is written in all of them; a reader of a
language without a text is shown the main one; owners edit the texts in the admin and the
API (any change is a new version); another company's policy is never touched nor shown."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone, translation

from accounts.models import AuditLog, RetentionPolicy
from accounts.services import retention_policy_current, retention_policy_set
from kangaroo.errors import KangarooError

pytestmark = pytest.mark.django_db

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_a_new_company_s_policy_is_written_in_english_and_traditional_chinese(tenant_a):
    with translation.override("zh-hant"):  # whoever reads it first, the main language is the site's
        policy = retention_policy_current(company=tenant_a.company)
    assert (policy.version, policy.language) == (1, "en")
    assert set(policy.texts) == {"en", "zh-hant"}
    english, chinese = policy.texts["en"], policy.texts["zh-hant"]
    assert "face recognition" in english and "30 days" in english and not CHINESE.search(english)
    assert CHINESE.search(chinese) and "30" in chinese and tenant_a.company.name in chinese


def test_a_reader_is_shown_their_language_s_text_else_the_main_one(tenant_a):
    policy = RetentionPolicy(company=tenant_a.company, version=3, text="Main words.", language="en",
                             translations={"zh-hant": "中文條文。"})  # fmt: skip
    assert policy.text_for("zh-hant") == policy.text_for("zh-Hant")
    assert (policy.text_for("zh-hant").text, policy.text_for("zh-hant").fallback) == ("中文條文。", False)
    assert (policy.text_for("en").language, policy.text_for("en").fallback) == ("en", False)

    english_only = RetentionPolicy(company=tenant_a.company, version=4, text="Main words.", language="en")
    shown = english_only.text_for("zh-hant")
    assert (shown.language, shown.text, shown.fallback) == ("en", "Main words.", True)
    with translation.override("zh-hant"):
        assert shown.language_name == "英文"
    chinese_main = RetentionPolicy(company=tenant_a.company, version=5, text="只有中文。", language="zh-hant")
    assert (chinese_main.text_for("en").language, chinese_main.text_for("en").fallback) == ("zh-hant", True)


def test_a_change_in_either_language_is_a_new_version_for_both(tenant_a):
    company, owner = tenant_a.company, tenant_a.owner
    first = retention_policy_current(company=company)

    english = retention_policy_set(company=company, actor=owner, texts={"en": "Photos are kept 30 days."})
    assert (english.version, english.texts) == (
        2,
        {"en": "Photos are kept 30 days.", "zh-hant": first.texts["zh-hant"]},
    )
    chinese = retention_policy_set(company=company, actor=owner, texts={"zh-hant": "照片保存 30 天。"})
    assert (chinese.version, chinese.text, chinese.translations) == (
        3,
        "Photos are kept 30 days.",
        {"zh-hant": "照片保存 30 天。"},
    )
    # The same words again, whitespace aside, change nothing.
    assert retention_policy_set(company=company, actor=owner, texts={"zh-hant": " 照片保存 30 天。\r\n"}).version == 3
    # Taking a language's text away is a change too; its readers then get the main text.
    removed = retention_policy_set(company=company, actor=owner, texts={"zh-hant": ""})
    assert (removed.version, removed.texts, removed.text_for("zh-hant").fallback) == (
        4,
        {"en": "Photos are kept 30 days."},
        True,
    )
    # So is making another language the main one.
    switched = retention_policy_set(
        company=company, actor=owner, texts={"zh-hant": "照片保存 30 天。"}, language="zh-hant"
    )
    assert (switched.version, switched.language, switched.text) == (5, "zh-hant", "照片保存 30 天。")
    assert switched.translations == {"en": "Photos are kept 30 days."}
    # Earlier versions keep their words.
    assert RetentionPolicy.objects.for_company(company).get(version=2).texts["zh-hant"] == first.texts["zh-hant"]
    logged = AuditLog.objects.for_company(company).filter(action="retention_policy.create").order_by("id")
    assert [entry.changes["languages"] for entry in logged] == [
        ["en", "zh-hant"], ["en", "zh-hant"], ["en"], ["en", "zh-hant"]
    ]  # fmt: skip


def test_the_main_language_cannot_be_left_without_a_text_nor_a_language_be_invented(tenant_a):
    company, owner = tenant_a.company, tenant_a.owner
    retention_policy_current(company=company)
    retention_policy_set(company=company, actor=owner, texts={"zh-hant": ""})
    attempts = [
        ({"texts": {"en": ""}}, "retention_policy_main_text_missing"),
        ({"language": "zh-hant"}, "retention_policy_main_text_missing"),
        ({"texts": {"fr": "Nos règles."}}, "retention_policy_language_unknown"),
        ({"language": "fr"}, "retention_policy_language_unknown"),
        ({"text": "  "}, "validation_error"),
    ]
    for change, code in attempts:
        with pytest.raises(KangarooError) as raised:
            retention_policy_set(company=company, actor=owner, **change)
        assert raised.value.code == code, change
    assert retention_policy_current(company=company).version == 2


# --- The API ----------------------------------------------------------------------------------


def test_the_texts_round_trip_through_the_company_api(api, tenant_a):
    owner = api(tenant_a.owner)
    body = owner.get("/api/v1/company").json()
    assert (body["retention_policy_version"], body["retention_policy_language"]) == (1, "en")
    assert set(body["retention_policy_texts"]) == {"en", "zh-hant"}
    assert body["retention_policy"] == body["retention_policy_texts"]["en"]

    changed = owner.patch(
        "/api/v1/company", {"retention_policy_texts": {"zh-hant": "訪客照片在拜訪結束 10 天後刪除。"}}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert body["retention_policy_version"] == 2
    assert body["retention_policy_texts"]["zh-hant"] == "訪客照片在拜訪結束 10 天後刪除。"
    assert owner.get("/api/v1/company").json()["retention_policy_texts"] == body["retention_policy_texts"]

    # The field existing clients send still changes the main text, keeping the other languages.
    body = owner.patch(
        "/api/v1/company", {"retention_policy": "Visitor photos go 10 days after."}, format="json"
    ).json()
    assert body["retention_policy_version"] == 3
    assert body["retention_policy_texts"] == {
        "en": "Visitor photos go 10 days after.", "zh-hant": "訪客照片在拜訪結束 10 天後刪除。"
    }  # fmt: skip

    # Chinese becomes the main language: one new version.
    body = owner.patch("/api/v1/company", {"retention_policy_language": "zh-Hant"}, format="json").json()
    assert (body["retention_policy_version"], body["retention_policy_language"]) == (4, "zh-hant")
    assert body["retention_policy"] == "訪客照片在拜訪結束 10 天後刪除。"

    versions = api(tenant_a.viewer).get("/api/v1/retention-policies").json()["results"]
    assert [(v["version"], v["language"]) for v in versions] == [(4, "zh-hant"), (3, "en"), (2, "en"), (1, "en")]
    assert versions[1]["texts"]["zh-hant"] == "訪客照片在拜訪結束 10 天後刪除。"


def test_bad_texts_are_refused_with_stable_codes_and_nothing_written(api, tenant_a):
    owner = api(tenant_a.owner)
    owner.get("/api/v1/company")
    refused = [
        (
            {"retention_policy_texts": {"fr": "Nos règles."}},
            "retention_policy_language_unknown",
            "retention_policy_texts",
        ),
        ({"retention_policy_language": "de"}, "retention_policy_language_unknown", "retention_policy_language"),
        ({"retention_policy_texts": {"en": "  "}}, "retention_policy_main_text_missing", "retention_policy"),
        ({"retention_policy_texts": ["en", "Words"]}, "validation_error", "retention_policy_texts"),
        ({"retention_policy_texts": {"en": None}}, "validation_error", "retention_policy_texts"),
        ({"retention_policy_texts": {"zh-hant": "字" * 20001}}, "validation_error", "retention_policy_texts"),
        # A valid setting alongside a bad text is not saved either.
        ({"consent_required": False, "retention_policy_texts": {"xx": "?"}}, "retention_policy_language_unknown", None),
    ]
    for payload, code, field in refused:
        response = owner.patch("/api/v1/company", payload, format="json")
        assert response.status_code == 400, payload
        error = response.json()["error"]
        assert error["code"] == code, payload
        assert field is None or any(name.startswith(field) for name in error["fields"]), (payload, error)
    tenant_a.company.refresh_from_db()
    assert tenant_a.company.consent_required is True
    assert retention_policy_current(company=tenant_a.company).version == 1


def test_only_owners_change_the_texts(api, tenant_a):
    for user in (tenant_a.admin, tenant_a.viewer):
        response = api(user).patch("/api/v1/company", {"retention_policy_texts": {"zh-hant": "改了。"}}, format="json")
        assert response.status_code == 403
    assert retention_policy_current(company=tenant_a.company).version == 1


def test_two_companies_texts_are_their_own(api, tenants):
    a, b = tenants
    api(a.owner).patch("/api/v1/company", {"retention_policy_texts": {"zh-hant": "甲公司的條文。"}}, format="json")
    theirs = api(b.owner).get("/api/v1/company").json()
    assert theirs["retention_policy_version"] == 1 and "甲公司" not in str(theirs)
    assert b.company.name in theirs["retention_policy_texts"]["zh-hant"]
    listed = api(b.viewer).get("/api/v1/retention-policies").json()["results"]
    assert [v["version"] for v in listed] == [1] and "甲公司" not in str(listed)
    mine = RetentionPolicy.objects.for_company(a.company).get(version=2)
    assert api(b.viewer).get(f"/api/v1/retention-policies/{mine.pk}").status_code == 404


# --- The admin --------------------------------------------------------------------------------


def _company_form(company, **policy) -> dict:
    return {
        "name": company.name, "time_zone": company.time_zone, "work_start": "09:00:00", "work_end": "18:00:00",
        "date_order": "", "face_match_threshold": "0.55", "consent_required": "on", "retention_visitor_days": "30",
        "retention_stranger_days": "7", "retention_event_days": "365", "retention_inactive_days": "1095",
        "retention_audit_days": "730", **policy,
    }  # fmt: skip


def test_an_owner_edits_both_texts_in_the_admin(admin_client_for, tenants):
    a, b = tenants
    client = admin_client_for(a.owner)
    url = f"/admin/accounts/company/{a.company.pk}/change/"
    first = retention_policy_current(company=a.company)
    page = client.get(url).content.decode()
    textareas = dict(re.findall(r'<textarea name="(retention_policy\w*)"[^>]* lang="([\w-]+)"', page))
    assert textareas == {"retention_policy": "en", "retention_policy_zh_hant": "zh-Hant"}
    assert 'name="retention_policy_en"' not in page  # English is the main text's field
    assert first.texts["zh-hant"][:20] in page

    # Only the Chinese text changes: a new version, the English one kept.
    form = _company_form(a.company, retention_policy=first.text, retention_policy_zh_hant="照片保存 30 天。",
                         retention_policy_language="en")  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    policy = retention_policy_current(company=a.company)
    assert (policy.version, policy.text, policy.translations) == (2, first.text, {"zh-hant": "照片保存 30 天。"})
    # Saving the page unchanged makes no version.
    assert client.post(url, _company_form(a.company, retention_policy=first.text,
                                          retention_policy_zh_hant="照片保存 30 天。",
                                          retention_policy_language="en")).status_code == 302  # fmt: skip
    assert retention_policy_current(company=a.company).version == 2

    # The main language cannot be left without words: shown on the form, nothing saved.
    refused = client.post(url, _company_form(a.company, retention_policy="", retention_policy_zh_hant="照片。",
                                             retention_policy_language="en"))  # fmt: skip
    assert refused.status_code == 200
    assert "needs a text in its main language" in refused.content.decode()
    assert retention_policy_current(company=a.company).version == 2
    assert retention_policy_current(company=b.company).version == 1


def test_the_admin_speaks_of_the_policy_in_chinese_to_a_chinese_owner(admin_client_for, tenant_a):
    tenant_a.owner.language = "zh-hant"
    tenant_a.owner.save(update_fields=["language"])
    page = admin_client_for(tenant_a.owner).get(f"/admin/accounts/company/{tenant_a.company.pk}/change/")
    html = page.content.decode()
    assert "英文保存政策" in html and "繁體中文保存政策" in html and "政策的主要語言" in html


# --- Versions and consents from before the languages ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_existing_versions_and_consents_get_the_language_they_were_written_in():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("accounts", "0009_audit_once_key"), ("subjects", "0006_consent")]
    after = [("accounts", "0010_retention_policy_languages"), ("subjects", "0007_consent_policy_language")]
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        company = old.get_model("accounts", "Company").objects.create(name="Old", slug="old")
        policies = old.get_model("accounts", "RetentionPolicy").objects
        english = policies.create(company=company, version=1, text="Photos are kept 30 days.")
        chinese = policies.create(company=company, version=2, text="照片保存 30 天（30 days）。")
        subjects = old.get_model("subjects", "Subject").objects
        subject = subjects.create(company=company, name="Mei", subject_type="visitor")
        consents = old.get_model("subjects", "Consent").objects
        for policy in (english, chinese):
            consents.create(company=company, subject=subject, policy=policy, method="paper", given_at=timezone.now(),
                            replaced_at=timezone.now() if policy is english else None)  # fmt: skip

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        languages = dict(new.get_model("accounts", "RetentionPolicy").objects.values_list("version", "language"))
        assert languages == {1: "en", 2: "zh-hant"}
        shown = new.get_model("subjects", "Consent").objects.order_by("policy__version")
        assert list(shown.values_list("policy__version", "policy_language")) == [(1, "en"), (2, "zh-hant")]
        assert new.get_model("accounts", "RetentionPolicy").objects.get(version=2).translations == {}
    finally:
        # Back to the latest schema, whatever came after these migrations: the next tests
        # share this database.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
