"""GET /api/v1/privacy/purge-preview and POST /api/v1/privacy/purge."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Job, JobState
from privacy.selectors import RULES
from tests.privacy.seed import seed_every_age
from tests.privacy.test_purge import EXPECTED

pytestmark = pytest.mark.django_db


def counts(body) -> dict[str, int]:
    return {row["rule"]: row["count"] for row in body["rules"]}


def test_the_preview_counts_each_rule_of_the_requesters_company_only(api, tenants):
    tenant_a, tenant_b = tenants
    seed_every_age(tenant_a.company, timezone.now())
    for user in tenant_a.users():
        response = api(user).get("/api/v1/privacy/purge-preview")
        assert response.status_code == 200, response.content
        body = response.json()
        assert counts(body) == EXPECTED
        assert body["last_run"] is None
    visitors = next(row for row in body["rules"] if row["rule"] == "visitor_photos")
    assert visitors["window"] == "retention_visitor_days"
    assert visitors["window_days"] == 30
    assert counts(api(tenant_b.owner).get("/api/v1/privacy/purge-preview").json()) == dict.fromkeys(RULES, 0)


def test_an_owner_purges_now_as_a_job_and_sees_its_result(api, tenants, settings, django_capture_on_commit_callbacks):
    settings.JOBS_INLINE = True  # the job runs at once after commit (the embedded shape)
    tenant_a, tenant_b = tenants
    seed_every_age(tenant_a.company, timezone.now())
    seed_every_age(tenant_b.company, timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        response = api(tenant_a.owner).post("/api/v1/privacy/purge")
    assert response.status_code == 202, response.content
    job = Job.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    assert (job.kind, job.state, job.done) == ("privacy.purge", JobState.DONE, sum(EXPECTED.values()))
    body = api(tenant_a.owner).get("/api/v1/privacy/purge-preview").json()
    assert counts(body) == dict.fromkeys(RULES, 0)
    assert body["last_run"]["removed"] == EXPECTED
    assert body["last_run"]["trigger"] == "manual"
    assert body["last_run"]["actor"] == tenant_a.owner.username
    # Company B's data waits for its own purge.
    assert counts(api(tenant_b.owner).get("/api/v1/privacy/purge-preview").json()) == EXPECTED


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_admins_and_viewers_cannot_purge(api, tenant_a, role):
    seed_every_age(tenant_a.company, timezone.now())
    response = api(getattr(tenant_a, role)).post("/api/v1/privacy/purge")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Job.objects.for_company(tenant_a.company).exists()
    assert counts(api(tenant_a.owner).get("/api/v1/privacy/purge-preview").json()) == EXPECTED


def test_anonymous_requests_are_refused(client, tenants):
    assert client.get("/api/v1/privacy/purge-preview").status_code == 401
    assert client.post("/api/v1/privacy/purge").status_code == 401


def test_a_company_api_key_reaches_neither_the_preview_nor_the_purge(tenant_a):
    from integrations import api_keys
    from integrations.models import ApiScope
    from tests.integrations.test_api_keys import key_client

    _, text = api_keys.api_key_create(
        company=tenant_a.company, actor=tenant_a.owner, name="HR system", scopes=list(ApiScope.values)
    )
    client = key_client(text)
    for response in (client.get("/api/v1/privacy/purge-preview"), client.post("/api/v1/privacy/purge")):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "api_key_scope_missing"
    assert not Job.objects.for_company(tenant_a.company).exists()
