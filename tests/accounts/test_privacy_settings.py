"""A company's biometric privacy settings: consent before enrolment, retention windows and a
versioned retention policy, changed by owners only, in the API and the admin; one
company's settings never touch another's."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import AuditLog, RetentionPolicy
from accounts.services import retention_policy_current
from kangaroo.errors import VALIDATION_ERROR

pytestmark = pytest.mark.django_db

DEFAULTS = {
    "consent_required": True,
    "retention_visitor_days": 30,
    "retention_stranger_days": 7,
    "retention_event_days": 365,
    "retention_inactive_days": 1095,
    "retention_audit_days": 730,
}


def test_a_company_starts_with_consent_required_and_the_issue_s_retention_windows(api, tenant_a):
    body = api(tenant_a.viewer).get("/api/v1/company").json()
    assert {key: body[key] for key in DEFAULTS} == DEFAULTS
    # Its first policy is written from those windows, as version 1.
    assert body["retention_policy_version"] == 1
    assert tenant_a.company.name in body["retention_policy"]
    assert "30 days" in body["retention_policy"] and "7 days" in body["retention_policy"]


def test_an_owner_changes_the_windows_and_only_their_company_changes(api, tenants):
    a, b = tenants
    response = api(a.owner).patch(
        "/api/v1/company",
        {"consent_required": False, "retention_visitor_days": 14, "retention_audit_days": 3650},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["consent_required"], response.json()["retention_visitor_days"]) == (False, 14)
    a.company.refresh_from_db()
    b.company.refresh_from_db()
    assert (a.company.consent_required, a.company.retention_visitor_days, a.company.retention_audit_days) == (
        False,
        14,
        3650,
    )
    assert {key: getattr(b.company, key) for key in DEFAULTS} == DEFAULTS
    entry = AuditLog.objects.for_company(a.company).get(action="company.update")
    assert entry.changes["retention_visitor_days"] == [30, 14]
    assert not AuditLog.objects.for_company(b.company).filter(action="company.update").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("retention_inactive_days", 1096),  # biometric data: three years at the most
        ("retention_visitor_days", 0),
        ("retention_stranger_days", 2000),
        ("retention_event_days", 3651),
        ("retention_audit_days", 29),
        ("consent_required", "yes"),
    ],
)
def test_a_window_out_of_bounds_is_refused_and_nothing_changes(api, tenant_a, field, value):
    response = api(tenant_a.owner).patch("/api/v1/company", {field: value}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == VALIDATION_ERROR.code
    assert field in response.json()["error"]["fields"]
    tenant_a.company.refresh_from_db()
    assert {key: getattr(tenant_a.company, key) for key in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_only_owners_change_the_privacy_settings(api, tenant_a, role):
    user = getattr(tenant_a, role)
    response = api(user).patch(
        "/api/v1/company", {"consent_required": False, "retention_policy": "Kept forever."}, format="json"
    )
    assert response.status_code == 403
    tenant_a.company.refresh_from_db()
    assert tenant_a.company.consent_required is True
    assert retention_policy_current(company=tenant_a.company).version == 1


def test_each_saved_change_of_the_policy_text_is_a_new_version(api, tenants):
    a, b = tenants
    owner = api(a.owner)
    first = owner.get("/api/v1/company").json()
    answer = owner.patch("/api/v1/company", {"retention_policy": "  Photos are kept 30 days.  "}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["retention_policy"], answer.json()["retention_policy_version"]) == (
        "Photos are kept 30 days.",
        2,
    )
    # The same text again is no new version; another text is.
    assert (
        owner.patch("/api/v1/company", {"retention_policy": "Photos are kept 30 days."}, format="json").json()[
            "retention_policy_version"
        ]
        == 2
    )
    third = owner.patch("/api/v1/company", {"retention_policy": "Photos are kept 14 days."}, format="json").json()
    assert third["retention_policy_version"] == 3
    assert third["retention_policy_date"] >= first["retention_policy_date"]

    versions = owner.get("/api/v1/retention-policies").json()["results"]
    assert [(v["version"], v["text"]) for v in versions] == [
        (3, "Photos are kept 14 days."),
        (2, "Photos are kept 30 days."),
        (1, first["retention_policy"]),
    ]
    assert versions[0]["created_by"] == a.owner.username
    assert AuditLog.objects.for_company(a.company).filter(action="retention_policy.create").count() == 2
    # The other company's policy is its own first version, and it sees none of these.
    theirs = api(b.viewer).get("/api/v1/retention-policies").json()["results"]
    assert [v["version"] for v in theirs] == [1]
    assert api(b.viewer).get(f"/api/v1/retention-policies/{versions[0]['id']}").status_code == 404


def test_an_empty_policy_is_refused(api, tenant_a):
    response = api(tenant_a.owner).patch("/api/v1/company", {"retention_policy": "   "}, format="json")
    assert response.status_code == 400
    assert "retention_policy" in response.json()["error"]["fields"]
    assert RetentionPolicy.objects.for_company(tenant_a.company).count() <= 1


def test_the_versions_list_costs_the_same_whatever_its_length(api, tenant_a, django_assert_num_queries):
    for n in range(5):
        api(tenant_a.owner).patch("/api/v1/company", {"retention_policy": f"Version text {n}"}, format="json")
    client = api(tenant_a.viewer)
    # 1 the user, 2 the policy (the first version exists), 3 count, 4 the page.
    with django_assert_num_queries(4):
        assert len(client.get("/api/v1/retention-policies").json()["results"]) == 6


def test_an_owner_edits_the_privacy_settings_in_the_admin(admin_client_for, tenants):
    a, b = tenants
    client = admin_client_for(a.owner)
    url = f"/admin/accounts/company/{a.company.pk}/change/"
    page = client.get(url).content.decode()
    assert "Biometric privacy" in page and "retention_policy" in page and "Version 1 of" in page
    company = a.company
    form = {
        "name": company.name,
        "time_zone": company.time_zone,
        "work_start": "09:00:00",
        "work_end": "18:00:00",
        "date_order": "",
        "face_match_threshold": "0.55",
        "retention_visitor_days": "10",
        "retention_stranger_days": "7",
        "retention_event_days": "365",
        "retention_inactive_days": "1095",
        "retention_audit_days": "730",
        "retention_policy": "Our policy, in our own words.",
        # consent_required left out: the checkbox is cleared
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    company.refresh_from_db()
    assert (company.consent_required, company.retention_visitor_days) == (False, 10)
    policy = retention_policy_current(company=company)
    assert (policy.version, policy.text, policy.created_by) == (2, "Our policy, in our own words.", a.owner)
    assert policy.created_at <= timezone.now()
    assert "Version 2 of" in client.get(url).content.decode()
    b.company.refresh_from_db()
    assert b.company.consent_required is True
    assert retention_policy_current(company=b.company).version == 1


def test_an_admin_cannot_change_the_company_in_the_admin(admin_client_for, tenant_a):
    client = admin_client_for(tenant_a.admin)
    url = f"/admin/accounts/company/{tenant_a.company.pk}/change/"
    client.post(url, {"name": "Taken over", "consent_required": "", "retention_policy": "None."})
    tenant_a.company.refresh_from_db()
    assert tenant_a.company.consent_required is True and tenant_a.company.name != "Taken over"
    assert retention_policy_current(company=tenant_a.company).version == 1
