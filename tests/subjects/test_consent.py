"""Consent: recorded per subject (how, when, to which policy version, by whom, with the signed
form), kept as a history; without it no photo is stored when the company requires it, from
any entry point. Two companies everywhere: one's consent never counts for the other."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditLog
from accounts.services import company_update, retention_policy_current, retention_policy_set
from kangaroo.errors import CONSENT_POLICY_OUTDATED, CONSENT_REQUIRED, KangarooError
from subjects import services
from subjects.models import Consent, Photo, Subject
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes
from tests.subjects.test_photos import files_in, upload

pytestmark = pytest.mark.django_db


def record(client, subject, **fields):
    fields.setdefault("method", "paper")
    fields.setdefault("policy_version", 1)
    return client.post(f"/api/v1/subjects/{subject.pk}/consents", fields, format="json")


def test_consent_is_recorded_with_how_when_which_policy_and_by_whom(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    given = timezone.now() - datetime.timedelta(hours=2)
    response = record(api(tenant_a.admin), subject, given_at=given.isoformat())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["subject"] == subject.pk
    assert (body["method"], body["policy_version"], body["recorded_by"], body["in_force"]) == (
        "paper",
        1,
        tenant_a.admin.username,
        True,
    )
    assert datetime.datetime.fromisoformat(body["given_at"]) == given
    assert body["evidence_url"] is None and body["withdrawn_at"] is None
    consent = Consent.objects.for_company(tenant_a.company).get()
    assert consent.recorded_by == tenant_a.admin
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="consent.create")
    assert entry.changes["subject"] == subject.pk and entry.changes["policy_version"] == 1
    listed = api(tenant_a.viewer).get(f"/api/v1/subjects/{subject.pk}").json()
    assert listed["consent_given_at"] is not None


def test_the_history_keeps_every_consent_and_a_new_one_replaces_the_one_in_force(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    client = api(tenant_a.admin)
    assert record(client, subject, method="paper").status_code == 201
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, text="A shorter policy.")
    assert record(client, subject, method="web", policy_version=2).status_code == 201
    history = api(tenant_a.viewer).get(f"/api/v1/subjects/{subject.pk}/consents").json()
    assert [(c["method"], c["policy_version"], c["in_force"]) for c in history] == [
        ("web", 2, True),
        ("paper", 1, False),
    ]
    assert history[1]["replaced_at"] is not None and history[1]["withdrawn_at"] is None


def test_a_consent_to_a_policy_version_that_is_not_the_current_one_is_refused(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, text="Version two.")
    for version in (1, 3):
        response = record(api(tenant_a.admin), subject, policy_version=version)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == CONSENT_POLICY_OUTDATED.code
        assert response.json()["error"]["current_version"] == 2
    assert not Consent.objects.for_company(tenant_a.company).exists()


def test_bad_consent_requests_are_refused_with_their_field(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    client = api(tenant_a.admin)
    future = (timezone.now() + datetime.timedelta(days=1)).isoformat()
    for fields, bad in [
        ({"method": "pad"}, "method"),  # only a pad records "pad"
        ({"given_at": future}, "given_at"),
        ({"policy_version": 0}, "policy_version"),
        ({"signature": "x"}, "signature"),
    ]:
        response = record(client, subject, **fields)
        assert response.status_code == 400, fields
        assert bad in response.json()["error"]["fields"], response.json()
    assert not Consent.objects.for_company(tenant_a.company).exists()


def test_the_signed_form_is_stored_as_a_jpeg_and_served_only_to_its_company(api, tenants, media_root):
    a, b = tenants
    subject = SubjectFactory(company=a.company, consent=False)
    response = api(a.admin).post(
        f"/api/v1/subjects/{subject.pk}/consents/upload?include=images",
        {"method": "paper", "policy_version": "1", "evidence": SimpleUploadedFile("form.png", jpeg_bytes((300, 400)))},
    )
    assert response.status_code == 201, response.json()
    url = response.json()["evidence_url"]
    stored = files_in(media_root)
    assert [path.parts[:2] for path in stored] == [("consents", str(a.company.pk))]
    served = api(a.admin).get(url)
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert api(b.owner).get(url).status_code == 404
    assert api(b.owner).get(f"/api/v1/consents/{response.json()['id']}").status_code == 404


def test_a_form_that_is_not_an_image_is_refused_and_nothing_is_stored(api, tenant_a, media_root):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    response = api(tenant_a.admin).post(
        f"/api/v1/subjects/{subject.pk}/consents/upload",
        {
            "method": "paper",
            "policy_version": "1",
            "evidence": SimpleUploadedFile("form.pdf", b"%PDF-1.4 not an image"),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "photo_invalid"
    assert files_in(media_root) == []
    assert not Consent.objects.for_company(tenant_a.company).exists()


def test_viewers_read_the_history_but_do_not_record_and_other_companies_see_nothing(api, tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company, consent=False)
    assert record(api(a.viewer), subject).status_code == 403
    assert api(a.viewer).get(f"/api/v1/subjects/{subject.pk}/consents").json() == []
    assert record(api(b.admin), subject).status_code == 404
    assert api(b.admin).get(f"/api/v1/subjects/{subject.pk}/consents").status_code == 404
    assert not Consent.objects.for_company(a.company).exists()


# --- consent_required, everywhere a photo is added ---------------------------------------------


def test_without_consent_a_photo_answers_consent_required_and_nothing_is_stored(api, tenant_a, media_root):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    response = upload(api(tenant_a.admin), subject, jpeg_bytes())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == CONSENT_REQUIRED.code
    assert "image" in response.json()["error"]["fields"]
    assert files_in(media_root) == [] and not Photo.objects.for_company(tenant_a.company).exists()
    assert record(api(tenant_a.admin), subject).status_code == 201
    assert upload(api(tenant_a.admin), subject, jpeg_bytes()).status_code == 201


def test_a_company_that_does_not_require_consent_takes_photos_without_and_the_other_still_requires_it(api, tenants):
    a, b = tenants
    company_update(company=a.company, actor=a.owner, consent_required=False)
    ours = SubjectFactory(company=a.company, consent=False)
    theirs = SubjectFactory(company=b.company, consent=False)
    assert upload(api(a.admin), ours, jpeg_bytes()).status_code == 201
    assert upload(api(b.admin), theirs, jpeg_bytes()).json()["error"]["code"] == CONSENT_REQUIRED.code


def test_a_consent_in_another_company_does_not_count(tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company, consent=False)
    # A consent row of company B naming A's subject (which no service would write) is not A's consent.
    Consent.objects.create(
        company=b.company,
        subject=subject,
        given_at=timezone.now(),
        method="paper",
        policy=retention_policy_current(company=b.company),
    )
    with pytest.raises(KangarooError) as refused:
        services.photo_add(
            company=a.company, actor=a.admin, subject=subject, upload=SimpleUploadedFile("p.jpg", jpeg_bytes())
        )
    assert refused.value.code == CONSENT_REQUIRED.code


def test_a_withdrawn_or_replaced_consent_is_no_consent(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, consent=False)
    assert record(api(tenant_a.admin), subject).status_code == 201
    assert api(tenant_a.admin).post(f"/api/v1/subjects/{subject.pk}/consents/withdraw").status_code == 200
    assert upload(api(tenant_a.admin), subject, jpeg_bytes()).json()["error"]["code"] == CONSENT_REQUIRED.code


def test_with_photos_needs_the_consent_in_the_same_request(api, tenant_a, media_root):
    client = api(tenant_a.admin)
    parts = {"name": "許雅婷", "job_number": "E-301", "upload": [SimpleUploadedFile("a.jpg", jpeg_bytes())]}
    refused = client.post("/api/v1/subjects/with-photos", parts)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == CONSENT_REQUIRED.code
    assert not Subject.objects.for_company(tenant_a.company).exists() and files_in(media_root) == []

    parts = {
        "name": "許雅婷",
        "job_number": "E-301",
        "upload": [SimpleUploadedFile("a.jpg", jpeg_bytes())],
        "consent_method": "paper",
        "consent_policy_version": "1",
        "consent_evidence": SimpleUploadedFile("form.jpg", jpeg_bytes((200, 300))),
    }
    created = client.post("/api/v1/subjects/with-photos", parts)
    assert created.status_code == 201, created.json()
    assert created.json()["consent_given_at"] is not None and len(created.json()["photos"]) == 1
    consent = Consent.objects.for_company(tenant_a.company).get()
    assert consent.evidence and consent.method == "paper"


def test_with_photos_consent_needs_its_policy_version(api, tenant_a):
    parts = {"name": "A", "job_number": "E-1", "consent_method": "paper"}
    response = api(tenant_a.admin).post("/api/v1/subjects/with-photos", parts)
    assert response.status_code == 400
    assert "consent_policy_version" in response.json()["error"]["fields"]
    assert not Subject.objects.for_company(tenant_a.company).exists()


def test_the_admin_refuses_a_photo_without_consent_and_takes_one_with_the_consent_given_on_the_same_page(
    admin_client_for, tenant_a, media_root
):
    subject = SubjectFactory(company=tenant_a.company, consent=False, name="Kim", job_number="E-900")
    client = admin_client_for(tenant_a.admin)
    url = f"/admin/subjects/subject/{subject.pk}/change/"
    form = {
        "subject_type": "employee", "name": "Kim", "job_number": "E-900", "email": subject.email,
        "consents-TOTAL_FORMS": "1", "consents-INITIAL_FORMS": "0", "consents-MIN_NUM_FORMS": "0",
        "consents-MAX_NUM_FORMS": "1000", "consents-0-consent_method": "",
        "photos-TOTAL_FORMS": "1", "photos-INITIAL_FORMS": "0", "photos-MIN_NUM_FORMS": "0",
        "photos-MAX_NUM_FORMS": "5",
    }  # fmt: skip
    refused = client.post(url, {**form, "photos-0-upload": SimpleUploadedFile("p.jpg", jpeg_bytes())})
    assert refused.status_code == 200
    assert str(CONSENT_REQUIRED.message) in refused.content.decode()
    assert files_in(media_root) == []

    accepted = client.post(
        url,
        {**form, "consents-0-consent_method": "paper", "photos-0-upload": SimpleUploadedFile("p.jpg", jpeg_bytes())},
    )
    assert accepted.status_code == 302, accepted.content.decode()[:3000]
    assert Consent.objects.for_company(tenant_a.company).get().recorded_by == tenant_a.admin
    assert Photo.objects.for_company(tenant_a.company).filter(subject=subject).count() == 1
    page = client.get(url).content.decode()
    assert "In force" in page and "Withdraw" in page


def test_the_consent_names_the_version_and_the_language_the_person_read(api, tenant_a):
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": ""})
    retention_policy_set(company=tenant_a.company, actor=tenant_a.owner, texts={"zh-hant": "中文條文。"})
    client = api(tenant_a.admin)
    reader = SubjectFactory(company=tenant_a.company, consent=False)
    body = record(client, reader, policy_version=3, policy_language="zh-hant").json()
    assert (body["policy_version"], body["policy_language"]) == (3, "zh-hant")
    # Left out: the main language; a language the version has no text in: the main text was shown.
    assert record(client, reader, policy_version=3).json()["policy_language"] == "en"
    history = api(tenant_a.viewer).get(f"/api/v1/subjects/{reader.pk}/consents").json()
    assert [(c["policy_version"], c["policy_language"]) for c in history] == [(3, "en"), (3, "zh-hant")]

    created = client.post(
        "/api/v1/subjects/with-photos",
        {
            "name": "陳美玲",
            "job_number": "E-900",
            "consent_method": "paper",
            "consent_policy_version": 3,
            "consent_policy_language": "zh-Hant",
        },
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    consent = Consent.objects.for_company(tenant_a.company).get(subject_id=created.json()["id"])
    assert (consent.policy.version, consent.policy_language) == (3, "zh-hant")

    refused = record(client, reader, policy_version=3, policy_language="fr")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "retention_policy_language_unknown")
