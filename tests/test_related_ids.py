"""One rule for related ids in a request body (README, "Related ids"): an id of another
company answers exactly like a missing one, 400 `validation_error` with "Not found." on
the field, and nothing is written. Every writable related-id field of the API is found
here by walking the serializers, so a new one without a case below fails the build."""

from __future__ import annotations

import importlib
import inspect

import pytest
from rest_framework import relations, serializers

from kangaroo.api.fields import CompanyRelatedField
from subjects.models import SubjectType
from tests.conftest import answer_without_request_id
from tests.factories import (
    BoxFactory,
    DepartmentFactory,
    PadFactory,
    ScreenFactory,
    SubjectFactory,
    TVBoxFactory,
)

pytestmark = pytest.mark.django_db

API_MODULES = ["accounts.api", "subjects.api", "devices.api", "devices.device_api", "events.api"]
MISSING = 987_654_321


def writable_related_fields() -> dict[tuple[str, str], serializers.Field]:
    """{(serializer, field): field} for every related field a client may write."""
    found = {}
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, serializers.BaseSerializer) or cls.__module__ != module_name:
                continue
            if issubclass(cls, serializers.ModelSerializer) and not hasattr(cls, "Meta"):
                continue  # an abstract base (DeviceSerializer): its subclasses are walked
            for field_name, field in cls().fields.items():
                if field.read_only:
                    continue
                if isinstance(field, (relations.RelatedField, relations.ManyRelatedField)):
                    found[(name, field_name)] = field
    return found


class ItemAnswer:
    """One item's answer in a batch (the subjects' upsert answers each item on its own, 200 for
    the batch), read like a response of its own: the item's error with its code's status."""

    def __init__(self, response, index: int = 0):
        from kangaroo.errors import REGISTRY

        assert response.status_code == 200, response.content
        self.result = response.json()["results"][index]
        self.status_code = REGISTRY[self.result["error"]["code"]].status if "error" in self.result else 200

    def json(self):
        return {"error": self.result["error"]} if "error" in self.result else self.result


def upsert(client, row, **fields):
    body = {"subjects": [{"job_number": row.job_number, "name": row.name, **fields}]}
    return ItemAnswer(client.post("/api/v1/subjects/upsert", body, format="json"))


def foreign_box(b):
    return BoxFactory(company=b.company).pk


def foreign_screen(b):
    return ScreenFactory(company=b.company).pk


# (serializer, field) -> (what to change in company A, the request, B's row of that field)
CASES = {
    ("ScreenSerializer", "box"): (
        lambda a: ScreenFactory(company=a.company),
        lambda client, row, pk: client.patch(f"/api/v1/screens/{row.pk}", {"box": pk}, format="json"),
        foreign_box,
    ),
    ("PadSerializer", "screen"): (
        lambda a: PadFactory(company=a.company),
        lambda client, row, pk: client.patch(f"/api/v1/pads/{row.pk}", {"screen": pk}, format="json"),
        foreign_screen,
    ),
    ("TVBoxSerializer", "screens"): (
        lambda a: TVBoxFactory(company=a.company),
        lambda client, row, pk: client.patch(f"/api/v1/tv-boxes/{row.pk}", {"screens": [pk]}, format="json"),
        foreign_screen,
    ),
    ("AttachScreenSerializer", "screen"): (
        lambda a: BoxFactory(company=a.company),
        lambda client, row, pk: client.post(f"/api/v1/boxes/{row.pk}/attach-screen", {"screen": pk}, format="json"),
        foreign_screen,
    ),
    ("SubjectSerializer", "department"): (
        lambda a: SubjectFactory(company=a.company),
        lambda client, row, pk: client.patch(f"/api/v1/subjects/{row.pk}", {"department": pk}, format="json"),
        lambda b: DepartmentFactory(company=b.company).pk,
    ),
    ("SubjectSerializer", "host"): (
        lambda a: SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR),
        lambda client, row, pk: client.patch(f"/api/v1/subjects/{row.pk}", {"host": pk}, format="json"),
        lambda b: SubjectFactory(company=b.company).pk,  # an employee: a valid host in B
    ),
    # A subject upserted by job number (an HR system's sync): each item answers the same.
    ("SubjectUpsertItemSerializer", "department"): (
        lambda a: SubjectFactory(company=a.company),
        lambda client, row, pk: upsert(client, row, department=pk),
        lambda b: DepartmentFactory(company=b.company).pk,
    ),
    ("SubjectUpsertItemSerializer", "host"): (
        lambda a: SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR),
        lambda client, row, pk: upsert(client, row, subject_type="visitor", host=pk),
        lambda b: SubjectFactory(company=b.company).pk,
    ),
    # A subject created with photos (multipart): the same fields, the same answer.
    ("SubjectUploadSerializer", "department"): (
        lambda a: SubjectFactory(company=a.company),
        lambda client, row, pk: client.post(
            "/api/v1/subjects/with-photos", {"name": "Lin", "department": pk}, format="multipart"
        ),
        lambda b: DepartmentFactory(company=b.company).pk,
    ),
    ("SubjectUploadSerializer", "host"): (
        lambda a: SubjectFactory(company=a.company),
        lambda client, row, pk: client.post(
            "/api/v1/subjects/with-photos", {"name": "Lin", "subject_type": "visitor", "host": pk}, format="multipart"
        ),
        lambda b: SubjectFactory(company=b.company).pk,
    ),
}


def test_every_writable_related_field_is_scoped_and_has_a_case():
    fields = writable_related_fields()
    assert set(fields) == set(CASES), "add a case for each new related-id field"
    for key, field in fields.items():
        related = field.child_relation if isinstance(field, relations.ManyRelatedField) else field
        assert isinstance(related, CompanyRelatedField), f"{key} must be a CompanyRelatedField"


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda case: ".".join(case))
def test_another_companys_id_answers_like_a_missing_one(case, api, tenants):
    a, b = tenants
    make_row, request, make_foreign = CASES[case]
    row = make_row(a)
    before = {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields if f.name != "updated_at"}
    client = api(a.admin)
    foreign = request(client, row, make_foreign(b))
    missing = request(client, row, MISSING)
    assert foreign.status_code == missing.status_code == 400, foreign.content
    assert answer_without_request_id(foreign) == answer_without_request_id(missing)
    assert foreign.json()["error"]["code"] == "validation_error"
    assert foreign.json()["error"]["fields"] == {case[1]: ["Not found."]}
    row.refresh_from_db()
    assert {name: getattr(row, name) for name in before} == before
    if case == ("TVBoxSerializer", "screens"):
        assert not row.screens.exists()


def test_a_related_id_in_the_url_of_another_company_is_404_like_a_missing_one(api, tenants):
    a, b = tenants
    client = api(a.admin)
    screen = ScreenFactory(company=a.company)
    theirs = BoxFactory(company=b.company)
    foreign = client.post(f"/api/v1/boxes/{theirs.pk}/attach-screen", {"screen": screen.pk}, format="json")
    missing = client.post(f"/api/v1/boxes/{MISSING}/attach-screen", {"screen": screen.pk}, format="json")
    assert foreign.status_code == missing.status_code == 404
    assert answer_without_request_id(foreign) == answer_without_request_id(missing)
    assert foreign.json()["error"]["code"] == "not_found"
