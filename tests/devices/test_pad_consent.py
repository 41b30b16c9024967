"""A pad collects consent: it shows the company's current retention policy (from its
configuration) and posts the person's job number with the version it showed."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from accounts.services import retention_policy_current, retention_policy_set
from kangaroo.errors import CONSENT_POLICY_OUTDATED, NOT_FOUND
from subjects.models import Consent
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db


def consent(client, job_number, policy_version=1, **extra):
    body = {"job_number": job_number, "policy_version": policy_version, **extra}
    return client.post("/api/v1/device/consent", body, format="json")


def test_the_pad_shows_the_current_policy_and_records_a_consent_as_pad(tenant_a, register, device_api):
    pad, key = register("pad", tenant_a, name="Reception pad")
    subject = SubjectFactory(company=tenant_a.company, consent=False, job_number="E-42", name="Mei")
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, text="Our policy.")
    config = device_api(key).get("/api/v1/device/pad/config").json()
    assert config["retention_policy"] == {"version": 2, "text": "Our policy."}
    assert config["consent_required"] is True

    response = consent(device_api(key), "E-42", config["retention_policy"]["version"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["subject"] == {"id": subject.pk, "name": "Mei", "job_number": "E-42"}
    assert (body["method"], body["policy_version"]) == ("pad", 2)
    recorded = Consent.objects.for_company(tenant_a.company).get()
    assert (recorded.method, recorded.recorded_by, recorded.recorded_by_device, recorded.recorded_by_repr) == (
        "pad",
        None,
        pad.pk,
        "pad:Reception pad",
    )
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="consent.create")
    assert entry.actor_repr == "pad:Reception pad"


def test_an_unknown_or_another_company_s_job_number_answers_404(tenants, register, device_api):
    a, b = tenants
    _, key = register("pad", a)
    SubjectFactory(company=b.company, consent=False, job_number="B-1")
    for job_number in ("B-1", "nobody"):
        response = consent(device_api(key), job_number)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == NOT_FOUND.code
        assert "job_number" in response.json()["error"]["fields"]
    assert not Consent.objects.for_company(b.company).exists()


def test_a_stale_policy_version_answers_409_with_the_current_one(tenant_a, register, device_api):
    _, key = register("pad", tenant_a)
    SubjectFactory(company=tenant_a.company, consent=False, job_number="E-1")
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, text="Changed while the pad showed v1.")
    response = consent(device_api(key), "E-1", 1)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == CONSENT_POLICY_OUTDATED.code
    assert response.json()["error"]["current_version"] == 2
    assert not Consent.objects.for_company(tenant_a.company).exists()


def test_each_company_s_pad_records_against_its_own_policy(tenants, register, device_api):
    a, b = tenants
    retention_policy_set(company=b.company, actor=b.owner, text="B's second version.")
    _, key_a = register("pad", a)
    _, key_b = register("pad", b)
    SubjectFactory(company=a.company, consent=False, job_number="E-1")
    SubjectFactory(company=b.company, consent=False, job_number="E-1")
    assert consent(device_api(key_a), "E-1", 1).status_code == 201
    assert consent(device_api(key_b), "E-1", 1).status_code == 409
    assert consent(device_api(key_b), "E-1", 2).status_code == 201
    assert Consent.objects.for_company(a.company).get().policy == retention_policy_current(company=a.company)
    assert Consent.objects.for_company(b.company).get().policy.version == 2


def test_only_pads_collect_consent_and_bodies_are_strict(tenant_a, register, device_api, api):
    _, box_key = register("box", tenant_a)
    _, pad_key = register("pad", tenant_a)
    SubjectFactory(company=tenant_a.company, consent=False, job_number="E-1")
    assert consent(device_api(box_key), "E-1").status_code == 403
    assert consent(api(tenant_a.owner), "E-1").status_code in (401, 403)
    refused = consent(device_api(pad_key), "E-1", method="paper")
    assert refused.status_code == 400 and "method" in refused.json()["error"]["fields"]
    assert consent(device_api(pad_key), "E-1", "1").status_code == 400  # a string is no version
    assert not Consent.objects.for_company(tenant_a.company).exists()


def test_the_pad_gets_every_language_s_text_and_the_consent_names_the_one_shown(tenants, register, device_api):
    a, b = tenants
    _, key = register("pad", a)
    SubjectFactory(company=a.company, consent=False, job_number="E-8")
    retention_policy_set(company=a.company, actor=a.owner, texts={"en": "Our policy.", "zh-hant": "我們的政策。"})
    retention_policy_set(company=b.company, actor=b.owner, texts={"zh-hant": "乙公司的政策。"})
    config = device_api(key).get("/api/v1/device/pad/config").json()
    assert config["retention_policy"] == {"version": 2, "text": "Our policy."}
    assert config["retention_policy_language"] == "en"
    assert config["retention_policy_texts"] == {"en": "Our policy.", "zh-hant": "我們的政策。"}

    refused = consent(device_api(key), "E-8", 2, policy_language="klingon")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "retention_policy_language_unknown"
    assert "policy_language" in refused.json()["error"]["fields"]
    assert not Consent.objects.for_company(a.company).exists()

    answer = consent(device_api(key), "E-8", 2, policy_language="zh-hant")
    assert answer.status_code == 201, answer.json()
    assert (answer.json()["policy_version"], answer.json()["policy_language"]) == (2, "zh-hant")
    recorded = Consent.objects.for_company(a.company).get()
    assert recorded.policy.text_for(recorded.policy_language).text == "我們的政策。"
    entry = AuditLog.objects.for_company(a.company).get(action="consent.create")
    assert entry.changes["policy_language"] == "zh-hant"
