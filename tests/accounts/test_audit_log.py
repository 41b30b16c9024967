"""Who did what to which object of which company, when and from where."""

import pytest

from accounts.models import AuditLog

pytestmark = pytest.mark.django_db


def test_a_write_records_actor_object_company_and_address(api, tenant_a):
    client = api(tenant_a.admin)
    created = client.post(
        "/api/v1/departments", {"name": "Ops"}, format="json", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="HR-tool/1.0"
    ).json()
    client.patch(f"/api/v1/departments/{created['id']}", {"name": "Operations"}, format="json")
    client.delete(f"/api/v1/departments/{created['id']}")
    entries = list(AuditLog.objects.for_company(tenant_a.company).order_by("id"))
    assert [e.action for e in entries] == ["department.create", "department.update", "department.delete"]
    first = entries[0]
    assert (first.actor, first.actor_repr, first.object_id) == (tenant_a.admin, "a-admin", str(created["id"]))
    assert (first.ip_address, first.user_agent) == ("198.51.100.7", "HR-tool/1.0")
    assert entries[1].changes == {"name": ["Ops", "Operations"]}


def test_the_audit_api_lists_newest_first_and_filters(api, tenant_a):
    client = api(tenant_a.owner)
    client.post("/api/v1/departments", {"name": "One"}, format="json")
    client.post("/api/v1/departments", {"name": "Two"}, format="json")
    rows = client.get("/api/v1/audit-log?action=department.create").json()["results"]
    assert [row["object_repr"] for row in rows] == ["Two", "One"]
    assert rows[0]["actor"] == "a-owner"


def test_the_audit_api_is_read_only(api, tenant_a):
    assert api(tenant_a.owner).post("/api/v1/audit-log", {"action": "forged"}, format="json").status_code == 405


def test_an_entry_outlives_its_actor(api, tenant_a):
    api(tenant_a.admin).post("/api/v1/departments", {"name": "Kept"}, format="json")
    tenant_a.admin.delete()
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="department.create")
    assert entry.actor is None and entry.actor_repr == "a-admin"
