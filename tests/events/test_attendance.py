"""Attendance: first in, last out, passes, late and left early per subject and day of the
company's time zone; the selector, the API and the admin report with its export."""

from __future__ import annotations

import csv
import datetime
import io

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from events.attendance import attendance_days
from events.models import EventKind
from kangaroo.errors import KangarooError
from tests.factories import DepartmentFactory, EventFactory, ScreenFactory, SubjectFactory

pytestmark = pytest.mark.django_db

REPORT = "/admin/events/attendanceday/"
EXPORT = "/admin/events/attendanceday/export/"


def at(company, local: str) -> datetime.datetime:
    """An aware instant from the company's wall-clock time ("2026-03-02 08:40")."""
    return datetime.datetime.fromisoformat(local).replace(tzinfo=company.zone)


def passing(company, subject, local: str, direction: str = "in", **extra):
    screen = ScreenFactory(company=company, direction=direction) if direction else None
    return EventFactory(
        company=company, subject=subject, screen=screen, direction=direction, happened_at=at(company, local), **extra
    )


def days(company, date_from: str, date_to: str | None = None, **filters):
    return list(
        attendance_days(
            company=company,
            date_from=datetime.date.fromisoformat(date_from),
            date_to=datetime.date.fromisoformat(date_to or date_from),
            **filters,
        )
    )


def local_times(row) -> tuple[str | None, str | None]:
    return (
        row.first_in and row.first_in.strftime("%Y-%m-%d %H:%M"),
        row.last_out and row.last_out.strftime("%Y-%m-%d %H:%M"),
    )


def set_zone(company, time_zone: str, start="09:00", end="18:00"):
    company.time_zone = time_zone
    company.work_start = datetime.time.fromisoformat(start)
    company.work_end = datetime.time.fromisoformat(end)
    company.save()
    return company


# --- first in, last out, passes ------------------------------------------------------------


def test_first_in_last_out_and_passes_over_a_day_at_several_doors(tenant_a):
    company = tenant_a.company
    mei = SubjectFactory(company=company, name="陳美玲")
    passing(company, mei, "2026-03-02 07:30", "out")  # an out before any in is not the first in
    passing(company, mei, "2026-03-02 08:40", "")  # a screen without a direction: in and out
    passing(company, mei, "2026-03-02 09:10", "in")
    passing(company, mei, "2026-03-02 12:00", "both")
    passing(company, mei, "2026-03-02 18:10", "out")
    passing(company, mei, "2026-03-02 22:00", "in")  # an in after the last out is not the last out
    # Not passes of hers: a stranger, and kinds other than "recognized".
    EventFactory(company=company, subject=None, kind=EventKind.STRANGER, happened_at=at(company, "2026-03-02 10:00"))
    passing(company, mei, "2026-03-02 10:30", "in", kind=EventKind.VISITOR_OUTSIDE_WINDOW)
    # A recognition of a subject deleted since (the event keeps only the names) is nobody's day.
    EventFactory(company=company, subject=None, subject_name="Gone", happened_at=at(company, "2026-03-02 11:00"))

    [row] = days(company, "2026-03-02")
    assert (row.subject_id, row.name, row.job_number) == (mei.pk, "陳美玲", mei.job_number)
    assert (row.subject_type, row.department) == ("employee", "")
    assert local_times(row) == ("2026-03-02 08:40", "2026-03-02 18:10")
    assert row.passes == 6
    assert row.first_in.utcoffset() == datetime.timedelta(hours=8)  # shown in the company's zone


def test_both_way_doors_give_first_in_and_last_out(tenant_a):
    company = tenant_a.company
    subject = SubjectFactory(company=company)
    passing(company, subject, "2026-03-02 08:50", "both")
    passing(company, subject, "2026-03-02 18:05", "both")
    [row] = days(company, "2026-03-02")
    assert local_times(row) == ("2026-03-02 08:50", "2026-03-02 18:05")
    assert (row.passes, row.late, row.left_early) == (2, False, False)


def test_a_day_without_a_pass_out_has_no_last_out_and_no_early_leave(tenant_a):
    company = tenant_a.company
    subject = SubjectFactory(company=company)
    passing(company, subject, "2026-03-02 09:30", "in")
    passing(company, subject, "2026-03-02 10:30", "in")
    [row] = days(company, "2026-03-02")
    assert local_times(row) == ("2026-03-02 09:30", None)
    assert (row.late, row.left_early, row.passes) == (True, None, 2)


def test_rows_are_per_subject_and_day_ordered_by_day_then_name(tenant_a):
    company = tenant_a.company
    bo, amy = SubjectFactory(company=company, name="Bo"), SubjectFactory(company=company, name="Amy")
    for subject in (bo, amy):
        passing(company, subject, "2026-03-02 09:00")
        passing(company, subject, "2026-03-03 09:00")
    rows = days(company, "2026-03-02", "2026-03-03")
    assert [(str(r.date), r.name) for r in rows] == [
        ("2026-03-02", "Amy"), ("2026-03-02", "Bo"), ("2026-03-03", "Amy"), ("2026-03-03", "Bo")
    ]  # fmt: skip


# --- late and left early -------------------------------------------------------------------


def test_late_and_left_early_follow_the_companys_working_hours(tenant_a):
    company = set_zone(tenant_a.company, "Asia/Taipei", "09:00", "18:00")
    punctual, late = SubjectFactory(company=company, name="A punctual"), SubjectFactory(company=company, name="B late")
    passing(company, punctual, "2026-03-02 09:00", "in")  # on the minute is on time
    passing(company, punctual, "2026-03-02 18:00", "out")
    passing(company, late, "2026-03-02 09:01", "in")
    passing(company, late, "2026-03-02 17:59", "out")
    rows = days(company, "2026-03-02")
    assert [(r.name, r.late, r.left_early) for r in rows] == [("A punctual", False, False), ("B late", True, True)]

    set_zone(company, "Asia/Taipei", "09:30", "17:30")  # a company setting: the same passes read anew
    rows = days(company, "2026-03-02")
    assert [(r.name, r.late, r.left_early) for r in rows] == [("A punctual", False, False), ("B late", False, False)]


# --- days of the company's time zone -------------------------------------------------------


def test_days_are_cut_at_the_companys_midnight_not_utcs(tenants):
    a, b = tenants
    taipei = set_zone(a.company, "Asia/Taipei")
    utc = set_zone(b.company, "UTC")
    instants = [at(taipei, "2026-03-02 23:30"), at(taipei, "2026-03-03 00:30")]  # 15:30Z and 16:30Z on 3/2
    for company in (taipei, utc):
        subject = SubjectFactory(company=company)
        for instant in instants:
            EventFactory(company=company, subject=subject, direction="both", happened_at=instant)

    rows = days(taipei, "2026-03-01", "2026-03-04")
    assert [(str(r.date), r.passes) for r in rows] == [("2026-03-02", 1), ("2026-03-03", 1)]
    assert [r.first_in.strftime("%H:%M") for r in rows] == ["23:30", "00:30"]
    [only] = days(taipei, "2026-03-03")  # the range starts at Taipei's midnight too
    assert only.first_in == instants[1]

    rows = days(utc, "2026-03-01", "2026-03-04")
    assert [(str(r.date), r.passes) for r in rows] == [("2026-03-02", 2)]
    assert [r.first_in.strftime("%H:%M") for r in rows] == ["15:30"]


def test_days_and_lateness_across_spring_forward_in_new_york(tenant_a):
    company = set_zone(tenant_a.company, "America/New_York", "09:00", "17:00")  # DST starts 2026-03-08
    early, night = SubjectFactory(company=company, name="Early"), SubjectFactory(company=company, name="Night")
    # The same UTC time of day, 13:30Z: 08:30 EST before the change, 09:30 EDT after it.
    passing(company, early, "2026-03-07 08:30", "in")
    passing(company, early, "2026-03-09 09:30", "in")
    assert at(company, "2026-03-07 08:30").astimezone(datetime.UTC).time() == datetime.time(13, 30)
    assert at(company, "2026-03-09 09:30").astimezone(datetime.UTC).time() == datetime.time(13, 30)
    # The 23-hour day: 00:30 EST (05:30Z) and 23:30 EDT (03:30Z next day) are both 3/8;
    # 00:30 EDT on 3/9 (04:30Z) is 3/9, though a fixed EST offset would put it on 3/8.
    passing(company, night, "2026-03-08 00:30", "both")
    passing(company, night, "2026-03-08 23:30", "both")
    passing(company, night, "2026-03-09 00:30", "both")

    rows = {(r.name, str(r.date)): r for r in days(company, "2026-03-07", "2026-03-09")}
    assert sorted(rows) == [("Early", "2026-03-07"), ("Early", "2026-03-09"),
                            ("Night", "2026-03-08"), ("Night", "2026-03-09")]  # fmt: skip
    assert (rows["Early", "2026-03-07"].late, rows["Early", "2026-03-09"].late) == (False, True)
    assert rows["Early", "2026-03-09"].first_in.strftime("%H:%M %Z") == "09:30 EDT"
    assert rows["Night", "2026-03-08"].passes == 2
    assert local_times(rows["Night", "2026-03-08"]) == ("2026-03-08 00:30", "2026-03-08 23:30")
    assert [str(r.date) for r in days(company, "2026-03-08")] == ["2026-03-08"]


def test_days_and_lateness_across_fall_back_in_new_york(tenant_a):
    company = set_zone(tenant_a.company, "America/New_York", "08:30", "17:00")  # DST ends 2026-11-01
    early, night = SubjectFactory(company=company, name="Early"), SubjectFactory(company=company, name="Night")
    passing(company, early, "2026-10-31 08:45", "in")  # 12:45Z, EDT: late
    passing(company, early, "2026-11-02 08:15", "in")  # 13:15Z, EST: on time (09:15 if read as EDT)
    passing(company, night, "2026-10-31 23:30", "both")  # 03:30Z on 11/1, still 10/31 here
    passing(company, night, "2026-11-01 23:30", "both")  # 04:30Z on 11/2, still 11/1 here (the 25-hour day)

    rows = {(r.name, str(r.date)): r for r in days(company, "2026-10-31", "2026-11-02")}
    assert sorted(rows) == [("Early", "2026-10-31"), ("Early", "2026-11-02"),
                            ("Night", "2026-10-31"), ("Night", "2026-11-01")]  # fmt: skip
    assert (rows["Early", "2026-10-31"].late, rows["Early", "2026-11-02"].late) == (True, False)
    assert rows["Early", "2026-11-02"].first_in.strftime("%H:%M %Z") == "08:15 EST"
    assert local_times(rows["Night", "2026-11-01"]) == ("2026-11-01 23:30", "2026-11-01 23:30")


# --- filters and the range -----------------------------------------------------------------


@pytest.fixture
def staff(tenant_a):
    """Four subjects of company A, each with one pass on 2026-03-02."""
    company = tenant_a.company
    sales, lab = DepartmentFactory(company=company, name="Sales"), DepartmentFactory(company=company, name="Lab")
    people = {
        "ann": SubjectFactory(company=company, name="Ann Lee", job_number="S-001", department=sales),
        "bob": SubjectFactory(company=company, name="Bob Wu", job_number="S-002", department=sales),
        "cyd": SubjectFactory(company=company, name="Cyd Lin", job_number="L-001", department=lab),
        "vic": SubjectFactory(company=company, name="Vic Visitor", job_number="V-001", subject_type="visitor"),
    }
    for subject in people.values():
        passing(company, subject, "2026-03-02 08:50")
    return {"sales": sales, "lab": lab, **people}


def names(rows) -> list[str]:
    return [row.name for row in rows]


def test_filters_by_department_type_job_number_and_search(tenant_a, staff):
    company = tenant_a.company
    assert names(days(company, "2026-03-02")) == ["Ann Lee", "Bob Wu", "Cyd Lin", "Vic Visitor"]
    assert names(days(company, "2026-03-02", department=staff["sales"].pk)) == ["Ann Lee", "Bob Wu"]
    assert names(days(company, "2026-03-02", subject_type="visitor")) == ["Vic Visitor"]
    assert names(days(company, "2026-03-02", job_number="L-001")) == ["Cyd Lin"]
    assert names(days(company, "2026-03-02", job_number="L-00")) == []  # exact, not contains
    assert names(days(company, "2026-03-02", q="wu")) == ["Bob Wu"]
    assert names(days(company, "2026-03-02", q="s-00")) == ["Ann Lee", "Bob Wu"]
    [cyd] = days(company, "2026-03-02", q="Cyd")
    assert cyd.department == "Lab" and days(company, "2026-03-02", q="Vic")[0].department == ""


def test_the_date_range_is_checked(tenant_a):
    company = tenant_a.company
    with pytest.raises(KangarooError) as before:
        days(company, "2026-03-02", "2026-03-01")
    assert before.value.code == "validation_error" and list(before.value.fields) == ["to"]
    with pytest.raises(KangarooError) as too_long:
        days(company, "2024-01-01", "2025-01-01")  # 367 days
    assert too_long.value.code == "attendance_range_too_long" and "to" in too_long.value.fields
    assert days(company, "2024-01-01", "2024-12-31") == []  # 366 days (a leap year) is allowed


def api_rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_the_api_lists_attendance_with_filters(tenants, api, staff):
    a, _ = tenants
    client = api(a.viewer)  # viewers may read
    body = client.get("/api/v1/attendance", {"from": "2026-03-02", "to": "2026-03-02"}).json()
    assert body["count"] == 4
    ann = body["results"][0]
    assert ann == {
        "subject_id": staff["ann"].pk, "name": "Ann Lee", "job_number": "S-001", "subject_type": "employee",
        "department": "Sales", "date": "2026-03-02", "first_in": "2026-03-02T08:50:00+08:00",
        "last_out": None, "passes": 1, "late": False, "left_early": None,
    }  # fmt: skip
    query = {"from": "2026-03-02", "to": "2026-03-02"}
    assert [r["name"] for r in api_rows(client.get("/api/v1/attendance", query | {"department": staff["lab"].pk}))] == [
        "Cyd Lin"
    ]
    assert [r["name"] for r in api_rows(client.get("/api/v1/attendance", query | {"subject_type": "visitor"}))] == [
        "Vic Visitor"
    ]
    assert [r["name"] for r in api_rows(client.get("/api/v1/attendance", query | {"job_number": "S-002"}))] == [
        "Bob Wu"
    ]
    assert [r["name"] for r in api_rows(client.get("/api/v1/attendance", query | {"q": "lin"}))] == ["Cyd Lin"]
    # Blank parameters are no filter, as in ?department=&subject_type=
    blanks = query | {"department": "", "subject_type": "", "job_number": "", "q": ""}
    assert len(api_rows(client.get("/api/v1/attendance", blanks))) == 4
    page = client.get("/api/v1/attendance", query | {"page_size": 3, "page": 2}).json()
    assert page["count"] == 4 and [r["name"] for r in page["results"]] == ["Vic Visitor"]


def test_the_api_defaults_to_today_in_the_companys_zone(tenants, api):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    EventFactory(company=a.company, subject=subject, happened_at=timezone.now(), direction="in")
    EventFactory(company=a.company, subject=subject, happened_at=timezone.now() - datetime.timedelta(days=2))
    [row] = api_rows(api(a.viewer).get("/api/v1/attendance"))
    assert row["date"] == timezone.localdate(timezone=a.company.zone).isoformat()
    assert row["passes"] == 1


def test_the_api_answers_range_errors_with_their_codes(tenants, api):
    a, _ = tenants
    client = api(a.viewer)
    before = client.get("/api/v1/attendance", {"from": "2026-03-02", "to": "2026-03-01"})
    assert before.status_code == 400
    assert before.json()["error"]["code"] == "validation_error" and "to" in before.json()["error"]["fields"]
    too_long = client.get("/api/v1/attendance", {"from": "2025-01-01", "to": "2026-03-01"})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "attendance_range_too_long"
    bad = client.get("/api/v1/attendance", {"from": "yesterday"})
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["from"]
    bad_type = client.get("/api/v1/attendance", {"subject_type": "robot"}).json()["error"]
    assert list(bad_type["fields"]) == ["subject_type"]


# --- isolation -------------------------------------------------------------------------------


@pytest.fixture
def two_companies(tenants):
    a, b = tenants
    ours = SubjectFactory(company=a.company, name="Ours Alice", job_number="X-1")
    theirs = SubjectFactory(company=b.company, name="Theirs Bill", job_number="X-1")
    for tenant, subject in ((a, ours), (b, theirs)):
        passing(tenant.company, subject, "2026-03-02 08:50", "in")
        passing(tenant.company, subject, "2026-03-02 18:30", "out")
    return ours, theirs


def test_the_api_shows_each_company_only_its_own_rows(tenants, api, two_companies):
    a, b = tenants
    query = {"from": "2026-03-02", "to": "2026-03-02"}
    assert [r["name"] for r in api_rows(api(a.viewer).get("/api/v1/attendance", query))] == ["Ours Alice"]
    assert [r["name"] for r in api_rows(api(b.viewer).get("/api/v1/attendance", query))] == ["Theirs Bill"]
    # Another company's department or job number finds nothing of theirs.
    their_department = DepartmentFactory(company=b.company)
    assert api_rows(api(a.owner).get("/api/v1/attendance", query | {"department": their_department.pk})) == []
    assert [r["name"] for r in api_rows(api(a.owner).get("/api/v1/attendance", query | {"q": "Bill"}))] == []


def test_the_api_needs_a_company_user(platform_admin, client):
    assert client.get("/api/v1/attendance").status_code == 401
    client.force_login(platform_admin)
    response = client.get("/api/v1/attendance")
    assert response.status_code == 403 and response.json()["error"]["code"] == "no_company"


def test_the_api_reads_a_constant_number_of_queries(tenants, api):
    a, _ = tenants
    client = api(a.viewer)
    counts = []
    for more, total in ((5, 5), (45, 50)):
        for _ in range(more):
            subject = SubjectFactory(company=a.company, department=DepartmentFactory(company=a.company))
            passing(a.company, subject, "2026-03-02 08:50", "in")
            passing(a.company, subject, "2026-03-02 18:30", "out")
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/v1/attendance", {"from": "2026-03-02", "to": "2026-03-02", "page_size": 100})
        assert body.json()["count"] == total
        counts.append(len(queries))
    # The requester (JWT), the count of rows, the page of rows: no query per row.
    assert counts[0] == counts[1] <= 4, counts


def test_the_admin_report_of_a_viewer_shows_only_their_companys_rows(tenants, client, two_companies):
    a, b = tenants
    client.force_login(a.viewer)
    index = client.get("/admin/").content.decode()
    assert REPORT in index  # reachable from the admin index
    page = client.get(REPORT, {"from": "2026-03-02", "to": "2026-03-02"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ours Alice" in html and "Theirs Bill" not in html
    assert "08:50:00" in html and "18:30:00" in html  # times of the company's zone, not UTC's
    client.force_login(b.viewer)
    html = client.get(REPORT, {"from": "2026-03-02", "to": "2026-03-02"}).content.decode()
    assert "Theirs Bill" in html and "Ours Alice" not in html


def test_the_admin_report_rejects_another_companys_department_and_a_bad_range(tenants, client, two_companies):
    a, b = tenants
    client.force_login(a.viewer)
    their_department = DepartmentFactory(company=b.company)
    page = client.get(REPORT, {"from": "2026-03-02", "department": their_department.pk})
    assert page.status_code == 200 and page.context["form"].errors.keys() == {"department"}
    assert page.context["page"] is None
    page = client.get(REPORT, {"from": "2026-03-02", "to": "2026-03-01"})
    assert page.context["form"].errors.keys() == {"to"}
    page = client.get(REPORT, {"from": "2020-01-01", "to": "2026-03-01"})
    assert page.context["form"].errors.keys() == {"to"}
    # An export with bad filters goes back to the report, which says what is wrong.
    export = client.get(EXPORT, {"format": "csv", "from": "2026-03-02", "to": "2026-03-01"})
    assert export.status_code == 302 and "format" not in export["Location"]


def test_the_admin_report_has_no_object_urls():
    for name in ("add", "change", "delete", "history"):
        with pytest.raises(NoReverseMatch):
            reverse(f"admin:events_attendanceday_{name}", args=[1] if name != "add" else [])
    assert reverse("admin:events_attendanceday_changelist") == REPORT


def test_platform_staff_pick_a_company(tenants, client, platform_admin, two_companies):
    a, _ = tenants
    client.force_login(platform_admin)
    page = client.get(REPORT)
    assert page.status_code == 200 and page.context["page"] is None
    assert "choose a company" in page.content.decode()
    html = client.get(REPORT, {"company": a.company.pk, "from": "2026-03-02"}).content.decode()
    assert "Ours Alice" in html and "Theirs Bill" not in html


def read_csv(response) -> list[dict]:
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def read_xlsx(response) -> list[dict]:
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = [[cell.value for cell in row] for row in sheet.rows]
    # Empty cells at the end of a row are not written: pad them back as None.
    return [dict(zip(rows[0], row + [None] * (len(rows[0]) - len(row)), strict=True)) for row in rows[1:]]


@pytest.mark.parametrize(("export_format", "read"), [("csv", read_csv), ("xlsx", read_xlsx)])
def test_export_gives_exactly_the_filtered_rows_escaped(tenants, client, staff, export_format, read):
    a, b = tenants
    company = a.company
    formula = SubjectFactory(company=company, name="=HYPERLINK(\"http://x\")", job_number="+S-9",
                             department=staff["sales"])  # fmt: skip
    passing(company, formula, "2026-03-02 09:15", "in")
    passing(company, formula, "2026-03-02 17:45", "out")
    passing(company, staff["ann"], "2026-03-03 08:00")  # another day: outside the filter
    passing(b.company, SubjectFactory(company=b.company, name="Sales Theirs"), "2026-03-02 09:00")
    client.force_login(a.viewer)
    query = {"format": export_format, "from": "2026-03-02", "to": "2026-03-02", "department": staff["sales"].pk}
    response = client.get(EXPORT, query)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="attendance-2026-03-02-2026-03-02.{export_format}"'
    rows = read(response)
    assert [row["name"] for row in rows] == ['\'=HYPERLINK("http://x")', "Ann Lee", "Bob Wu"]
    first = rows[0]
    assert first["job number"] == "'+S-9" and first["department"] == "Sales" and first["date"] == "2026-03-02"
    assert (first["first in"], first["last out"], first["passes"]) == ("09:15:00", "17:45:00", "2")
    assert (first["late"], first["left early"], first["type"]) == ("yes", "yes", "Employee")
    assert rows[1]["last out"] in ("", None) and rows[1]["left early"] in ("", None)
    # The search narrows the export the same way.
    rows = read(client.get(EXPORT, query | {"q": "bob"}))
    assert [row["name"] for row in rows] == ["Bob Wu"]


def test_an_unknown_export_format_is_not_found(tenants, client):
    a, _ = tenants
    client.force_login(a.viewer)
    assert client.get(EXPORT, {"format": "pdf"}).status_code == 404
