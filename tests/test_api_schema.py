"""The OpenAPI schema describes what the API really answers and accepts (what schemathesis,
run by tests/fuzz/run_schemathesis.py in CI, checks against the running API)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from devices.models import Box
from kangaroo import errors
from kangaroo.api.schema import PYTHON_ONLY_ESCAPES, TEXT_PATTERN, TIME_PATTERN
from tests.events.conftest import make_door
from tests.factories import DepartmentFactory, SubjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def component(schema, name):
    return schema["components"]["schemas"][name]


def test_working_hours_are_described_as_the_api_writes_them(api, tenant_a, schema):
    written = api(tenant_a.owner).get("/api/v1/company").json()["work_start"]
    for name in ("Company", "PatchedCompanyRequest"):
        field = component(schema, name)["properties"]["work_start"]
        assert "format" not in field  # RFC 3339's `time` needs an offset no working hour has
        assert re.match(field["pattern"], written)
    assert re.match(TIME_PATTERN, "08:30") and not re.match(TIME_PATTERN, "24:00")


def test_blank_choices_are_in_the_answers_enum(api, tenant_a, schema):
    door = make_door(tenant_a, "A")
    screen = api(tenant_a.owner).get(f"/api/v1/screens/{door.entrance.pk}").json()
    assert screen["camera_status"] == ""  # no heartbeat has reported on the camera yet
    options = component(schema, "Screen")["properties"]["camera_status"]["oneOf"]
    refs = [option["$ref"].rsplit("/", 1)[1] for option in options]
    assert "BlankEnum" in refs
    assert component(schema, "BlankEnum")["enum"] == [""]
    event_direction = component(schema, "Event")["properties"]["direction"]
    assert "BlankEnum" in str(event_direction)


def test_a_subject_without_department_answers_a_null_the_schema_allows(api, tenant_a, schema):
    subject = SubjectFactory(company=tenant_a.company, department=None)
    assert api(tenant_a.viewer).get(f"/api/v1/subjects/{subject.pk}").json()["department_name"] is None
    assert component(schema, "Subject")["properties"]["department_name"]["nullable"] is True


@pytest.mark.parametrize("path", ["/api/v1/subjects", "/api/v1/events", "/api/v1/audit-log"])
@pytest.mark.parametrize("page_size", ["2.5", "0", "-1", "ten", "100000", "١٢"])
def test_a_page_size_that_is_not_a_whole_number_in_range_is_refused(api, tenant_a, path, page_size):
    response = api(tenant_a.owner).get(path, {"page_size": page_size})
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["page_size"]


def test_page_size_limits_are_in_the_schema(api, tenant_a, schema):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/subjects"]["get"]["parameters"]}
    assert (parameters["page_size"]["minimum"], parameters["page_size"]["maximum"]) == (1, 500)
    assert api(tenant_a.owner).get("/api/v1/subjects", {"page_size": "500"}).status_code == 200


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"400", "403", "404", "429", "503"} <= statuses, (method, path)
            if method in ("post", "put", "patch"):
                assert {"409", "413", "415"} <= statuses, (method, path)


def test_the_schema_admits_the_blank_value_the_api_takes_as_no_question(schema):
    asked = 0
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "include":
                    assert parameter["allowEmptyValue"] is True, path
                    asked += 1
                    assert parameter["schema"]["enum"] == ["images"], path
    assert asked >= 10


def test_a_name_already_taken_is_a_conflict_not_a_bad_request(api, tenant_a):
    """A well-formed write that collides with stored data answers 409 with its own code."""
    client = api(tenant_a.owner)
    assert client.post("/api/v1/departments", {"name": "Sales"}, format="json").status_code == 201
    taken = client.post("/api/v1/departments", {"name": "SALES"}, format="json")
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "department_name_taken"
    assert taken.json()["error"]["fields"] == {"name": [str(errors.DEPARTMENT_NAME_TAKEN.message)]}


def test_request_text_fields_and_strict_bodies_are_described(schema):
    department = component(schema, "DepartmentRequest")["properties"]["name"]
    assert department["pattern"] == TEXT_PATTERN
    assert re.match(TEXT_PATTERN, "Ops\tNight") and not re.match(TEXT_PATTERN, "a\x00b")
    assert component(schema, "HeartbeatRequest")["additionalProperties"] is False


def test_the_event_post_is_described_as_one_event_or_a_batch_with_a_fresh_example(schema):
    operation = schema["paths"]["/api/v1/device/events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    post = component(schema, body["schema"]["$ref"].rsplit("/", 1)[1])
    refs = sorted(option["$ref"].rsplit("/", 1)[1] for option in post["oneOf"])
    assert refs == ["EventBatchRequest", "EventItemRequest"]
    item = component(schema, "EventItemRequest")
    assert item["additionalProperties"] is False and set(item["required"]) == {"uid", "happened_at"}
    assert component(schema, "EventBatchRequest")["properties"]["events"]["maxItems"] == 500
    example = body["examples"]["OneEvent"]["value"]
    from django.utils.dateparse import parse_datetime

    assert timezone.now() - parse_datetime(example["happened_at"]) < timedelta(days=1)


def test_the_events_example_from_the_schema_is_accepted(tenant_a, schema):
    door = make_door(tenant_a, "A")
    body = schema["paths"]["/api/v1/device/events"]["post"]["requestBody"]["content"]["application/json"]
    example = {**body["examples"]["OneEvent"]["value"], "screen_id": door.entrance.pk, "subject_id": None}
    response = door.box_client().post("/api/v1/device/events", example, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(("path", "name"), [("/api/v1/subjects", "department"), ("/api/v1/events", "screen"),
                                            ("/api/v1/attendance", "department")])  # fmt: skip
def test_id_filters_are_described_with_their_range(schema, path, name):
    parameters = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
    assert (parameters[name]["type"], parameters[name]["minimum"]) == ("integer", 1)


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/audit-log"])
def test_the_since_parameter_documents_the_offsets_it_takes(schema, path):
    parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
    assert "+14:00" in parameters["since"]["description"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": 0}, "name"),  # a number for a text
        ({"name": "Lobby", "location": True}, "location"),
        ({"name": "Lobby", "location": ["Lobby"]}, "location"),
    ],
)
def test_a_json_body_of_the_wrong_type_is_refused_not_coerced(api, tenant_a, body, field):
    response = api(tenant_a.admin).post("/api/v1/boxes", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["fields"]) == [field]
    assert not Box.objects.for_company(tenant_a.company).exists()


@pytest.mark.parametrize("value", ["true", 1, 0, "false", None])
def test_a_json_boolean_must_be_true_or_false(api, tenant_a, value):
    subject = SubjectFactory(company=tenant_a.company)
    response = api(tenant_a.admin).patch(f"/api/v1/subjects/{subject.pk}", {"archived": value}, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()["error"]["fields"]) == ["archived"]
    subject.refresh_from_db()
    assert subject.archived is False


def test_a_json_integer_must_be_a_number(api, tenant_a):
    response = api(tenant_a.admin).post("/api/v1/boxes", {"name": "Lobby", "max_screens": "4"}, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()["error"]["fields"]) == ["max_screens"]
    created = api(tenant_a.admin).post("/api/v1/boxes", {"name": "Lobby", "max_screens": 4}, format="json")
    assert created.status_code == 201


def test_a_multipart_body_carries_text_for_numbers_and_booleans(api, tenant_a):
    department = DepartmentFactory(company=tenant_a.company)
    body = {"name": "7", "job_number": "8", "archived": "true", "department": str(department.pk)}
    response = api(tenant_a.admin).post("/api/v1/subjects/with-photos", body, format="multipart")
    assert response.status_code == 201, response.json()
    assert (response.json()["archived"], response.json()["department"]) == (True, department.pk)


def request_types(schema) -> dict[tuple[str, str], set[str]]:
    return {
        (method.upper(), path): set(operation["requestBody"]["content"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }


def test_bodies_are_json_and_only_uploads_take_multipart(schema):
    uploads = {
        ("POST", "/api/v1/subjects/with-photos"),
        ("POST", "/api/v1/subjects/{id}/photos"),
        ("POST", "/api/v1/subjects/{id}/consents/upload"),  # with the signed form; /consents takes JSON
        # An image to look at (not to store), as a file; the same paths without /upload take JSON.
        ("POST", "/api/v1/device/recognize/upload"),
        ("POST", "/api/v1/device/verify/upload"),
        ("POST", "/api/v1/faces/search/upload"),
        ("POST", "/api/v1/photo-uploads"),
    }
    types = request_types(schema)
    assert {key for key, media in types.items() if media == {"multipart/form-data"}} == uploads
    assert {key for key, media in types.items() if media != {"application/json"}} == uploads


@pytest.mark.parametrize(
    ("path", "component_name", "fields"),
    [
        ("/api/v1/device/recognize", "Recognize", {"uid", "screen_id"}),
        ("/api/v1/device/verify", "Verify", {"job_number"}),
        ("/api/v1/faces/search", "FaceSearch", {"limit"}),
    ],
)
def test_an_image_operation_takes_the_same_fields_in_both_forms_under_stable_names(
    schema, path, component_name, fields
):
    """Generated clients are built on the component names: they stay as they were."""
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    upload = schema["paths"][f"{path}/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{component_name}Request"}
    assert upload == {"$ref": f"#/components/schemas/{component_name}UploadRequest"}
    json_form = component(schema, f"{component_name}Request")
    multipart_form = component(schema, f"{component_name}UploadRequest")
    assert set(json_form["properties"]) == set(multipart_form["properties"]) == fields | {"image"}
    assert json_form["properties"]["image"]["format"] == "byte"
    assert multipart_form["properties"]["image"]["format"] == "binary"
    assert json_form["required"] == multipart_form["required"]


@pytest.mark.parametrize("format_", ["multipart", "form"])
def test_a_form_or_multipart_body_to_a_json_operation_answers_415(api, tenant_a, format_):
    subject = SubjectFactory(company=tenant_a.company, title="Engineer")
    client = api(tenant_a.admin)
    url = f"/api/v1/subjects/{subject.pk}"
    if format_ == "form":
        response = client.generic("PATCH", url, "title=", content_type="application/x-www-form-urlencoded")
    else:
        response = client.patch(url, {"title": ""}, format="multipart")
    assert response.status_code == 415, response.content
    assert response.json()["error"]["code"] == "unsupported_media_type"
    subject.refresh_from_db()
    assert subject.title == "Engineer"


def test_a_blank_multipart_part_is_a_blank_text_not_a_missing_one(api, tenant_a):
    # A form would read the blank `name` of an optional field as "not given"; a multipart body
    # is read like JSON, so a blank text where the schema says minLength is refused.
    response = api(tenant_a.admin).post("/api/v1/subjects/with-photos", {"name": ""}, format="multipart")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["name"]
    response = api(tenant_a.admin).post(
        "/api/v1/subjects/with-photos", {"name": "Lin", "subject_type": "visitor", "job_number": ""}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["job_number"]  # blank is allowed here, and means "generate one"


def test_an_unknown_multipart_part_is_refused_as_the_schema_says(api, tenant_a, schema):
    assert component(schema, "SubjectUploadRequest")["additionalProperties"] is False
    assert component(schema, "PhotoUploadRequest")["additionalProperties"] is False
    response = api(tenant_a.admin).post(
        "/api/v1/subjects/with-photos", {"name": "Lin", "nickname\u0001": "x"}, format="multipart"
    )
    assert response.status_code == 400
    subject = SubjectFactory(company=tenant_a.company)
    response = api(tenant_a.admin).post(
        f"/api/v1/subjects/{subject.pk}/photos", {"image": "", "caption": "x"}, format="multipart"
    )
    assert response.json()["error"]["code"] == "unknown_fields"
    assert list(response.json()["error"]["fields"]) == ["caption"]


@pytest.mark.parametrize(
    "query, name",
    [
        ("archived=null", "archived"),
        ("archived=yes&archived=true", "archived"),
        ("archived=1", "archived"),
        ("subject_type=", "subject_type"),
        ("subject_type=robot", "subject_type"),
        ("department=", "department"),
    ],
)
def test_a_loose_query_value_is_refused_not_ignored(api, tenant_a, query, name):
    SubjectFactory(company=tenant_a.company)
    response = api(tenant_a.admin).get(f"/api/v1/subjects?{query}")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "validation_error"
    assert list(response.json()["error"]["fields"]) == [name]


@pytest.mark.parametrize("path", ["/api/v1/users?is_active=null", "/api/v1/audit-log?until=", "/api/v1/events?since="])
def test_typed_query_values_elsewhere_are_refused_too(api, tenant_a, path):
    response = api(tenant_a.owner).get(path)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "validation_error"


def test_booleans_and_free_text_in_the_query_still_filter(api, tenant_a):
    SubjectFactory(company=tenant_a.company, archived=True)
    SubjectFactory(company=tenant_a.company, archived=False)
    client = api(tenant_a.admin)
    assert client.get("/api/v1/subjects?archived=true").json()["count"] == 1
    assert client.get("/api/v1/subjects?archived=false&q=").json()["count"] == 1


def test_attendance_parameters_whose_blank_means_no_filter_say_so(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/attendance"]["get"]["parameters"]}
    assert all(parameters[name].get("allowEmptyValue") is True for name in ("from", "to", "department", "subject_type"))
    assert not any(key.startswith("x-") for parameter in parameters.values() for key in parameter)


def test_a_text_that_may_be_blank_is_described_so_that_blank_is_valid(schema):
    location = component(schema, "PatchedPadLocationRequest")["properties"]["location"]
    assert "oneOf" not in location  # "" matches both branches, which oneOf would refuse
    assert {"type": "string", "maxLength": 0} in location["anyOf"]


def test_a_partial_update_answers_every_field_of_the_schema(api, tenant_a, schema):
    subject = SubjectFactory(company=tenant_a.company, department=None)
    response = api(tenant_a.admin).patch(f"/api/v1/subjects/{subject.pk}", {"title": "Lead"}, format="json")
    assert response.status_code == 200
    assert set(component(schema, "Subject")["required"]) <= set(response.json())
    assert response.json()["department_name"] is None


@pytest.mark.parametrize("page", ["", "last", "0", "1.0"])
def test_a_page_number_is_a_whole_number_from_one(api, tenant_a, page):
    response = api(tenant_a.viewer).get(f"/api/v1/departments?page={page}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page"]
    assert api(tenant_a.viewer).get("/api/v1/departments?page=1").status_code == 200


@pytest.mark.parametrize("screens", [{}, {"1": 1}, "1"])
def test_a_list_of_ids_must_be_a_json_list(api, tenant_a, screens):
    from tests.factories import TVBoxFactory

    tvbox = TVBoxFactory(company=tenant_a.company)
    response = api(tenant_a.admin).patch(f"/api/v1/tv-boxes/{tvbox.pk}", {"screens": screens}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["screens"]


def test_the_heartbeat_examples_from_the_schema_are_fresh_and_accepted(tenant_a, schema):
    door = make_door(tenant_a, "A")
    body = schema["paths"]["/api/v1/device/heartbeat"]["post"]["requestBody"]["content"]["application/json"]
    box = {**body["examples"]["ABox"]["value"], "cameras": [{"screen_id": door.entrance.pk, "status": "ok"}]}
    response = door.box_client().post("/api/v1/device/heartbeat", box, format="json")
    assert response.status_code == 200, response.content
    from django.utils.dateparse import parse_datetime

    for example in body["examples"].values():
        assert abs(timezone.now() - parse_datetime(example["value"]["sent_at"])) < timedelta(days=1)


def test_a_device_event_body_is_required_and_its_objects_described_by_their_own_docs(schema):
    assert schema["paths"]["/api/v1/device/events"]["post"]["requestBody"]["required"] is True
    assert "description" not in component(schema, "HeartbeatRequest")  # not StrictSerializer's contract


def test_no_pattern_means_ascii_only_to_a_client_where_the_api_takes_any_script(api, tenant_a, schema):
    # Django's username rule is Python's \w: any script's letters. In OpenAPI's patterns
    # (ECMA-262) \w is ASCII only, so a client checking answers against the schema refused
    # the user the API had just created.
    created = api(tenant_a.owner).post("/api/v1/users", {"username": "陳美玲", "role": "viewer"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["username"] == "陳美玲"

    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    assert not [p for p in patterns(schema) if any(escape in p for escape in PYTHON_ONLY_ESCAPES)]
    answered = component(schema, "User")["properties"]["username"]
    assert "pattern" not in answered and answered["maxLength"] == 150
