"""The cells of the subjects export, written a column at a time: the same text as one
cell at a time (`escape_formula`, ISO dates, date-times in the company's zone, 1/0), in
every format, whatever mix of NULLs and formula-like cells a column holds."""

from __future__ import annotations

import csv
import datetime
import io
import json
import zoneinfo

import openpyxl
import pytest
from django.utils import timezone

from kangaroo.spreadsheets import SmartCSV, TextColumns, TextXLSX, escape_formula, escape_formula_column
from subjects.resources import SubjectResource
from tests.factories import DepartmentFactory, SubjectFactory

COLUMNS = [
    [],
    ["Amy", "王小明", "", "Ben"],
    ["Amy", None, "陳"],
    [None, None],
    ["Amy", "=1+1", "Ben"],
    ["+886 912", "-5", "@SUM(A1)", "\t=x", "\rx", "a=b", "x+y", "'quoted"],
    [None, "=cmd|' /C calc'!A0"],
]


@pytest.mark.parametrize("values", COLUMNS)
def test_a_column_is_escaped_as_its_cells_would_be(values):
    assert list(escape_formula_column(values)) == [escape_formula(value) for value in values]


def table() -> TextColumns:
    return TextColumns([["A1", "=x", "B2"], ["王", "", "Amy"]], headers=["job_number", "name"])


def test_columns_read_as_rows_in_every_format():
    rows = [("A1", "王"), ("=x", ""), ("B2", "Amy")]

    data = table()
    assert (data.height, data.width, len(data)) == (3, 2, 3)
    assert list(data) == rows
    text = SmartCSV().export_data(table())
    assert list(csv.reader(io.StringIO(text.removeprefix("\ufeff")))) == [["job_number", "name"], *map(list, rows)]
    sheet = openpyxl.load_workbook(io.BytesIO(TextXLSX().export_data(table()))).active
    assert [tuple(cell or "" for cell in row) for row in sheet.iter_rows(values_only=True)] == [
        ("job_number", "name"),
        *rows,
    ]
    assert json.loads(table().json) == [{"job_number": job, "name": name} for job, name in rows]


def test_tablibs_own_operations_see_the_same_rows():
    data = table()
    assert data[1] == ("=x", "")
    data.append(("C3", "Chloe"))
    assert list(data) == [("A1", "王"), ("=x", ""), ("B2", "Amy"), ("C3", "Chloe")]
    assert data["job_number"] == ["A1", "=x", "B2", "C3"]
    assert (data.height, data.width) == (4, 2)


def test_an_empty_export_has_its_headers_only():
    data = TextColumns([[], []], headers=["job_number", "name"])
    assert (data.height, data.width, list(data)) == (0, 2, [])
    assert SmartCSV().export_data(data) == "\ufeffjob_number,name\r\n"


@pytest.mark.django_db
def test_dates_and_times_are_written_in_the_companys_zone(tenants):
    a, _ = tenants
    a.company.time_zone = "Asia/Taipei"
    a.company.save()
    host = SubjectFactory(company=a.company, job_number="H1", start_date=datetime.date(2020, 2, 29))
    start = datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC)
    SubjectFactory(
        company=a.company, job_number="V1", subject_type="visitor", visit_start=start,
        visit_end=start + datetime.timedelta(hours=2, seconds=1, microseconds=5), host=host, archived=True,
        department=DepartmentFactory(company=a.company, name="-Ops"),
    )  # fmt: skip

    with timezone.override(zoneinfo.ZoneInfo("Asia/Taipei")):
        data = SubjectResource(company=a.company).export()
    rows = {row["job_number"]: row for row in data.dict}

    assert rows["H1"]["start_date"] == "2020-02-29"
    assert rows["H1"]["visit_start"] == rows["H1"]["host_job_number"] == rows["H1"]["department"] == ""
    assert rows["H1"]["archived"] == "0"
    assert rows["V1"]["start_date"] == ""
    assert rows["V1"]["visit_start"] == "2026-03-02T07:30:00+08:00"
    assert rows["V1"]["visit_end"] == "2026-03-02T09:30:01.000005+08:00"
    assert rows["V1"]["host_job_number"] == "H1"
    assert rows["V1"]["department"] == "'-Ops"
    assert rows["V1"]["archived"] == "1"
