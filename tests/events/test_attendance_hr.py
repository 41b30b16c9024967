"""Attendance as HR uses it: today's board, visitors never late, the monthly timesheet and
its export, and the arrivals per hour chart."""

from __future__ import annotations

import csv
import datetime
import io
import re

import pytest
from django.utils import timezone

from events.attendance import attendance_today, company_today, monthly_timesheet
from events.charts import arrivals_by_hour, hour_chart
from tests.events.test_attendance import at, days, passing
from tests.factories import DepartmentFactory, SubjectFactory

pytestmark = pytest.mark.django_db


def local_now(company, hour: int, minute: int = 0) -> str:
    return f"{company_today(company).isoformat()} {hour:02d}:{minute:02d}"


def test_visitors_and_vips_are_never_late_nor_early(tenant_a):
    company = tenant_a.company
    employee = SubjectFactory(company=company, name="A employee")
    visitor = SubjectFactory(company=company, name="B visitor", subject_type="visitor")
    vip = SubjectFactory(company=company, name="C vip", subject_type="vip")
    for subject in (employee, visitor, vip):
        passing(company, subject, "2026-03-02 10:30", "in")
        passing(company, subject, "2026-03-02 15:00", "out")
    rows = days(company, "2026-03-02")
    assert [(r.name, r.late, r.left_early) for r in rows] == [
        ("A employee", True, True),
        ("B visitor", None, None),
        ("C vip", None, None),
    ]
    assert rows[0].hours == 4.5


def test_today_tells_who_is_in_who_left_and_which_employees_have_not_arrived(tenant_a, tenant_b):
    company = tenant_a.company
    sales = DepartmentFactory(company=company, name="Sales")
    inside = SubjectFactory(company=company, name="A inside", department=sales)
    gone = SubjectFactory(company=company, name="B gone")
    back = SubjectFactory(company=company, name="C back again")
    SubjectFactory(company=company, name="D absent", department=sales)
    SubjectFactory(company=company, name="E archived", archived=True)
    SubjectFactory(company=company, name="F visitor expected", subject_type="visitor")
    guest = SubjectFactory(company=company, name="G guest", subject_type="vip")
    SubjectFactory(company=tenant_b.company, name="Z other company")
    passing(company, inside, local_now(company, 0, 5), "in")
    passing(company, gone, local_now(company, 0, 6), "in")
    passing(company, gone, local_now(company, 0, 7), "out")
    passing(company, back, local_now(company, 0, 6), "in")
    passing(company, back, local_now(company, 0, 7), "out")
    passing(company, back, local_now(company, 0, 8), "in")
    passing(company, guest, local_now(company, 0, 9), "in")
    board = attendance_today(company=company)
    assert [p.name for p in board.inside] == ["A inside", "C back again", "G guest"]
    assert [p.name for p in board.left] == ["B gone"]
    assert [p.name for p in board.not_arrived] == ["D absent"]
    assert board.inside[2].late is None  # a VIP is never late
    assert [p.name for p in attendance_today(company=company, department=sales.pk).not_arrived] == ["D absent"]
    assert [p.name for p in attendance_today(company=company, department=sales.pk).inside] == ["A inside"]


def test_the_monthly_timesheet_counts_days_hours_late_and_early_per_employee(tenant_a):
    company = tenant_a.company
    mei = SubjectFactory(company=company, name="A Mei")
    lin = SubjectFactory(company=company, name="B Lin")
    visitor = SubjectFactory(company=company, name="C visitor", subject_type="visitor")
    passing(company, mei, "2026-03-02 08:55", "in")
    passing(company, mei, "2026-03-02 18:05", "out")
    passing(company, mei, "2026-03-03 09:30", "in")  # late
    passing(company, mei, "2026-03-03 17:30", "out")  # and early
    passing(company, mei, "2026-04-01 09:00", "in")  # another month
    passing(company, visitor, "2026-03-02 10:00", "in")
    sheet = monthly_timesheet(company=company, month=datetime.date(2026, 3, 1))
    assert [(r.name, r.days_present, round(r.hours, 2), r.late_count, r.left_early_count) for r in sheet] == [
        ("A Mei", 2, round(9 + 10 / 60 + 8, 2), 1, 1),
        ("B Lin", 0, 0, 0, 0),
    ]
    assert [d.date.isoformat() for d in sheet[0].days] == ["2026-03-02", "2026-03-03"]
    only = monthly_timesheet(company=company, month=datetime.date(2026, 3, 1), subject=lin.pk)
    assert [r.name for r in only] == ["B Lin"]


def test_the_timesheet_page_and_its_csv_export(client, tenant_a, tenant_b):
    company = tenant_a.company
    mei = SubjectFactory(company=company, name="A Mei", job_number="E1")
    SubjectFactory(company=tenant_b.company, name="Z other")
    passing(company, mei, "2026-03-02 08:55", "in")
    passing(company, mei, "2026-03-02 18:05", "out")
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/events/attendanceday/timesheet/?month=2026-03", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    text = page.content.decode()
    assert "A Mei" in text and "Z other" not in text
    detail = client.get(f"/admin/events/attendanceday/timesheet/?month=2026-03&employee={mei.pk}").content.decode()
    assert "2026-03-02" in detail and "08:55" in detail and "18:05" in detail
    exported = client.get("/admin/events/attendanceday/timesheet/export/?month=2026-03&format=csv",
                          HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["name", "job number", "department", "date"]
    assert rows[1][:9] == ["A Mei", "E1", "", "2026-03-02", "08:55:00", "18:05:00", "9.2", "no", "no"]
    assert rows[2][3:] == ["month total: 1 days present", "", "", "9.2", "0", "0"]
    assert client.get("/admin/events/attendanceday/timesheet/?month=March").status_code == 200  # a form error
    this_month = company_today(company).strftime("%Y-%m")
    assert f'value="{this_month}"' in client.get("/admin/events/attendanceday/timesheet/").content.decode()


def test_the_report_says_records_shows_today_and_the_charts(client, tenant_a):
    company = tenant_a.company
    SubjectFactory(company=company, name="D absent")
    mei = SubjectFactory(company=company, name="A Mei")
    passing(company, mei, local_now(company, 0, 5), "in")
    client.force_login(tenant_a.viewer)
    text = client.get("/admin/events/attendanceday/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "1 attendance record (one per person and day)" in text
    assert "days of attendance" not in text
    assert 'class="today-board"' in text and "D absent" in text
    assert text.count('role="img"') == 2
    assert "<title>0:00 – 1 arrival</title>" in text
    assert '<span class="count missing">1</span>' in text  # D absent: the count is marked


def test_with_everyone_in_the_not_arrived_count_is_not_marked(client, tenant_a, tenant_b):
    company = tenant_a.company
    mei = SubjectFactory(company=company, name="A Mei")
    SubjectFactory(company=tenant_b.company, name="B absent")  # another company's: not missing here
    passing(company, mei, local_now(company, 0, 5), "in")
    client.force_login(tenant_a.viewer)
    text = client.get("/admin/events/attendanceday/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Every employee has arrived." in text
    assert re.search(r'Not arrived yet <span class="count">0</span>', text)
    assert "count missing" not in text


def test_arrivals_per_hour_count_each_persons_first_pass_in(tenant_a):
    company = tenant_a.company
    mei, lin = SubjectFactory(company=company), SubjectFactory(company=company)
    passing(company, mei, "2026-03-02 08:10", "in")
    passing(company, mei, "2026-03-02 12:10", "in")  # not a second arrival
    passing(company, lin, "2026-03-02 08:50", "in")
    passing(company, lin, "2026-03-03 23:30", "in")
    counts = arrivals_by_hour(company=company, date_from=datetime.date(2026, 3, 2), date_to=datetime.date(2026, 3, 3))
    assert counts[8] == 2 and counts[12] == 0 and counts[23] == 1 and sum(counts) == 3
    chart = hour_chart(counts, "week")
    assert [bar.hour for bar in chart.bars] == list(range(6, 24))  # widened to show 23:00
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert (tallest.hour, tallest.count) == (8, 2)
    assert at(company, "2026-03-02 08:10") < timezone.now()
