"""Subjects over the API: CRUD, per-company uniqueness, generated job numbers, filters."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditLog
from subjects.models import Photo, Subject
from tests.factories import DepartmentFactory, PhotoFactory, SubjectFactory
from tests.images import jpeg_bytes

pytestmark = pytest.mark.django_db


def create(client, **data):
    return client.post("/api/v1/subjects", {"name": "陳美玲", "job_number": "E1", **data}, format="json")


def code_of(response):
    return response.json()["error"]["code"]


def test_it_creates_an_employee_with_a_chinese_name_and_audits_it(api, tenant_a):
    department = DepartmentFactory(company=tenant_a.company)
    response = create(api(tenant_a.admin), email=" Mei@Example.com ", department=department.pk)
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["email"], body["department_name"]) == ("陳美玲", "Mei@Example.com", department.name)
    subject = Subject.objects.for_company(tenant_a.company).get(pk=body["id"])
    assert subject.company == tenant_a.company
    assert (
        AuditLog.objects.for_company(tenant_a.company)
        .filter(action="subject.create", object_id=str(subject.pk))
        .exists()
    )


def test_an_email_taken_in_the_company_is_refused_trimmed_and_case_insensitively(api, tenant_a):
    SubjectFactory(company=tenant_a.company, email="mei@example.com")
    response = create(api(tenant_a.admin), email="  MEI@example.COM ")
    assert response.status_code == 409
    assert code_of(response) == "subject_email_taken"
    assert list(response.json()["error"]["fields"]) == ["email"]


def test_a_job_number_taken_in_the_company_is_refused(api, tenant_a):
    SubjectFactory(company=tenant_a.company, job_number="E1")
    assert code_of(create(api(tenant_a.admin))) == "subject_job_number_taken"


def test_another_companys_email_and_job_number_are_never_taken(api, tenants):
    a, b = tenants
    SubjectFactory(company=a.company, job_number="E1", email="mei@example.com")
    response = create(api(b.admin), email="mei@example.com")
    assert response.status_code == 201


def test_many_subjects_may_have_no_email(api, tenant_a):
    client = api(tenant_a.admin)
    assert create(client, job_number="E1", email="").status_code == 201
    assert create(client, job_number="E2", email="").status_code == 201


def test_visitors_and_vips_get_a_generated_job_number_but_employees_need_one(api, tenant_a):
    client = api(tenant_a.admin)
    visitor = create(client, subject_type="visitor", job_number="").json()
    vip = create(client, subject_type="vip", job_number="").json()
    assert visitor["job_number"].startswith("V-") and vip["job_number"].startswith("VIP-")
    assert code_of(create(client, subject_type="employee", job_number="  ")) == "subject_job_number_required"


def test_bad_input_answers_with_a_code_and_writes_nothing(api, tenants):
    a, b = tenants
    client = api(a.admin)
    other_department = DepartmentFactory(company=b.company)
    host_elsewhere = SubjectFactory(company=b.company)
    visitor = SubjectFactory(company=a.company, subject_type="visitor")
    now = timezone.now()
    cases = [
        ({"name": ""}, "validation_error", "name"),
        ({"email": "not-an-email"}, "validation_error", "email"),
        ({"subject_type": "alien"}, "validation_error", "subject_type"),
        ({"department": other_department.pk}, "validation_error", "department"),
        ({"host": host_elsewhere.pk}, "validation_error", "host"),
        ({"host": visitor.pk}, "subject_host_invalid", "host"),
        ({"visit_start": now.isoformat(), "visit_end": (now - timedelta(hours=1)).isoformat()},
         "subject_visit_window_invalid", "visit_end"),
    ]  # fmt: skip
    before = Subject.objects.for_company(a.company).count()
    for data, code, field in cases:
        response = create(client, **data)
        assert response.status_code == 400, data
        assert code_of(response) == code, data
        assert field in response.json()["error"]["fields"], data
    assert Subject.objects.for_company(a.company).count() == before


def test_another_companys_department_id_is_reported_like_a_missing_one(api, tenants):
    a, b = tenants
    theirs_id = DepartmentFactory(company=b.company).pk
    theirs = create(api(a.admin), department=theirs_id).json()["error"]
    missing = create(api(a.admin), department=999999).json()["error"]
    assert theirs["code"] == missing["code"] == "validation_error"
    assert theirs["fields"]["department"][0].replace(str(theirs_id), "#") == missing["fields"]["department"][0].replace(
        "999999", "#"
    )


def test_an_update_keeps_the_rules(api, tenant_a):
    SubjectFactory(company=tenant_a.company, job_number="E9", email="taken@example.com")
    subject = SubjectFactory(company=tenant_a.company, job_number="E1")
    client = api(tenant_a.admin)
    assert code_of(client.patch(f"/api/v1/subjects/{subject.pk}", {"email": "TAKEN@example.com"}, format="json")) == (
        "subject_email_taken"
    )
    response = client.patch(f"/api/v1/subjects/{subject.pk}", {"title": "Lead", "archived": True}, format="json")
    assert response.status_code == 200 and response.json()["archived"] is True
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="subject.update")
    assert entry.changes["title"] == ["", "Lead"]


def test_create_with_photos_in_one_multipart_request(api, tenant_a, media_root):
    response = api(tenant_a.admin).post(
        "/api/v1/subjects/with-photos",
        {
            "name": "Lin",
            "job_number": "E5",
            "upload": [SimpleUploadedFile("a.jpg", jpeg_bytes()), SimpleUploadedFile("b.jpg", jpeg_bytes())],
            "consent_method": "paper",
            "consent_policy_version": "1",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert len(response.json()["photos"]) == 2


def test_a_bad_photo_in_a_create_leaves_no_subject_and_no_file(api, tenant_a, media_root):
    response = api(tenant_a.admin).post(
        "/api/v1/subjects/with-photos",
        {
            "name": "Lin",
            "job_number": "E5",
            "upload": [SimpleUploadedFile("a.jpg", jpeg_bytes()), SimpleUploadedFile("b.jpg", b"not an image")],
        },
        format="multipart",
    )
    assert code_of(response) == "photo_invalid"
    assert not Subject.objects.for_company(tenant_a.company).exists()
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))


FILTER_CASES = [
    ("subject_type=visitor", ["Visitor Vera", "Visitor Xavier"]),
    ("archived=true", ["Archived Arthur"]),
    ("job_number=E100", ["Engineer Eve"]),
    ("email=EVE@example.com", ["Engineer Eve"]),
    ("q=0912", ["Engineer Eve"]),
    ("q=vera", ["Visitor Vera"]),
    ("visit=current", ["Visitor Vera"]),
    ("visit=expired", ["Visitor Xavier"]),
    ("photo_status=pending", ["Engineer Eve"]),
    ("photo_status=none", ["Archived Arthur", "Visitor Vera", "Visitor Xavier"]),
]


@pytest.mark.parametrize(("query", "names"), FILTER_CASES)
def test_the_list_filters(api, tenants, query, names):
    a, b = tenants
    now = timezone.now()
    eve = SubjectFactory(company=a.company, name="Engineer Eve", job_number="E100", email="eve@example.com",
                         phone="0912-345-678")  # fmt: skip
    PhotoFactory(company=a.company, subject=eve)
    SubjectFactory(company=a.company, name="Archived Arthur", archived=True)
    SubjectFactory(company=a.company, name="Visitor Vera", subject_type="visitor",
                   visit_start=now - timedelta(hours=1), visit_end=now + timedelta(hours=1))  # fmt: skip
    SubjectFactory(company=a.company, name="Visitor Xavier", subject_type="visitor",
                   visit_start=now - timedelta(days=2), visit_end=now - timedelta(days=1))  # fmt: skip
    SubjectFactory(company=b.company, name="Engineer Eve", job_number="E100", email="eve@example.com")
    rows = api(a.viewer).get(f"/api/v1/subjects?{query}").json()["results"]
    assert sorted(row["name"] for row in rows) == sorted(names)


def test_the_department_filter(api, tenant_a):
    sales = DepartmentFactory(company=tenant_a.company, name="Sales")
    SubjectFactory(company=tenant_a.company, name="In sales", department=sales)
    SubjectFactory(company=tenant_a.company, name="Elsewhere")
    rows = api(tenant_a.viewer).get(f"/api/v1/subjects?department={sales.pk}").json()["results"]
    assert [row["name"] for row in rows] == ["In sales"]


def test_the_list_costs_the_same_queries_for_5_or_50_subjects(api, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api(tenant_a.viewer)

    def count_for(total):
        for _ in range(total - Subject.objects.for_company(tenant_a.company).count()):
            PhotoFactory(company=tenant_a.company)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/subjects?page_size=100").status_code == 200
        return len(queries)

    # user (+company), count, page of subjects (+department), photos prefetch
    few, many = count_for(5), count_for(50)
    assert few == many == 4


def test_deleting_a_subject_is_audited_and_takes_its_photos(api, tenant_a):
    photo = PhotoFactory(company=tenant_a.company)
    assert api(tenant_a.admin).delete(f"/api/v1/subjects/{photo.subject_id}").status_code == 204
    assert not Photo.objects.for_company(tenant_a.company).exists()
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="subject.delete").exists()
