"""Viewers read, admins and owners write, owners manage users — in the API and the admin."""

import pytest

from accounts.models import AuditLog, Role, User
from subjects.models import Department
from tests.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("admin", 201), ("owner", 201)])
def test_who_may_create_departments(api, tenant_a, role, status):
    user = getattr(tenant_a, role)
    assert api(user).post("/api/v1/departments", {"name": "Ops"}, format="json").status_code == status


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("admin", 403), ("owner", 201)])
def test_only_owners_add_users(api, tenant_a, role, status):
    response = api(getattr(tenant_a, role)).post(
        "/api/v1/users", {"username": "new-one", "role": "viewer", "email": "n@example.com"}, format="json"
    )
    assert response.status_code == status


def test_every_member_reads_the_users_of_their_company_only(api, tenants):
    a, _b = tenants
    names = [row["username"] for row in api(a.viewer).get("/api/v1/users").json()["results"]]
    assert names == ["a-admin", "a-owner", "a-viewer"]


def test_an_owner_cannot_demote_or_deactivate_themself(api, tenant_a):
    url = f"/api/v1/users/{tenant_a.owner.pk}"
    response = api(tenant_a.owner).patch(url, {"role": "viewer"}, format="json")
    assert response.json()["error"]["code"] == "cannot_change_self"


def test_an_owner_sets_their_own_password_only_with_the_current_one(api, tenant_a):
    client = api(tenant_a.owner)
    response = client.patch(
        f"/api/v1/users/{tenant_a.owner.pk}",
        {"first_name": "Mei", "password": "Another-Pass-2026"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "own_password_needs_current"
    assert list(response.json()["error"]["fields"]) == ["password"]
    tenant_a.owner.refresh_from_db()
    assert tenant_a.owner.first_name != "Mei"  # nothing of the request was written
    assert client.get("/api/v1/me").status_code == 200  # and the session goes on
    # Another user's password is the owner's to set.
    other = client.patch(f"/api/v1/users/{tenant_a.viewer.pk}", {"password": "Another-Pass-2026"}, format="json")
    assert other.status_code == 200


def test_the_last_active_owner_stays(api, tenant_a):
    second = User.objects.create_user("a-owner2", company=tenant_a.company, role=Role.OWNER, is_staff=True)
    client = api(second)
    assert client.patch(f"/api/v1/users/{tenant_a.owner.pk}", {"role": "admin"}, format="json").status_code == 200
    tenant_a.owner.refresh_from_db()
    assert tenant_a.owner.role == Role.ADMIN
    # Now `second` is the only owner; the (former) owner cannot remove them either.
    response = client.delete(f"/api/v1/users/{second.pk}")
    assert response.json()["error"]["code"] == "cannot_change_self"


def test_a_users_email_is_unique_within_the_company_only(api, tenants):
    a, b = tenants
    taken = api(a.owner).post("/api/v1/users", {"username": "x1", "email": a.viewer.email.upper()}, format="json")
    assert taken.json()["error"]["code"] == "user_email_taken"
    elsewhere = api(b.owner).post("/api/v1/users", {"username": "x2", "email": a.viewer.email}, format="json")
    assert elsewhere.status_code == 201


def test_an_owner_changes_the_company_time_zone_and_a_viewer_cannot(api, tenant_a):
    assert (
        api(tenant_a.viewer).patch("/api/v1/company", {"time_zone": "Europe/Berlin"}, format="json").status_code == 403
    )
    response = api(tenant_a.owner).patch("/api/v1/company", {"time_zone": "Mars/Olympus"}, format="json")
    assert response.status_code == 400 and "time_zone" in response.json()["error"]["fields"]
    assert (
        api(tenant_a.owner).patch("/api/v1/company", {"time_zone": "Europe/Berlin"}, format="json").json()["time_zone"]
        == "Europe/Berlin"
    )


def test_a_viewer_may_edit_their_own_profile_but_not_their_role(api, tenant_a):
    response = api(tenant_a.viewer).patch("/api/v1/me", {"first_name": "Mei", "role": "owner"}, format="json")
    assert response.status_code == 200
    tenant_a.viewer.refresh_from_db()
    assert (tenant_a.viewer.first_name, tenant_a.viewer.role) == ("Mei", Role.VIEWER)


# --- admin ------------------------------------------------------------------------------------


def test_a_viewer_sees_the_admin_changelist_but_cannot_add_or_change(client, tenant_a):
    department = DepartmentFactory(company=tenant_a.company)
    client.force_login(tenant_a.viewer)
    assert client.get("/admin/subjects/department/").status_code == 200
    assert client.get("/admin/subjects/department/add/").status_code == 403
    assert client.post(f"/admin/subjects/department/{department.pk}/change/", {"name": "New"}).status_code == 403
    assert client.post(f"/admin/subjects/department/{department.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Department.objects.for_company(tenant_a.company).filter(name=department.name).exists()


def test_an_admin_adds_a_department_in_their_company_with_an_audit_entry(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    response = client.post("/admin/subjects/department/add/", {"name": "Front desk", "company": b.company.pk})
    assert response.status_code == 302
    department = Department.objects.for_company(a.company).get(name="Front desk")
    assert not Department.objects.for_company(b.company).exists()
    entry = AuditLog.objects.for_company(a.company).get(action="department.create")
    assert (entry.actor, entry.object_id) == (a.admin, str(department.pk))


def test_the_admin_reports_a_duplicate_name_as_a_form_error(client, tenants):
    a, b = tenants
    DepartmentFactory(company=a.company, name="Sales")
    DepartmentFactory(company=b.company, name="Legal")
    client.force_login(a.admin)
    duplicate = client.post("/admin/subjects/department/add/", {"name": "sales"})
    assert duplicate.status_code == 200
    assert "already exists" in duplicate.content.decode()
    # Another company's name is free.
    assert client.post("/admin/subjects/department/add/", {"name": "Legal"}).status_code == 302


def test_the_admin_never_shows_the_company_field_to_company_users(client, tenant_a):
    client.force_login(tenant_a.owner)
    page = client.get("/admin/subjects/department/add/").content.decode()
    assert 'name="company"' not in page


def test_platform_staff_see_every_company_and_choose_one(client, tenants, platform_admin):
    a, b = tenants
    DepartmentFactory(company=a.company, name="A dept")
    DepartmentFactory(company=b.company, name="B dept")
    client.force_login(platform_admin)
    page = client.get("/admin/subjects/department/").content.decode()
    assert "A dept" in page and "B dept" in page
    assert client.post("/admin/subjects/department/add/", {"name": "New", "company": b.company.pk}).status_code == 302
    assert Department.objects.for_company(b.company).filter(name="New").exists()


def test_only_owners_manage_users_in_the_admin(client, tenant_a):
    client.force_login(tenant_a.admin)
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get("/admin/accounts/user/add/").status_code == 403
    client.force_login(tenant_a.owner)
    response = client.post(
        "/admin/accounts/user/add/",
        {"username": "newbie", "email": "newbie@example.com", "role": "viewer", "usable_password": "false"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    newbie = User.objects.for_company(tenant_a.company).get(username="newbie")
    assert newbie.is_staff and newbie.role == Role.VIEWER


def test_the_audit_log_is_read_only_in_the_admin(client, tenant_a):
    entry = AuditLog.objects.create(company=tenant_a.company, actor_repr="x", action="y.z")
    client.force_login(tenant_a.owner)
    assert client.get("/admin/accounts/auditlog/").status_code == 200
    assert client.get("/admin/accounts/auditlog/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/accounts/auditlog/{entry.pk}/change/", {"action": "forged"}).status_code == 403
