"""One error envelope everywhere, pagination on lists, the schema lists every code."""

import pytest
import yaml
from django.core.management import call_command

from kangaroo import errors
from subjects.models import Department
from tests.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


def assert_envelope(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def test_a_missing_object_is_not_found(api, tenant_a):
    assert_envelope(api(tenant_a.owner).get("/api/v1/departments/424242"), 404, "not_found")


def test_a_non_numeric_id_is_not_found_not_a_500(api, tenant_a):
    assert_envelope(api(tenant_a.owner).get("/api/v1/departments/abc"), 404, "not_found")


def test_a_validation_error_names_its_fields(api, tenant_a):
    error = assert_envelope(api(tenant_a.owner).post("/api/v1/departments", {}, format="json"), 400, "validation_error")
    assert list(error["fields"]) == ["name"]


def test_a_domain_error_answers_with_its_own_code(api, tenant_a):
    DepartmentFactory(company=tenant_a.company, name="Sales")
    error = assert_envelope(
        api(tenant_a.owner).post("/api/v1/departments", {"name": " sales "}, format="json"),
        409,
        "department_name_taken",
    )
    assert error["fields"] == {"name": [str(errors.DEPARTMENT_NAME_TAKEN.message)]}


def test_the_same_name_in_another_company_is_not_taken(api, tenants):
    a, b = tenants
    DepartmentFactory(company=a.company, name="Sales")
    response = api(b.owner).post("/api/v1/departments", {"name": "Sales"}, format="json")
    assert response.status_code == 201


def test_malformed_json_is_a_parse_error(api, tenant_a):
    response = api(tenant_a.owner).post("/api/v1/departments", "{not json", content_type="application/json")
    assert_envelope(response, 400, "parse_error")


def test_an_unsupported_method_is_405(api, tenant_a):
    assert_envelope(api(tenant_a.owner).delete("/api/v1/departments"), 405, "method_not_allowed")


def test_an_unsupported_media_type_is_415(api, tenant_a):
    response = api(tenant_a.owner).post("/api/v1/departments", "name=x", content_type="text/plain")
    assert_envelope(response, 415, "unsupported_media_type")


def test_a_viewer_writing_is_permission_denied(api, tenant_a):
    response = api(tenant_a.viewer).post("/api/v1/departments", {"name": "X"}, format="json")
    assert_envelope(response, 403, "permission_denied")
    assert not Department.objects.for_company(tenant_a.company).exists()


def test_an_unexpected_failure_is_a_coded_500_without_details(api, tenant_a, monkeypatch):
    from subjects import api as subjects_api

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(subjects_api.services, "department_create", explode)
    response = api(tenant_a.owner).post("/api/v1/departments", {"name": "X"}, format="json")
    error = assert_envelope(response, 500, "server_error")
    assert "secret" not in error["message"]


def test_lists_are_paginated(api, tenant_a):
    for n in range(7):
        DepartmentFactory(company=tenant_a.company, name=f"D{n}")
    page = api(tenant_a.owner).get("/api/v1/departments?page_size=3&page=2").json()
    assert page["count"] == 7
    assert [row["name"] for row in page["results"]] == ["D3", "D4", "D5"]
    assert page["next"] and page["previous"]


def test_a_page_past_the_end_is_not_found(api, tenant_a):
    assert_envelope(api(tenant_a.owner).get("/api/v1/departments?page=99"), 404, "not_found")


def test_the_schema_validates_and_lists_every_error_code(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    enum = schema["components"]["schemas"]["ErrorCodeEnum"]["enum"]
    assert set(enum) == set(errors.REGISTRY)
    # Every operation documents the envelope for 4XX answers it can give.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "403" in operation["responses"], f"{method} {path}"


def test_the_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_error_codes_are_unique_and_lower_snake_case():
    for code in errors.REGISTRY:
        assert code == code.lower() and " " not in code
    with pytest.raises(ValueError):
        errors.declare("not_found", 404, "again")
