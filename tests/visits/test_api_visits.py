"""Visits over the API: invite, list with filters and pages, read, cancel, re-send; the
tenant and role rules of the admin; the personal link never in an answer."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone

from accounts.models import AuditLog
from integrations import api_keys
from subjects.models import Subject, SubjectType
from tests.conftest import api_client_for
from tests.factories import PhotoFactory, SubjectFactory, VisitFactory
from tests.visits.helpers import token_in
from visits.models import Visit, VisitStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(tenant_a):
    return SubjectFactory(company=tenant_a.company, name="林經理", subject_type=SubjectType.EMPLOYEE)


def soon(hours=1):
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0)


def body(host=None, **fields):
    data = {
        "visitor_name": "林怡君",
        "visitor_email": "yijun@example.org",
        "visitor_company": "Acme Taiwan",
        "purpose": "Contract review",
        "language": "zh-hant",
        "starts_at": soon().isoformat(),
        "ends_at": soon(3).isoformat(),
    }
    if host is not None:
        data["host"] = host.pk
    return data | fields


def post(client, url, data=None):
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(url, data, format="json")


def code_of(response):
    return response.json()["error"]["code"]


def test_an_admin_invites_and_the_answer_is_the_visit_without_its_link(api, tenant_a, host):
    answer = post(api(tenant_a.admin), "/api/v1/visits", body(host))

    assert answer.status_code == 201, answer.content
    data = answer.json()
    visit = Visit.objects.for_company(tenant_a.company).get()
    assert (data["id"], data["visitor"], data["host"], data["host_name"]) == (
        visit.pk, visit.visitor_id, host.pk, "林經理",
    )  # fmt: skip
    assert (data["status"], data["state"], data["language"], data["invited_by"]) == (
        "invited", "invited", "zh-hant", tenant_a.admin.pk,
    )  # fmt: skip
    assert data["starts_at"].endswith("+08:00")  # the company's zone (Asia/Taipei)
    [message] = mail.outbox
    token = token_in(message)
    assert token not in answer.content.decode() and visit.link_token_hash not in answer.content.decode()
    assert not {"link", "token", "link_token_hash"} & set(data)
    assert AuditLog.objects.filter(action="visit.create", object_id=str(visit.pk)).exists()


def test_inviting_the_same_email_again_adds_a_visit_to_the_same_visitor_ready_at_the_doors(api, tenant_a, host):
    client = api(tenant_a.admin)
    first = post(client, "/api/v1/visits", body(host))
    assert first.status_code == 201, first.content
    visitor = first.json()["visitor"]
    PhotoFactory(company=tenant_a.company, subject_id=visitor, status="ok")  # they enrolled for the first visit
    other_host = SubjectFactory(company=tenant_a.company, subject_type=SubjectType.EMPLOYEE)

    later = {"starts_at": soon(48).isoformat(), "ends_at": soon(50).isoformat()}
    second = post(client, "/api/v1/visits", body(other_host, visitor_email="YIJUN@example.org", **later))

    assert second.status_code == 201, second.content
    data = second.json()
    assert (data["visitor"], data["host"], data["state"]) == (visitor, other_host.pk, "photo_ready")
    assert data["id"] != first.json()["id"]
    assert Visit.objects.for_company(tenant_a.company).filter(visitor_id=visitor).count() == 2
    assert [message.to for message in mail.outbox] == [["yijun@example.org"], ["YIJUN@example.org"]]


@pytest.mark.parametrize("kind", [SubjectType.EMPLOYEE, SubjectType.VIP])
def test_an_employees_or_vips_email_answers_409_and_nobody_becomes_a_visitor(api, tenants, host, kind):
    a, b = tenants
    person = SubjectFactory(company=a.company, subject_type=kind, email="boss@a.example")

    answer = post(api(a.admin), "/api/v1/visits", body(host, visitor_email="Boss@A.example"))

    assert (answer.status_code, code_of(answer)) == (409, "visit_email_not_visitor"), answer.content
    assert list(answer.json()["error"]["fields"]) == ["visitor_email"]
    assert Subject.objects.get(pk=person.pk).subject_type == kind
    assert not Visit.objects.exists() and mail.outbox == []
    # Company B's people with that address are not A's concern: B invites them as a new visitor.
    answer = post(api(b.admin), "/api/v1/visits", body(visitor_email="boss@a.example"))
    assert answer.status_code == 201, answer.content
    assert Subject.objects.get(pk=answer.json()["visitor"]).company_id == b.company.pk


def test_an_address_another_company_uses_is_neither_reused_nor_shown(api, tenants, host):
    a, b = tenants
    theirs = SubjectFactory(
        company=b.company, subject_type=SubjectType.VISITOR, email="yijun@example.org", name="B's guest", phone="1"
    )

    answer = post(api(a.admin), "/api/v1/visits", body(host))

    assert answer.status_code == 201, answer.content
    assert answer.json()["visitor"] != theirs.pk and "B's guest" not in answer.content.decode()
    assert Subject.objects.get(pk=answer.json()["visitor"]).company_id == a.company.pk
    theirs.refresh_from_db()
    assert (theirs.name, theirs.phone, theirs.host_id) == ("B's guest", "1", None)


def test_the_schema_says_an_invitation_reuses_the_visitor_and_names_its_error_codes(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    create = schema["paths"]["/api/v1/visits"]["post"]
    assert "same visitor" in create["description"] and "employee or VIP" in create["description"]
    assert "`visit_email_not_visitor`" in create["responses"]["409"]["description"]
    assert "`permission_denied`" in create["responses"]["403"]["description"]
    assert "`visit_contact_required`" in create["responses"]["400"]["description"]
    email = schema["components"]["schemas"]["VisitCreateRequest"]["properties"]["visitor_email"]
    assert "`visit_email_not_visitor`" in email["description"]


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"visitor_name": ""}, "validation_error", "visitor_name"),
        ({"visitor_email": "nope"}, "validation_error", "visitor_email"),
        ({"visitor_email": "", "visitor_phone": ""}, "visit_contact_required", "visitor_email"),
        ({"ends_at": "start"}, "visit_window_invalid", "ends_at"),
        ({"starts_at": "past", "ends_at": "past-end"}, "visit_in_past", "ends_at"),
        ({"language": "fr"}, "validation_error", "language"),
        ({"colour": "red"}, "unknown_fields", "colour"),
        ({"host": 2**40}, "validation_error", "host"),
    ],
)
def test_bad_input_answers_with_its_code_and_writes_nothing(api, tenant_a, host, fields, code, field):
    values = {
        "start": soon().isoformat(),
        "past": (timezone.now() - timedelta(hours=3)).isoformat(),
        "past-end": (timezone.now() - timedelta(hours=1)).isoformat(),
    }
    data = body(host) | {key: values.get(value, value) for key, value in fields.items()}

    answer = post(api(tenant_a.admin), "/api/v1/visits", data)

    assert answer.status_code in (400, 409), answer.content
    assert code_of(answer) == code and field in answer.json()["error"]["fields"]
    assert not Visit.objects.exists() and mail.outbox == []


def test_another_companys_host_is_not_found_and_a_viewer_or_an_api_key_may_not_invite(api, tenants, host):
    a, b = tenants
    theirs = SubjectFactory(company=b.company, subject_type=SubjectType.EMPLOYEE)
    answer = post(api(a.admin), "/api/v1/visits", body(theirs))
    assert (answer.status_code, answer.json()["error"]["fields"]) == (400, {"host": ["Not found."]})

    answer = post(api(a.viewer), "/api/v1/visits", body(host))
    assert (answer.status_code, code_of(answer)) == (403, "permission_denied")

    _key, text = api_keys.api_key_create(
        company=a.company, actor=a.owner, name="HR", scopes=["subjects:read", "subjects:write"]
    )
    keyed = api_client_for(None)
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    assert code_of(keyed.get("/api/v1/visits")) == "api_key_scope_missing"
    assert not Visit.objects.exists()


def test_the_list_filters_by_the_companys_day_by_host_and_by_status(api, tenants, host):
    a, b = tenants
    zone = a.company.zone
    other_host = SubjectFactory(company=a.company, subject_type=SubjectType.EMPLOYEE)
    early = datetime(2030, 1, 2, 1, 0, tzinfo=zone)  # 2030-01-01 17:00 UTC: the 2nd in Taipei
    hour = timedelta(hours=1)
    VisitFactory(company=a.company, visitor_name="Early", host=host, starts_at=early, ends_at=early + hour)
    VisitFactory(
        company=a.company, visitor_name="Late", host=other_host,
        starts_at=early + timedelta(hours=20), ends_at=early + timedelta(hours=21),
    )  # fmt: skip
    VisitFactory(
        company=a.company, visitor_name="Next day", host=host, status=VisitStatus.CANCELLED,
        starts_at=early + timedelta(days=1), ends_at=early + timedelta(days=1, hours=1),
    )  # fmt: skip
    VisitFactory(company=b.company, visitor_name="Theirs", starts_at=early, ends_at=early + timedelta(hours=1))
    client = api(a.viewer)

    def names(query):
        answer = client.get(f"/api/v1/visits?{query}")
        assert answer.status_code == 200, answer.content
        return sorted(row["visitor_name"] for row in answer.json()["results"])

    assert names("") == ["Early", "Late", "Next day"]
    assert names("date=2030-01-02") == ["Early", "Late"]
    assert names("date=2030-01-01") == []
    assert names(f"host={host.pk}") == ["Early", "Next day"]
    assert names("status=cancelled") == ["Next day"]
    assert names(f"date=2030-01-02&host={other_host.pk}") == ["Late"]
    page = client.get("/api/v1/visits?page_size=2&page=2").json()
    assert (page["count"], [row["visitor_name"] for row in page["results"]]) == (3, ["Early"])
    assert code_of(client.get("/api/v1/visits?date=tomorrow")) == "validation_error"
    assert code_of(client.get("/api/v1/visits?status=gone")) == "validation_error"


def test_another_companys_visit_is_not_found_to_read_cancel_or_resend(api, tenants):
    a, b = tenants
    theirs = VisitFactory(company=b.company)
    client = api(a.owner)
    for answer in (
        client.get(f"/api/v1/visits/{theirs.pk}"),
        post(client, f"/api/v1/visits/{theirs.pk}/cancel"),
        post(client, f"/api/v1/visits/{theirs.pk}/resend"),
    ):
        assert (answer.status_code, code_of(answer)) == (404, "not_found")
    theirs.refresh_from_db()
    assert theirs.status == VisitStatus.INVITED and mail.outbox == []


def test_cancel_and_resend_go_through_the_services(api, tenant_a, host):
    client = api(tenant_a.admin)
    created = post(client, "/api/v1/visits", body(host)).json()
    first = token_in(mail.outbox[-1])

    resent = post(client, f"/api/v1/visits/{created['id']}/resend")
    assert resent.status_code == 200, resent.content
    assert len(mail.outbox) == 2 and token_in(mail.outbox[-1]) != first
    assert token_in(mail.outbox[-1]) not in resent.content.decode()

    assert post(api(tenant_a.viewer), f"/api/v1/visits/{created['id']}/cancel").status_code == 403
    cancelled = post(client, f"/api/v1/visits/{created['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"], cancelled.json()["state"]) == (
        200, "cancelled", "cancelled",
    )  # fmt: skip
    again = post(client, f"/api/v1/visits/{created['id']}/resend")
    assert (again.status_code, code_of(again)) == (409, "visit_cancelled")


def test_the_state_says_photo_ready_then_arrived(api, tenant_a):
    visit = VisitFactory(company=tenant_a.company)
    client = api(tenant_a.viewer)
    assert client.get(f"/api/v1/visits/{visit.pk}").json()["state"] == "invited"
    PhotoFactory(company=tenant_a.company, subject=visit.visitor, status="ok")
    assert client.get(f"/api/v1/visits/{visit.pk}").json()["state"] == "photo_ready"
    Visit.objects.filter(pk=visit.pk).update(arrived_at=timezone.now())
    assert client.get(f"/api/v1/visits/{visit.pk}").json()["state"] == "arrived"


def test_the_list_costs_the_same_queries_for_5_or_50_visits(api, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api(tenant_a.viewer)

    def count_for(total):
        for _ in range(total - Visit.objects.for_company(tenant_a.company).count()):
            visit = VisitFactory(company=tenant_a.company, host=SubjectFactory(company=tenant_a.company))
            PhotoFactory(company=tenant_a.company, subject=visit.visitor, status="ok")
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/visits?page_size=100").status_code == 200
        return len(queries)

    # user (+company), count, page of visits (+visitor, host, invited_by, photo_ready subquery)
    few, many = count_for(5), count_for(50)
    assert few == many == 3


@pytest.mark.parametrize("kind", [SubjectType.VISITOR, SubjectType.VIP])
def test_a_visitor_or_vip_is_no_host_with_the_same_code_as_the_subjects_api(api, tenant_a, kind):
    not_an_employee = SubjectFactory(company=tenant_a.company, subject_type=kind)

    answer = post(api(tenant_a.admin), "/api/v1/visits", body(not_an_employee))

    assert answer.status_code == 400
    assert code_of(answer) == "subject_host_invalid" and "host" in answer.json()["error"]["fields"]
    assert not Visit.objects.exists() and mail.outbox == []


def test_the_schema_names_every_state_a_visit_can_be_in(client):
    from visits.selectors import VisitState

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    state = schema["components"]["schemas"]["Visit"]["properties"]["state"]
    described = state.get("description", "")
    enum = state.get("enum") or next(
        schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]["enum"] for ref in state.get("allOf", [])
    )
    assert set(enum) == set(VisitState.ALL) and "face_declined" in enum
    assert "`face_declined`" in described and "`left`" in described


def test_reception_checks_in_and_marks_left_over_the_api_once_each(api, tenant_a, host):
    from integrations.models import VisitorArrival

    host.email = "host@a.example"
    host.save(update_fields=["email"])
    client = api(tenant_a.admin)
    created = post(client, "/api/v1/visits", body(host, starts_at=(timezone.now() - timedelta(minutes=5)).isoformat()))
    visit_id = created.json()["id"]
    mail.outbox.clear()

    checked_in = post(client, f"/api/v1/visits/{visit_id}/check-in")
    again = post(api(tenant_a.owner), f"/api/v1/visits/{visit_id}/check-in")

    assert checked_in.status_code == 200, checked_in.content
    data = checked_in.json()
    assert (data["state"], data["arrived_via"]) == ("arrived", "reception")
    assert data["arrived_at"].endswith("+08:00")  # the company's zone
    assert again.status_code == 200 and again.json()["arrived_at"] == data["arrived_at"]
    assert [m.to for m in mail.outbox] == [["host@a.example"]]
    assert VisitorArrival.objects.for_company(tenant_a.company).count() == 1
    assert AuditLog.objects.filter(action="visit.check_in", object_id=str(visit_id)).count() == 1

    left = post(client, f"/api/v1/visits/{visit_id}/mark-left")
    assert left.status_code == 200, left.content
    assert (left.json()["state"], left.json()["arrived_at"]) == ("left", data["arrived_at"])
    assert post(client, f"/api/v1/visits/{visit_id}/mark-left").json()["left_at"] == left.json()["left_at"]
    assert AuditLog.objects.filter(action="visit.mark_left", object_id=str(visit_id)).count() == 1


def test_check_in_and_mark_left_follow_the_tenant_and_role_rules_with_their_codes(api, tenants):
    a, b = tenants
    theirs = VisitFactory(company=b.company, starts_at=timezone.now() - timedelta(minutes=5))
    mine = VisitFactory(company=a.company, starts_at=timezone.now() - timedelta(minutes=5))
    tomorrow = timezone.now() + timedelta(days=2)
    not_yet = VisitFactory(company=a.company, starts_at=tomorrow, ends_at=tomorrow + timedelta(hours=1))
    cancelled = VisitFactory(company=a.company, status=VisitStatus.CANCELLED)
    client = api(a.owner)

    for action in ("check-in", "mark-left"):
        answer = post(client, f"/api/v1/visits/{theirs.pk}/{action}")
        assert (answer.status_code, code_of(answer)) == (404, "not_found")
        answer = post(api(a.viewer), f"/api/v1/visits/{mine.pk}/{action}")
        assert (answer.status_code, code_of(answer)) == (403, "permission_denied")
        answer = post(client, f"/api/v1/visits/{cancelled.pk}/{action}")
        assert (answer.status_code, code_of(answer)) == (409, "visit_cancelled")
        answer = post(client, f"/api/v1/visits/{not_yet.pk}/{action}")
        expected = "visit_not_started" if action == "check-in" else "visit_not_arrived"
        assert (answer.status_code, code_of(answer)) == (409, expected)
    _key, text = api_keys.api_key_create(
        company=a.company, actor=a.owner, name="HR", scopes=["subjects:read", "subjects:write"]
    )
    keyed = api_client_for(None)
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    assert code_of(post(keyed, f"/api/v1/visits/{mine.pk}/check-in")) == "api_key_scope_missing"

    assert not Visit.objects.filter(arrived_at__isnull=False).exists()  # tenant: neither company
    assert not Visit.objects.filter(left_at__isnull=False).exists()  # tenant: neither company
    assert mail.outbox == []


def test_the_schema_documents_check_in_and_mark_left_with_their_error_codes(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    check_in = schema["paths"]["/api/v1/visits/{id}/check-in"]["post"]
    mark_left = schema["paths"]["/api/v1/visits/{id}/mark-left"]["post"]
    for operation, codes in (
        (check_in, ["visit_cancelled", "visit_not_started", "visit_ended"]),
        (mark_left, ["visit_cancelled", "visit_not_arrived"]),
    ):
        assert "requestBody" not in operation
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Visit")
        assert all(f"`{code}`" in operation["responses"]["409"]["description"] for code in codes)
        assert "`permission_denied`" in operation["responses"]["403"]["description"]
        assert "`not_found`" in operation["responses"]["404"]["description"]
    arrived_via = schema["components"]["schemas"]["Visit"]["properties"]["arrived_via"]
    enums = [schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]["enum"] for ref in arrived_via["oneOf"]]
    assert sorted(value for enum in enums for value in enum) == ["", "door", "reception"]
