"""Attendance figures that cover days whose events the retention purge deleted use the
anonymous counts kept of them, everywhere: the API, the report's export, and the monthly
timesheet (page and export), where such a day is marked purged with its total of
person-days, never an absence. A company with a short events window and a timesheet month
spanning the cut; the other company, with the default window, sees every day per person."""

from __future__ import annotations

import csv
import datetime
import io
import re

import pytest
from django.utils import timezone

from accounts.models import Company
from devices.models import Direction
from events.attendance import monthly_timesheet, purged_days
from privacy.purge import purge_company
from tests.factories import DepartmentFactory, EventFactory, SubjectFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def month_spanning_the_cut(company: Company) -> tuple[datetime.date, datetime.date]:
    """Sets the company's events window so that its first kept day is the 15th of the month
    before last; returns (that month's first day, the first kept day)."""
    today = timezone.now().astimezone(company.zone).date()
    month = (today.replace(day=1) - DAY).replace(day=1)
    month = (month - DAY).replace(day=1)
    first_kept = month.replace(day=15)
    company.retention_event_days = (today - first_kept).days
    company.save()
    # The company has existed for a year: the days before the cut are its own.
    Company.objects.filter(pk=company.pk).update(created_at=timezone.now() - 365 * DAY)
    company.refresh_from_db()
    return month, first_kept


def passes(company, subject, day, *, hours=((9, Direction.IN), (18, Direction.OUT))):
    for hour, direction in hours:
        at = datetime.datetime.combine(day, datetime.time(hour, 0), company.zone)
        EventFactory(company=company, subject=subject, happened_at=at, direction=direction)


@pytest.fixture
def cut(tenants):
    """Company A: two employees; passes on two days before the cut (both, then Lin only),
    none the day before the cut, both on the first kept day, Wang the day after. Then the
    purge. Company B: the same passes, its default window (nothing purged)."""
    a, b = tenants
    month, first_kept = month_spanning_the_cut(a.company)
    seeded = {}
    for tenant in tenants:
        company = tenant.company
        lab = DepartmentFactory(company=company, name="Lab")
        lin = SubjectFactory(company=company, name="Lin", job_number="E-1", department=lab)
        wang = SubjectFactory(company=company, name="Wang", job_number="E-2")
        passes(company, lin, first_kept - 3 * DAY)
        passes(company, wang, first_kept - 3 * DAY)
        passes(company, lin, first_kept - 2 * DAY)
        passes(company, lin, first_kept)
        passes(company, wang, first_kept)
        passes(company, wang, first_kept + DAY)
        seeded[company.pk] = {"lin": lin, "wang": wang, "lab": lab}
    for tenant in tenants:
        purge_company(company=tenant.company)
        tenant.company.refresh_from_db()  # the purge records the day it cut at
    assert a.company.events_purged_before == first_kept
    return a, b, month, first_kept, seeded


def test_the_purged_days_are_those_before_the_cut_and_only_in_the_short_window_company(cut):
    a, b, month, first_kept, _ = cut
    last = first_kept + 5 * DAY
    assert purged_days(company=a.company, date_from=month, date_to=last) == [
        month + n * DAY for n in range((first_kept - month).days)
    ]
    assert purged_days(company=b.company, date_from=month, date_to=last) == []
    # A longer window later does not bring the deleted days back; a shorter one waits for the
    # purge: until it runs, those days' events still answer per person.
    a.company.retention_event_days = 3650
    a.company.save()
    assert purged_days(company=a.company, date_from=month, date_to=last)[-1] == first_kept - DAY
    b.company.retention_event_days = 1
    b.company.save()
    assert purged_days(company=b.company, date_from=month, date_to=last) == []


def test_the_attendance_api_lists_purged_days_with_their_totals_not_as_absences(api, cut):
    a, b, month, first_kept, _ = cut
    query = {"from": month.isoformat(), "to": (first_kept + DAY).isoformat()}
    body = api(a.viewer).get("/api/v1/attendance", query).json()
    # Rows per person for the kept days only.
    assert [(row["date"], row["name"]) for row in body["results"]] == [
        (first_kept.isoformat(), "Lin"),
        (first_kept.isoformat(), "Wang"),
        ((first_kept + DAY).isoformat(), "Wang"),
    ]
    purged = {row["date"]: (row["people"], row["passes"]) for row in body["purged_days"]}
    assert list(purged) == [(month + n * DAY).isoformat() for n in range((first_kept - month).days)]
    assert purged[(first_kept - 3 * DAY).isoformat()] == (2, 4)
    assert purged[(first_kept - 2 * DAY).isoformat()] == (1, 2)
    assert purged[(first_kept - DAY).isoformat()] == (0, 0)  # nobody came: still past the window
    # Of one type: the employees' totals; narrowed to a department or a person, no totals.
    visitors = api(a.viewer).get("/api/v1/attendance", query | {"subject_type": "visitor"}).json()
    assert visitors["results"] == [] and {row["people"] for row in visitors["purged_days"]} == {0}
    narrowed = api(a.viewer).get("/api/v1/attendance", query | {"job_number": "E-1"}).json()
    assert len(narrowed["purged_days"]) == len(purged)
    assert {(row["people"], row["passes"]) for row in narrowed["purged_days"]} == {(None, None)}
    # Every page carries them.
    second = api(a.viewer).get("/api/v1/attendance", query | {"page_size": 2, "page": 2}).json()
    assert second["purged_days"] == body["purged_days"]
    # Company B kept every event: rows per person on every day, nothing purged.
    theirs = api(b.viewer).get("/api/v1/attendance", query).json()
    assert theirs["purged_days"] == [] and len(theirs["results"]) == 6


def test_the_attendance_export_adds_the_marked_totals_of_purged_days(admin_client_for, cut):
    a, _, _, first_kept, _ = cut
    query = f"from={first_kept - 3 * DAY}&to={first_kept}&format=csv"
    response = admin_client_for(a.viewer).get(f"/admin/events/attendanceday/export/?{query}", HTTP_ACCEPT_LANGUAGE="en")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    names = [(row[0], row[1], row[7]) for row in rows[1:]]
    assert (first_kept.isoformat(), "Lin", "2") in names and (first_kept.isoformat(), "Wang", "2") in names
    assert ((first_kept - 3 * DAY).isoformat(), "purged (anonymous total): 2 person(s) recognised", "4") in names
    assert ((first_kept - 2 * DAY).isoformat(), "purged (anonymous total): 1 person(s) recognised", "2") in names
    # Nobody came the day before the cut: it is listed all the same, not left out as if kept.
    assert ((first_kept - DAY).isoformat(), "purged (anonymous total): 0 person(s) recognised", "0") in names
    # No row names anyone on a purged day.
    assert not [row for row in rows[1:] if row[0] < first_kept.isoformat() and row[1] in ("Lin", "Wang")]


def test_the_report_page_lists_every_purged_day_of_the_range(admin_client_for, cut):
    a, _, _, first_kept, _ = cut
    html = (
        admin_client_for(a.viewer)
        .get(f"/admin/events/attendanceday/?from={first_kept - 2 * DAY}&to={first_kept}", HTTP_ACCEPT_LANGUAGE="en")
        .content.decode()
    )
    table = re.search(r'id="purged_list".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    assert cells == [
        [(first_kept - 2 * DAY).isoformat(), "Employee", "1", "2"],
        [(first_kept - DAY).isoformat(), "—", "0", "0"],
    ]


def test_the_timesheet_marks_purged_days_and_counts_only_the_kept_ones(admin_client_for, cut):
    a, b, month, first_kept, seeded = cut
    purged_count = (first_kept - month).days
    sheet = {row.name: row for row in monthly_timesheet(company=a.company, month=month)}
    assert (sheet["Lin"].days_present, sheet["Lin"].purged_days) == (1, purged_count)
    assert (sheet["Wang"].days_present, sheet["Wang"].purged_days) == (2, purged_count)
    assert sheet["Lin"].hours == 9.0
    theirs = {row.name: row for row in monthly_timesheet(company=b.company, month=month)}
    assert (theirs["Lin"].days_present, theirs["Lin"].purged_days) == (3, 0)

    client = admin_client_for(a.viewer)
    page = client.get(f"/admin/events/attendanceday/timesheet/?month={month:%Y-%m}", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert f"{purged_count} days of this month are past the event retention window" in html
    assert "(3 person-days of employees in total)" in html
    lin = seeded[a.company.pk]["lin"]
    detail = client.get(
        f"/admin/events/attendanceday/timesheet/?month={month:%Y-%m}&employee={lin.pk}", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert detail.count('class="purged"') == purged_count
    assert "purged: 2 person-days in total" in detail and "purged: 1 person-days in total" in detail

    exported = client.get(
        f"/admin/events/attendanceday/timesheet/export/?month={month:%Y-%m}&format=csv", HTTP_ACCEPT_LANGUAGE="en"
    )
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    lin_rows = [row for row in rows[1:] if row[0] == "Lin"]
    dated = {row[3]: row[4] for row in lin_rows[:-1]}
    assert dated[(first_kept - 3 * DAY).isoformat()] == "purged: 2 person-days in total"
    assert dated[(first_kept - DAY).isoformat()] == "purged: 0 person-days in total"
    assert dated[first_kept.isoformat()] == "09:00:00"
    assert len(dated) == purged_count + 1
    assert lin_rows[-1][3] == f"month total: 1 days present, {purged_count} days purged (not counted)"


def test_the_timesheet_note_is_in_traditional_chinese(admin_client_for, cut):
    a, _, month, _, _ = cut
    html = (
        admin_client_for(a.viewer)
        .get(f"/admin/events/attendanceday/timesheet/?month={month:%Y-%m}", HTTP_ACCEPT_LANGUAGE="zh-hant")
        .content.decode()
    )
    assert "已超過事件保存期限" in html
