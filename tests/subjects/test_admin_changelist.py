"""The subject changelist, the HR admin's main screen: search, filters, thumbnails, a fixed
number of queries whatever the page holds, and what a viewer may do there."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subjects.models import PhotoStatus, SubjectType
from tests.factories import DepartmentFactory, PhotoFactory, SubjectFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/subjects/subject/"
IMPORT = "/admin/subjects/subject/import/"
PROCESS_IMPORT = "/admin/subjects/subject/process_import/"
EXPORT = "/admin/subjects/subject/export/"


def listed(client, **params) -> set[str]:
    """Job numbers of the rows the changelist shows for these query parameters."""
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {subject.job_number for subject in response.context["cl"].result_list}


@pytest.fixture
def owner_client(client, tenants):
    client.force_login(tenants[0].owner)
    return client


# --- search -------------------------------------------------------------------------------------


def test_search_finds_subjects_by_each_searchable_field(owner_client, tenants):
    a, b = tenants
    SubjectFactory(company=a.company, name="王小明", job_number="E100", email="ming@a.example", phone="0911111111")
    SubjectFactory(company=a.company, name="Alice Chen", job_number="E200", email="alice@a.example", phone="0922222222")
    # Company B holds a twin of every value: none of it may ever be listed for A.
    SubjectFactory(company=b.company, name="王小明", job_number="E100", email="ming@b.example", phone="0911111111")

    assert listed(owner_client, q="小明") == {"E100"}
    assert listed(owner_client, q="E20") == {"E200"}
    assert listed(owner_client, q="ALICE@A.EXAMPLE") == {"E200"}
    assert listed(owner_client, q="0911") == {"E100"}
    assert listed(owner_client, q="nobody-has-this") == set()
    all_rows = owner_client.get(CHANGELIST, {"q": "0911"}).context["cl"].result_list
    assert {s.company_id for s in all_rows} == {a.company.pk}


# --- filters ------------------------------------------------------------------------------------


def test_type_filter_lists_only_that_type(owner_client, tenants):
    a, b = tenants
    SubjectFactory(company=a.company, job_number="E1")
    SubjectFactory(company=a.company, job_number="V1", subject_type=SubjectType.VISITOR)
    SubjectFactory(company=a.company, job_number="VIP1", subject_type=SubjectType.VIP)
    SubjectFactory(company=b.company, job_number="V2", subject_type=SubjectType.VISITOR)

    assert listed(owner_client, subject_type__exact="visitor") == {"V1"}
    assert listed(owner_client, subject_type__exact="vip") == {"VIP1"}
    assert listed(owner_client, subject_type__exact="employee") == {"E1"}


def test_department_filter_lists_that_department_and_offers_only_our_departments(owner_client, tenants):
    a, b = tenants
    sales = DepartmentFactory(company=a.company, name="Sales")
    DepartmentFactory(company=a.company, name="Research")
    DepartmentFactory(company=b.company, name="Secret Skunkworks of B")
    SubjectFactory(company=a.company, job_number="E1", department=sales)
    SubjectFactory(company=a.company, job_number="E2")

    response = owner_client.get(CHANGELIST)
    page = response.content.decode()
    assert "Sales" in page and "Research" in page
    assert "Secret Skunkworks of B" not in page

    assert listed(owner_client, department__id__exact=sales.pk) == {"E1"}


def test_department_filter_given_another_companys_department_shows_none_of_theirs(owner_client, tenants):
    a, b = tenants
    ours = DepartmentFactory(company=a.company, name="Ours")
    theirs = DepartmentFactory(company=b.company, name="Theirs")
    SubjectFactory(company=b.company, job_number="B1", department=theirs)
    SubjectFactory(company=a.company, job_number="A1", department=ours)

    response = owner_client.get(CHANGELIST, {"department__id__exact": theirs.pk})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert "Theirs" not in response.content.decode()


def test_archived_filter(owner_client, tenants):
    a, _ = tenants
    SubjectFactory(company=a.company, job_number="E1", archived=True)
    SubjectFactory(company=a.company, job_number="E2")

    assert listed(owner_client, archived__exact="1") == {"E1"}
    assert listed(owner_client, archived__exact="0") == {"E2"}


def test_photo_status_filter(owner_client, tenants):
    a, b = tenants
    ok = SubjectFactory(company=a.company, job_number="OK")
    pending = SubjectFactory(company=a.company, job_number="PENDING")
    rejected = SubjectFactory(company=a.company, job_number="REJECTED")
    SubjectFactory(company=a.company, job_number="NONE")
    PhotoFactory(company=a.company, subject=ok, status=PhotoStatus.OK)
    PhotoFactory(company=a.company, subject=pending, status=PhotoStatus.PENDING)
    PhotoFactory(company=a.company, subject=rejected, status=PhotoStatus.REJECTED)
    PhotoFactory(company=b.company, status=PhotoStatus.OK)

    assert listed(owner_client, photos="ok") == {"OK"}
    assert listed(owner_client, photos="pending") == {"PENDING"}
    assert listed(owner_client, photos="rejected") == {"REJECTED"}
    assert listed(owner_client, photos="none") == {"NONE"}


def test_visit_window_filter(owner_client, tenants):
    a, _ = tenants
    now = timezone.now()
    day = timedelta(days=1)
    visitor = {"company": a.company, "subject_type": SubjectType.VISITOR}
    SubjectFactory(**visitor, job_number="NOW", visit_start=now - day, visit_end=now + day)
    SubjectFactory(**visitor, job_number="LATER", visit_start=now + day, visit_end=now + 2 * day)
    SubjectFactory(**visitor, job_number="GONE", visit_start=now - 2 * day, visit_end=now - day)
    SubjectFactory(company=a.company, job_number="EMPLOYEE")

    assert listed(owner_client, visit="current") == {"NOW"}
    assert listed(owner_client, visit="upcoming") == {"LATER"}
    assert listed(owner_client, visit="expired") == {"GONE"}


def test_filters_and_search_combine(owner_client, tenants):
    a, _ = tenants
    sales = DepartmentFactory(company=a.company, name="Sales")
    SubjectFactory(company=a.company, job_number="E1", name="Amy", department=sales)
    SubjectFactory(company=a.company, job_number="E2", name="Amy", department=sales, archived=True)
    SubjectFactory(company=a.company, job_number="E3", name="Bob", department=sales)
    SubjectFactory(company=a.company, job_number="E4", name="Amy")

    assert listed(owner_client, q="Amy", department__id__exact=sales.pk, archived__exact="0") == {"E1"}


# --- thumbnails and query count -----------------------------------------------------------------


def test_thumbnail_column_shows_the_first_photo_through_the_api(owner_client, tenants):
    a, _ = tenants
    subject = SubjectFactory(company=a.company, job_number="E1")
    first = PhotoFactory(company=a.company, subject=subject)
    PhotoFactory(company=a.company, subject=subject)
    SubjectFactory(company=a.company, job_number="E2")  # no photo: a dash, no image

    page = owner_client.get(CHANGELIST).content.decode()

    assert f'<img src="/api/v1/photos/{first.pk}/thumbnail"' in page
    assert page.count('<img src="/api/v1/photos/') == 1
    # Never a link to the stored file itself: thumbnails are served behind the tenant check.
    assert "/media/" not in page


def _changelist_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries], len(response.context["cl"].result_list)


def _populate(company, count):
    departments = [DepartmentFactory(company=company) for _ in range(3)]
    for i in range(count):
        subject = SubjectFactory(company=company, department=departments[i % 3])
        PhotoFactory(company=company, subject=subject)


def test_changelist_query_count_does_not_grow_with_the_page(client, tenants):
    a, b = tenants
    client.force_login(a.owner)
    _populate(a.company, 5)
    _populate(b.company, 5)
    small, shown = _changelist_queries(client)
    assert shown == 5

    _populate(a.company, 45)
    large, shown = _changelist_queries(client)
    assert shown == 50

    # 1 session, 2 user, 3 the user's company (admin header), 4 the department filter's
    # choices (our company's only), 5 filtered count, 6 full count (the "x total" link),
    # 7 the page: subjects with their department joined and the first photo's id as a
    # correlated subquery, so no query per row for the thumbnail or the department.
    assert len(small) == len(large) == 7, "\n".join(large)


# --- viewers ------------------------------------------------------------------------------------


def test_viewer_sees_the_list_and_the_export_button_but_no_import(client, tenants):
    a, _ = tenants
    SubjectFactory(company=a.company, job_number="E1")
    client.force_login(a.viewer)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{EXPORT}' in page
    assert IMPORT not in page
    assert "export_admin_action" in page  # "Export selected" stays in the actions menu
    assert "archive_selected" not in page


def test_viewer_gets_403_on_every_import_step(client, tenants):
    a, _ = tenants
    client.force_login(a.viewer)

    assert client.get(IMPORT).status_code == 403
    assert client.post(IMPORT, {"format": "0", "resource": "0"}).status_code == 403
    confirm = {"import_file_name": "x", "original_file_name": "x.csv", "format": "0", "resource": "0"}
    assert client.post(PROCESS_IMPORT, confirm).status_code == 403


def test_owner_and_admin_see_the_import_button(client, tenants):
    a, _ = tenants
    for user in (a.owner, a.admin):
        client.force_login(user)
        page = client.get(CHANGELIST).content.decode()
        assert f"href='{IMPORT}'" in page
        assert client.get(IMPORT).status_code == 200


def test_platform_staff_can_export_but_never_import_into_no_company(client, platform_admin):
    client.force_login(platform_admin)
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(IMPORT).status_code == 403
