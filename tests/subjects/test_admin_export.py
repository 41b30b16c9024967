"""Export of subjects from the admin, driven like a browser: the changelist's export link
(which carries its filters and search), the export form, and the "export selected" action.

Every test parses the downloaded file (csv, openpyxl, json) and checks which rows and
which cell values it holds: exactly the rows the changelist shows, never another
company's, Chinese names intact, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from urllib.parse import urlsplit

import openpyxl
import pytest
from django.utils import timezone

from subjects.models import Subject, SubjectType
from tests.factories import DepartmentFactory, PhotoFactory, SubjectFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/subjects/subject/"
EXPORT = "/admin/subjects/subject/export/"
FORMAT_INDEX = {"csv": "0", "xlsx": "1", "json": "2"}
COLUMNS = [
    "job_number", "name", "english_name", "subject_type", "email", "phone", "department", "title", "start_date",
    "visit_start", "visit_end", "host_job_number", "purpose", "remark", "archived",
]  # fmt: skip


class Forms(HTMLParser):
    """The forms of a page: [(action, {name: value or [values]})], as a browser would
    submit them with their defaults (hidden inputs, ticked checkboxes, selected options)."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[tuple[str, dict]] = []
        self._select: str | None = None
        self.feed(html)

    def _add(self, name, value):
        fields = self.forms[-1][1]
        if name in fields:
            existing = fields[name]
            fields[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[name] = value

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append((attrs.get("action") or "", {}))
        elif not self.forms or not attrs.get("name"):
            return
        elif tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file") or (kind == "checkbox" and "checked" not in attrs):
                return
            self._add(attrs["name"], attrs.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select and "selected" in attrs:
            self._add(self._select, attrs.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def export_form(html: str) -> tuple[str, dict]:
    """The export form of a page (the one with a `format` field)."""
    for action, fields in Forms(html).forms:
        if "format" in fields or "resource" in fields:
            return action, fields
    raise AssertionError("no export form on the page")


def download(client, fmt: str, *, query: str = "") -> bytes:
    """Open the export page for the changelist's `query` and submit it in `fmt`."""
    url = EXPORT + (f"?{query}" if query else "")
    page = client.get(url)
    assert page.status_code == 200
    action, fields = export_form(page.content.decode())
    fields["format"] = FORMAT_INDEX[fmt]
    response = client.post(action or url, fields)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;"), response.content[:500]
    return response.content


def rows_of(fmt: str, content: bytes) -> list[dict]:
    if fmt == "csv":
        assert content.startswith(b"\xef\xbb\xbf"), "a CSV without BOM opens as mojibake in Excel"
        return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        rows = list(sheet.iter_rows(values_only=True))
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    if fmt == "json":
        return json.loads(content.decode("utf-8"))
    raise AssertionError(fmt)


def xlsx_cells(content: bytes) -> dict[str, list]:
    """column -> its cells (openpyxl Cell objects, to check their data type)."""
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows())
    headers = [cell.value for cell in rows[0]]
    return {header: [row[i] for row in rows[1:]] for i, header in enumerate(headers)}


def export_link(client, query: str) -> str:
    """The changelist's own "Export" link for this filtered view."""
    html = client.get(f"{CHANGELIST}?{query}").content.decode()
    start = html.index('class="export_link"')
    href = html[html.rindex('href="', 0, start) + 6 :]
    return href[: href.index('"')].replace("&amp;", "&")


@pytest.fixture
def owner_client(client, tenants):
    client.force_login(tenants[0].owner)
    return client


@pytest.fixture
def people(tenants):
    """Company A: employees in two departments, a visitor, an archived one; company B: twins."""
    a, b = tenants
    sales = DepartmentFactory(company=a.company, name="Sales")
    lab = DepartmentFactory(company=a.company, name="研發部")
    SubjectFactory(company=a.company, job_number="A1", name="王小明", department=sales, phone="0911000001")
    SubjectFactory(company=a.company, job_number="A2", name="Amy Lin", department=sales)
    SubjectFactory(company=a.company, job_number="A3", name="陳美麗", department=lab)
    SubjectFactory(company=a.company, job_number="A4", name="Amy Wu", department=lab, archived=True)
    SubjectFactory(
        company=a.company,
        job_number="V-1",
        name="Visitor Amy",
        subject_type=SubjectType.VISITOR,
        visit_start=timezone.now(),
    )
    b_sales = DepartmentFactory(company=b.company, name="Sales")
    for job in ("A1", "A2", "B9"):
        SubjectFactory(company=b.company, job_number=job, name="Amy of B", department=b_sales)
    return sales, lab


# --- exactly the rows the changelist shows ------------------------------------------------------

FILTERED_VIEWS = [
    ("", {"A1", "A2", "A3", "V-1"}),  # archived people (A4) only when the filter asks
    ("archived__exact=all", {"A1", "A2", "A3", "A4", "V-1"}),
    ("q=Amy", {"A2", "V-1"}),
    ("q=Amy&archived__exact=all", {"A2", "A4", "V-1"}),
    ("subject_type__exact=visitor", {"V-1"}),
    ("archived__exact=0&q=amy", {"A2", "V-1"}),
    ("q=0911000001", {"A1"}),
    ("photos=none&archived__exact=1", {"A4"}),
    ("q=nobody-matches-this", set()),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
@pytest.mark.parametrize(("query", "expected"), FILTERED_VIEWS)
def test_export_holds_exactly_the_rows_the_changelist_shows(owner_client, people, fmt, query, expected):
    shown = owner_client.get(f"{CHANGELIST}?{query}").context["cl"].result_list
    assert {s.job_number for s in shown} == expected

    rows = rows_of(fmt, download(owner_client, fmt, query=query))

    assert sorted(str(row["job_number"]) for row in rows) == sorted(expected)
    assert "Amy of B" not in {row["name"] for row in rows}


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_by_department_filter(owner_client, people, fmt):
    sales, _ = people
    rows = rows_of(fmt, download(owner_client, fmt, query=f"department__id__exact={sales.pk}"))
    assert sorted(row["job_number"] for row in rows) == ["A1", "A2"]
    assert {row["department"] for row in rows} == {"Sales"}


def test_the_changelists_export_link_carries_its_filters_and_search(owner_client, people):
    link = export_link(owner_client, "q=Amy&archived__exact=0")
    assert urlsplit(link).path == EXPORT

    page = owner_client.get(link)
    action, fields = export_form(page.content.decode())
    fields["format"] = FORMAT_INDEX["csv"]
    response = owner_client.post(action or link, fields)

    assert sorted(row["job_number"] for row in rows_of("csv", response.content)) == ["A2", "V-1"]


def test_export_with_a_photo_filter(owner_client, tenants):
    a, _ = tenants
    with_photo = SubjectFactory(company=a.company, job_number="P1")
    SubjectFactory(company=a.company, job_number="P2")
    PhotoFactory(company=a.company, subject=with_photo, status="ok")

    rows = rows_of("csv", download(owner_client, "csv", query="photos=ok"))

    assert [row["job_number"] for row in rows] == ["P1"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_company_b_exports_only_its_own_rows(client, tenants, people, fmt):
    _, b = tenants
    client.force_login(b.owner)
    rows = rows_of(fmt, download(client, fmt))
    assert sorted(row["job_number"] for row in rows) == ["A1", "A2", "B9"]
    assert {row["name"] for row in rows} == {"Amy of B"}


def test_viewer_can_export(client, tenants, people):
    a, _ = tenants
    client.force_login(a.viewer)
    rows = rows_of("csv", download(client, "csv", query="q=Amy&archived__exact=all"))
    assert sorted(row["job_number"] for row in rows) == ["A2", "A4", "V-1"]


def test_export_columns_and_values(owner_client, tenants):
    a, _ = tenants
    host = SubjectFactory(company=a.company, job_number="H1", name="Host", email="host@a.example")
    lab = DepartmentFactory(company=a.company, name="Lab")
    SubjectFactory(
        company=a.company,
        job_number="V9",
        name="Guest",
        subject_type=SubjectType.VISITOR,
        email="",
        phone="0912 345 678",
        department=lab,
        title="Auditor",
        host=host,
        purpose="Audit",
        remark="line one\nline two",
        archived=True,
    )

    content = download(owner_client, "csv", query="q=V9&archived__exact=all")
    header = next(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    (row,) = rows_of("csv", content)

    assert header == COLUMNS
    assert row == {
        "job_number": "V9",
        "name": "Guest",
        "english_name": "",
        "subject_type": "visitor",
        "email": "",
        "phone": "0912 345 678",
        "department": "Lab",
        "title": "Auditor",
        "start_date": "",
        "visit_start": "",
        "visit_end": "",
        "host_job_number": "H1",
        "purpose": "Audit",
        "remark": "line one\nline two",
        "archived": "1",
    }


# --- selected rows, through the action ----------------------------------------------------------


def run_export_action(client, pks, fmt="csv", query=""):
    """Tick rows on the changelist, pick "Export selected", then submit the export form."""
    url = CHANGELIST + (f"?{query}" if query else "")
    page = client.post(url, {"action": "export_admin_action", "_selected_action": [str(pk) for pk in pks]})
    assert page.status_code == 200
    action, fields = export_form(page.content.decode())
    fields["format"] = FORMAT_INDEX[fmt]
    return client.post(action, fields)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_action_exports_the_selected_rows_only(owner_client, tenants, people, fmt):
    a, _ = tenants
    chosen = Subject.objects.for_company(a.company).filter(job_number__in=["A1", "A3"])

    response = run_export_action(owner_client, [s.pk for s in chosen], fmt)

    assert response["Content-Disposition"].startswith("attachment;")
    rows = rows_of(fmt, response.content)
    assert sorted(row["job_number"] for row in rows) == ["A1", "A3"]
    assert sorted(row["name"] for row in rows) == ["王小明", "陳美麗"]


def test_export_action_ignores_another_companys_ids_slipped_into_the_selection(owner_client, tenants, people):
    a, b = tenants
    ours = Subject.objects.for_company(a.company).get(job_number="A1")
    theirs = list(Subject.objects.for_company(b.company).values_list("pk", flat=True))

    response = run_export_action(owner_client, [ours.pk, *theirs])

    rows = rows_of("csv", response.content)
    assert [row["job_number"] for row in rows] == ["A1"]
    assert {row["name"] for row in rows} == {"王小明"}


def test_a_forged_export_of_another_companys_ids_downloads_nothing(owner_client, tenants, people):
    _, b = tenants
    theirs = list(Subject.objects.for_company(b.company).values_list("pk", flat=True))
    page = owner_client.get(EXPORT)
    _, fields = export_form(page.content.decode())
    fields.update({"format": FORMAT_INDEX["csv"], "export_items": [str(pk) for pk in theirs]})

    response = owner_client.post(EXPORT, fields)

    assert "Content-Disposition" not in response
    assert b"Amy of B" not in response.content


# --- Chinese names ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_chinese_names_and_departments_survive_every_format(owner_client, tenants, fmt):
    a, _ = tenants
    department = DepartmentFactory(company=a.company, name="人力資源部")
    SubjectFactory(company=a.company, job_number="C1", name="張惠妹", department=department, title="經理")
    SubjectFactory(company=a.company, job_number="C2", name="𠀋𡈽 Ōno Zoë")  # outside Big5 and the BMP

    rows = {row["job_number"]: row for row in rows_of(fmt, download(owner_client, fmt))}

    assert rows["C1"]["name"] == "張惠妹"
    assert rows["C1"]["department"] == "人力資源部"
    assert rows["C1"]["title"] == "經理"
    assert rows["C2"]["name"] == "𠀋𡈽 Ōno Zoë"


def test_csv_export_is_utf8_with_bom(owner_client, tenants):
    a, _ = tenants
    SubjectFactory(company=a.company, job_number="C1", name="張惠妹")

    content = download(owner_client, "csv")

    assert content.startswith("\ufeff".encode())
    assert "張惠妹".encode() in content


# --- formulas -----------------------------------------------------------------------------------

DANGEROUS = {
    "F1": '=HYPERLINK("http://evil.example","x")',
    "F2": "+1+1",
    "F3": "-2+3",
    "F4": "@SUM(A1:A2)",
    "F5": "\t=1+1",
}


@pytest.fixture
def formula_people(tenants):
    a, _ = tenants
    department = DepartmentFactory(company=a.company, name="=cmd|' /C calc'!A0")
    for job, text in DANGEROUS.items():
        SubjectFactory(company=a.company, job_number=job, name=text, title=text, remark=text, department=department)
    SubjectFactory(company=a.company, job_number="SAFE", name="Anne-Marie O'Neil", title="a=b", remark="x+y")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cells_starting_like_a_formula_are_escaped_in_text_exports(owner_client, formula_people, fmt):
    rows = {row["job_number"]: row for row in rows_of(fmt, download(owner_client, fmt))}

    for job, text in DANGEROUS.items():
        for column in ("name", "title", "remark"):
            assert rows[job][column] == "'" + text, (job, column)
        assert rows[job]["department"] == "'=cmd|' /C calc'!A0"
    assert rows["SAFE"]["name"] == "Anne-Marie O'Neil"
    assert rows["SAFE"]["title"] == "a=b"
    assert rows["SAFE"]["remark"] == "x+y"


def test_no_xlsx_cell_is_a_formula(owner_client, formula_people):
    content = download(owner_client, "xlsx")
    columns = xlsx_cells(content)

    by_job = {cell.value: i for i, cell in enumerate(columns["job_number"])}
    for job, text in DANGEROUS.items():
        for column in ("name", "title", "remark", "department"):
            cell = columns[column][by_job[job]]
            assert cell.data_type == "s", (job, column, cell.data_type)
            assert isinstance(cell.value, str) and cell.value.startswith("'"), (job, column, cell.value)
        assert columns["name"][by_job[job]].value == "'" + text
    every_cell = [cell for cells in columns.values() for cell in cells]
    assert not [cell.coordinate for cell in every_cell if cell.data_type == "f"]
    assert columns["name"][by_job["SAFE"]].value == "Anne-Marie O'Neil"


def test_csv_cells_never_start_with_a_formula_character(owner_client, formula_people):
    content = download(owner_client, "csv").decode("utf-8-sig")
    for row in csv.reader(io.StringIO(content)):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


# --- columns ------------------------------------------------------------------------------------


def test_the_export_form_offers_one_checkbox_per_column(owner_client):
    _, fields = export_form(owner_client.get(EXPORT).content.decode())
    ticked = [name.removeprefix("subjectresource_") for name in fields if name.startswith("subjectresource_")]
    assert sorted(ticked) == sorted(["host" if c == "host_job_number" else c for c in COLUMNS])


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_unticked_columns_are_left_out(owner_client, people, fmt):
    page = owner_client.get(f"{EXPORT}?q=王")
    _, fields = export_form(page.content.decode())
    fields = {k: v for k, v in fields.items() if not k.startswith("subjectresource_")}
    fields.update({"subjectresource_name": "on", "subjectresource_job_number": "on", "subjectresource_host": "on"})
    fields["format"] = FORMAT_INDEX[fmt]

    response = owner_client.post(f"{EXPORT}?q=王", fields)

    rows = [{column: value or "" for column, value in row.items()} for row in rows_of(fmt, response.content)]
    assert rows == [{"job_number": "A1", "name": "王小明", "host_job_number": ""}]


def test_characters_xml_cannot_hold_do_not_break_the_xlsx_export(owner_client, tenants):
    a, _ = tenants
    SubjectFactory(company=a.company, job_number="X1", name="Tab\tand <b>&amp;</b>", remark="pasted \x0b here")

    (row,) = rows_of("xlsx", download(owner_client, "xlsx"))

    assert row["name"] == "Tab\tand <b>&amp;</b>"
    assert row["remark"] == "pasted \ufffd here"
