"""The company of a new row comes from the requester, never from the payload."""

import pytest

from accounts.models import User
from subjects.models import Department

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("company_field", ["company", "company_id"])
def test_a_company_in_a_create_payload_is_ignored(api, tenants, company_field):
    a, b = tenants
    response = api(a.admin).post("/api/v1/departments", {"name": "Planted", company_field: b.company.pk}, format="json")
    assert response.status_code == 201
    assert "company" not in response.json()
    assert Department.objects.for_company(a.company).filter(name="Planted").exists()
    assert not Department.objects.for_company(b.company).exists()


def test_a_company_in_an_update_payload_does_not_move_the_row(api, tenants):
    a, b = tenants
    created = api(a.admin).post("/api/v1/departments", {"name": "Stay"}, format="json").json()
    response = api(a.admin).patch(
        f"/api/v1/departments/{created['id']}", {"name": "Still here", "company": b.company.pk}, format="json"
    )
    assert response.status_code == 200
    assert Department.objects.for_company(a.company).get(pk=created["id"]).name == "Still here"


def test_a_user_created_with_another_company_lands_in_the_owners(api, tenants):
    a, b = tenants
    response = api(a.owner).post(
        "/api/v1/users", {"username": "planted", "company": b.company.pk, "role": "viewer"}, format="json"
    )
    assert response.status_code == 201
    assert User.objects.for_company(a.company).filter(username="planted").exists()
