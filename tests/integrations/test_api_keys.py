"""Company API keys: shown once, stored hashed, revocable, expiring; `Bearer kgr_api_...`
does exactly its scopes in its own company, and every write with it is audited under its
name. A key never reaches another company's rows, nor what is for people only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditLog
from devices.keys import hash_key
from integrations import api_keys
from integrations.models import ApiKey
from tests.conftest import api_client_for
from tests.factories import EventFactory, SubjectFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def key_client(text: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def new_key(tenant, scopes, **extra):
    return api_keys.api_key_create(
        company=tenant.company, actor=tenant.owner, name=f"key {scopes}", scopes=scopes, **extra
    )


def test_an_owner_creates_a_key_and_sees_it_once(tenant_a):
    client = api_client_for(tenant_a.owner)
    answer = client.post(
        "/api/v1/api-keys", {"name": "HR system", "scopes": ["subjects:write", "subjects:read"]}, format="json"
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["key"].startswith(f"kgr_api_{tenant_a.company.pk}_")
    assert body["scopes"] == ["subjects:read", "subjects:write"] and body["active"] is True
    stored = ApiKey.objects.for_company(tenant_a.company).get()
    assert stored.key_hash == hash_key(body["key"]) and body["key"] not in str(stored.__dict__)
    assert "key" not in client.get(f"/api/v1/api-keys/{stored.pk}").json()
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="api_key.create").count() == 1


def test_only_owners_manage_keys_and_keys_do_not_manage_keys(tenant_a):
    api_key, _ = new_key(tenant_a, ["events:read"])
    for user in (tenant_a.admin, tenant_a.viewer):
        client = api_client_for(user)
        assert "key" not in client.get("/api/v1/api-keys").json()["results"][0]
        assert client.post(f"/api/v1/api-keys/{api_key.pk}/revoke").status_code == 403
        assert (
            client.post("/api/v1/api-keys", {"name": "x", "scopes": ["events:read"]}, format="json").status_code == 403
        )
    _, text = new_key(tenant_a, list(api_keys.ApiScope.values))
    assert key_client(text).get("/api/v1/api-keys").status_code == 403


def test_a_key_does_exactly_its_scopes(tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    EventFactory(company=tenant_a.company, subject=subject)
    _, reader = new_key(tenant_a, ["subjects:read"])
    client = key_client(reader)
    assert client.get("/api/v1/subjects").status_code == 200
    assert client.get(f"/api/v1/subjects/{subject.pk}").status_code == 200
    denied = client.post("/api/v1/subjects", {"name": "X", "job_number": "X1"}, format="json")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "api_key_scope_missing"
    for path in ("/api/v1/events", "/api/v1/boxes", "/api/v1/webhooks", "/api/v1/users", "/api/v1/audit-log",
                 "/api/v1/company", "/api/v1/me", "/api/v1/jobs", "/api/v1/unknown-people"):  # fmt: skip
        assert client.get(path).status_code == 403, path
    assert client.post("/api/v1/auth/logout").status_code == 403

    _, events = new_key(tenant_a, ["events:read", "devices:read"])
    client = key_client(events)
    assert client.get("/api/v1/events").json()["results"][0]["subject"]["id"] == subject.pk
    assert client.get("/api/v1/attendance").status_code == 200
    assert client.get("/api/v1/boxes").status_code == 200
    assert client.post("/api/v1/boxes", {"name": "B"}, format="json").status_code == 403
    assert client.get("/api/v1/subjects").status_code == 403

    _, hooks = new_key(tenant_a, ["webhooks:manage"])
    assert key_client(hooks).get("/api/v1/webhooks").status_code == 200


def test_writes_with_a_key_are_audited_under_its_name(tenant_a):
    api_keys.api_key_create(company=tenant_a.company, actor=tenant_a.owner, name="HR system", scopes=["subjects:write"])
    _, text = api_keys.api_key_create(
        company=tenant_a.company, actor=tenant_a.owner, name="Payroll", scopes=["subjects:write"]
    )
    answer = key_client(text).post("/api/v1/subjects", {"name": "林志明", "job_number": "E9"}, format="json")
    assert answer.status_code == 201, answer.content
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="subject.create")
    assert entry.actor is None and entry.actor_repr == "api-key:Payroll"


def test_a_key_never_reaches_another_company(tenant_a, tenant_b):
    theirs = SubjectFactory(company=tenant_b.company)
    endpoint = WebhookEndpointFactory(company=tenant_b.company)
    _, text = new_key(tenant_a, list(api_keys.ApiScope.values))
    client = key_client(text)
    assert client.get(f"/api/v1/subjects/{theirs.pk}").status_code == 404
    assert client.patch(f"/api/v1/subjects/{theirs.pk}", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/subjects/{theirs.pk}").status_code == 404
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}").status_code == 404
    assert client.get("/api/v1/subjects").json()["count"] == 0
    created = client.post(
        "/api/v1/subjects", {"name": "N", "job_number": "N1", "company": tenant_b.company.pk}, format="json"
    )
    assert created.status_code == 201
    assert SubjectFactory._meta.model.objects.for_company(tenant_a.company).filter(job_number="N1").exists()
    assert not SubjectFactory._meta.model.objects.for_company(tenant_b.company).filter(job_number="N1").exists()
    # A key naming another company in its public part, with this company's secret, is refused.
    forged = text.replace(f"kgr_api_{tenant_a.company.pk}_", f"kgr_api_{tenant_b.company.pk}_", 1)
    assert key_client(forged).get("/api/v1/subjects").json()["error"]["code"] == "api_key_invalid"


def test_revoked_expired_and_wrong_keys_answer_401_with_their_codes(tenant_a):
    api_key, text = new_key(tenant_a, ["subjects:read"])
    assert key_client(text + "x").get("/api/v1/subjects").json()["error"]["code"] == "api_key_invalid"
    assert key_client("kgr_api_nonsense").get("/api/v1/subjects").status_code == 401
    answer = api_client_for(tenant_a.owner).post(f"/api/v1/api-keys/{api_key.pk}/revoke")
    assert answer.status_code == 200 and answer.json()["active"] is False
    revoked = key_client(text).get("/api/v1/subjects")
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "api_key_revoked"
    _, soon = new_key(tenant_a, ["events:read"], expires_at=timezone.now() - timedelta(seconds=1))
    assert key_client(soon).get("/api/v1/events").json()["error"]["code"] == "api_key_expired"


def test_last_use_is_recorded_with_the_address(tenant_a):
    api_key, text = new_key(tenant_a, ["subjects:read"])
    key_client(text).get("/api/v1/subjects", REMOTE_ADDR="203.0.113.7")
    api_key.refresh_from_db()
    assert api_key.last_used_ip == "203.0.113.7" and api_key.last_used_at is not None


def test_a_users_jwt_still_works_beside_keys(tenant_a):
    assert api_client_for(tenant_a.viewer).get("/api/v1/subjects").status_code == 200


def test_key_names_are_unique_in_a_company_only(tenant_a, tenant_b):
    client = api_client_for(tenant_a.owner)
    assert (
        client.post("/api/v1/api-keys", {"name": "Sync", "scopes": ["events:read"]}, format="json").status_code == 201
    )
    again = client.post("/api/v1/api-keys", {"name": "sync", "scopes": ["events:read"]}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "api_key_name_taken"
    other = api_client_for(tenant_b.owner).post(
        "/api/v1/api-keys", {"name": "Sync", "scopes": ["events:read"]}, format="json"
    )
    assert other.status_code == 201


def test_the_admin_shows_a_new_key_once_and_revokes(admin_client_for, tenant_a):
    client = admin_client_for(tenant_a.owner)
    response = client.post(
        "/admin/integrations/apikey/add/",
        {"name": "HR", "scopes": ["subjects:read"], "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    page = client.get(response["Location"]).content.decode()
    assert f"kgr_api_{tenant_a.company.pk}_" in page
    api_key = ApiKey.objects.for_company(tenant_a.company).get()
    client.post("/admin/integrations/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert admin_client_for(tenant_a.admin).get("/admin/integrations/apikey/add/").status_code == 403
