"""The admin's retention page: the preview per rule, "purge now" for owners only, the runs."""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone

from accounts.models import Job
from events.models import EventKind
from privacy.purge import purge_company
from subjects.models import SubjectType
from tests.factories import EventFactory, SubjectFactory
from tests.privacy.seed import seed_every_age
from tests.privacy.test_purge import EXPECTED

pytestmark = pytest.mark.django_db

PAGE = "/admin/privacy/retentionpurge/"
PURGE = "/admin/privacy/retentionpurge/purge/"


def shown_counts(html: str) -> dict[str, int]:
    return {rule: int(count) for rule, count in re.findall(r'data-rule="(\w+)">.*?class="count">(\d+)<', html)}


def test_every_member_sees_what_the_next_purge_removes_and_only_owners_may_purge(admin_client_for, tenants):
    tenant_a, tenant_b = tenants
    seed_every_age(tenant_a.company, timezone.now())
    for user in tenant_a.users():
        html = admin_client_for(user).get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert shown_counts(html) == EXPECTED
        assert ('id="purge-now"' in html) == (user == tenant_a.owner)
    for user in (tenant_a.admin, tenant_a.viewer):
        assert admin_client_for(user).post(PURGE).status_code == 403
    assert not Job.objects.for_company(tenant_a.company).exists()
    # Company B sees its own (nothing to remove).
    html = admin_client_for(tenant_b.owner).get(PAGE).content.decode()
    assert set(shown_counts(html).values()) == {0}


def test_an_owner_purges_now_and_sees_the_result(
    admin_client_for, tenants, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_INLINE = True
    tenant_a, tenant_b = tenants
    seed_every_age(tenant_a.company, timezone.now())
    seed_every_age(tenant_b.company, timezone.now())
    client = admin_client_for(tenant_a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PURGE)
    assert response.status_code == 302
    html = client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert set(shown_counts(html).values()) == {0}
    assert "Visitor photos and faces, after the visit: 1" in html
    assert "a-owner" in html
    assert Job.objects.for_company(tenant_a.company).get().state == "done"
    assert shown_counts(admin_client_for(tenant_b.owner).get(PAGE).content.decode()) == EXPECTED


def test_the_page_is_in_traditional_chinese(admin_client_for, tenant_a):
    html = admin_client_for(tenant_a.owner).get(PAGE, HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert "下次清除將刪除的資料" in html
    assert "立即清除" in html


def test_the_attendance_report_shows_the_totals_of_purged_days(admin_client_for, tenant_a):
    company = tenant_a.company
    day = timezone.now().astimezone(company.zone).date() - datetime.timedelta(days=company.retention_event_days + 2)
    at = datetime.datetime.combine(day, datetime.time(9, 0), company.zone)
    for subject in SubjectFactory.create_batch(2, company=company):
        EventFactory.create_batch(2, company=company, subject=subject, happened_at=at)
    EventFactory(company=company, kind=EventKind.STRANGER, subject=None, happened_at=at)
    purge_company(company=company)
    html = (
        admin_client_for(tenant_a.viewer)
        .get(f"/admin/events/attendanceday/?from={day}&to={day}", HTTP_ACCEPT_LANGUAGE="en")
        .content.decode()
    )
    assert "Days past the event retention window" in html
    row = re.search(r'id="purged_list".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells == [day.isoformat(), str(SubjectType.EMPLOYEE.label), "2", "4"]
