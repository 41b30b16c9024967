"""Import of subjects through the admin, driven like a browser: upload (dry-run preview),
then the confirm form the preview renders.

The rules: errors per row and field, nothing written unless the whole file is valid,
rows matched by job number inside the importing company only, departments by name, CSV
in UTF-8 (with or without BOM) and Big5/CP950, XLSX, and no XML bomb gets through."""

from __future__ import annotations

import csv
import io
import re
import signal
import time
import zipfile
from contextlib import contextmanager
from datetime import date, timedelta

import openpyxl
import pytest
from defusedxml import EntitiesForbidden
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from subjects.models import Department, Subject, SubjectType
from subjects.resources import FIELD_OF_COLUMN
from tests.factories import DepartmentFactory, SubjectFactory
from tests.subjects.test_admin_export import Forms, download

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/subjects/subject/"
IMPORT = "/admin/subjects/subject/import/"
PROCESS_IMPORT = "/admin/subjects/subject/process_import/"
FORMAT_INDEX = {"csv": "0", "xlsx": "1"}
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADER = ["job_number", "name", "subject_type", "email", "phone", "department", "title"]


def csv_file(rows, header=HEADER, encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_file(rows, header=HEADER) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def preview(client, content: bytes, fmt="csv", name=None):
    """Upload a file: the admin checks it (a dry run) and shows its preview page."""
    upload = SimpleUploadedFile(name or f"subjects.{fmt}", content)
    response = client.post(IMPORT, {"import_file": upload, "format": FORMAT_INDEX[fmt], "resource": "0"}, follow=True)
    assert response.status_code == 200
    return response


def confirm_fields(response) -> tuple[str, dict]:
    """The confirm form of a preview page, as rendered (its hidden fields)."""
    for action, fields in Forms(response.content.decode()).forms:
        if action.endswith("process_import/"):
            return action, fields
    raise AssertionError("the preview offers no confirm form")


def confirm(client, response):
    action, fields = confirm_fields(response)
    return client.post(action, fields, follow=True)


def has_confirm_form(response) -> bool:
    return any(action.endswith("process_import/") for action, _ in Forms(response.content.decode()).forms)


def report_of(response):
    report = response.context.get("report")
    assert report is not None, "no preview report on this page"
    return report


def row_errors(response) -> dict[int, dict[str, list[str]]]:
    """{spreadsheet row number (the header is row 1): {field: [messages]}} from the preview."""
    report = report_of(response)
    headers = [header for header, _label in report.columns]
    found = {}
    for row in report.rows:
        if row.kind == "invalid":
            found[row.number] = {
                (FIELD_OF_COLUMN[headers[index]] if index is not None else "__all__"): messages
                for index, messages in row.errors.items()
            }
    return found


def kinds(response) -> list[str]:
    """What the import would do with each row, in file order."""
    return [row.kind for row in report_of(response).rows]


def import_failures(response) -> list[str]:
    """Errors that are not a row's validation errors: the file's, or a row that crashed."""
    report = report_of(response)
    crashed = [f"row {row.number}: {row.errors}" for row in report.rows if row.kind == "error"]
    return list(report.file_errors) + crashed


def counts() -> tuple[int, int]:
    """Subjects and departments of every company: "nothing written" means nowhere."""
    return Subject.objects.count(), Department.objects.count()


def subjects_of(company) -> dict[str, Subject]:
    return {s.job_number: s for s in Subject.objects.for_company(company).select_related("department", "host")}


@pytest.fixture
def owner_client(client, tenants):
    client.force_login(tenants[0].owner)
    return client


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts a parser that would run forever."""

    def expire(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- errors per row and field; nothing written --------------------------------------------------


def test_preview_reports_every_bad_row_by_field_and_writes_nothing(owner_client, tenants):
    a, b = tenants
    SubjectFactory(company=a.company, job_number="OLD1", email="taken@a.example")
    SubjectFactory(company=a.company, job_number="HOSTLESS", subject_type=SubjectType.VISITOR)
    # Company B's e-mail and job number are free for A: never reported as taken.
    SubjectFactory(company=b.company, job_number="B7", email="b-only@b.example")
    SubjectFactory(company=b.company, job_number="BHOST")
    before = counts()
    rows = [
        ["E1", "王小明", "employee", "ming@a.example", "", "研發部", ""],  # 1 valid
        ["E2", "Amy", "employee", " MING@A.example ", "", "", ""],  # 2 e-mail twice in the file
        ["E1", "Bob", "employee", "bob@a.example", "", "", ""],  # 3 job number twice in the file
        ["E4", "Carol", "employee", "Taken@A.Example", "", "", ""],  # 4 e-mail of an existing subject
        ["E5", "Dan", "employee", "not-an-email", "", "", ""],  # 5 bad e-mail
        ["E6", "", "employee", "", "", "", ""],  # 6 no name
        ["E7", "Eve", "contractor", "", "", "", ""],  # 7 unknown type
        ["", "Frank", "employee", "", "", "", ""],  # 8 employee without job number
        ["B7", "Gina", "employee", "b-only@b.example", "", "", ""],  # 9 valid: B's keys are free for A
        ["", "Guest", "visitor", "", "", "", ""],  # 10 valid: a visitor gets a job number
    ]

    response = preview(owner_client, csv_file(rows))

    # Numbered as the spreadsheet shows them: the header is row 1, the first person row 2.
    assert row_errors(response) == {
        3: {"email": ["Row 2 of the file has the same e-mail address."]},
        4: {"job_number": ["Row 2 of the file has the same job number."]},
        5: {"email": ["Another subject of this company has this e-mail address."]},
        6: {"email": ["Enter a valid email address."]},
        7: {"name": ["This field cannot be blank."]},
        8: {"subject_type": ["“contractor” is not a type: use employee (Employee), visitor (Visitor) or vip (VIP)."]},
        9: {"job_number": ["An employee needs a job number."]},
    }
    page = response.content.decode()
    assert "7 with errors" in page
    # Each message is shown in its cell, not only on hover.
    assert re.search(
        r'<td class=" has-error">\s*contractor\s*<ul class="cell-errors"><li>“contractor” is not a type', page
    )
    assert not has_confirm_form(response)
    assert counts() == before


def test_host_must_be_an_employee_of_our_company(owner_client, tenants):
    a, b = tenants
    SubjectFactory(company=a.company, job_number="BOSS")
    SubjectFactory(company=a.company, job_number="GUEST0", subject_type=SubjectType.VISITOR)
    SubjectFactory(company=b.company, job_number="THEIRBOSS")
    header = [*HEADER, "host_job_number"]
    rows = [
        ["V1", "Guest One", "visitor", "", "", "", "", "BOSS"],
        ["V2", "Guest Two", "visitor", "", "", "", "", "THEIRBOSS"],
        ["V3", "Guest Three", "visitor", "", "", "", "", "GUEST0"],
    ]
    before = counts()

    response = preview(owner_client, csv_file(rows, header=header))

    errors = row_errors(response)
    assert sorted(errors) == [3, 4]
    assert errors[3] == {"host": ["No employee has job number THEIRBOSS."]}
    assert counts() == before


def test_a_file_without_the_required_columns_is_refused(owner_client, tenants):
    before = counts()
    response = preview(owner_client, csv_file([["Amy", "amy@a.example"]], header=["name", "email"]))

    assert report_of(response).file_errors == ["The file needs the columns: job_number."]
    assert "job_number" in response.content.decode()
    assert not has_confirm_form(response)
    assert counts() == before


def test_the_confirm_step_is_all_or_nothing_too(owner_client, tenants):
    """Between preview and confirm someone takes an e-mail of the file: the confirm
    writes nothing and says so, rather than announcing a finished import."""
    a, _ = tenants
    rows = [
        ["N1", "Ann", "employee", "ann@a.example", "", "Sales", ""],
        ["N2", "Ben", "employee", "ben@a.example", "", "", ""],
    ]
    response = preview(owner_client, csv_file(rows))
    assert row_errors(response) == {}
    SubjectFactory(company=a.company, job_number="LATE", email="ben@a.example")
    before = counts()

    done = confirm(owner_client, response)

    assert counts() == before
    assert set(subjects_of(a.company)) == {"LATE"}
    messages = [str(m) for m in done.context["messages"]]
    assert not any(m.startswith("Import finished") for m in messages), messages
    # The preview page says so, as after a big file's job, and shows the row that changed.
    assert done.context["confirm_failed"] == "The file has errors; nothing was imported."
    assert '<p class="errornote">The file has errors; nothing was imported.</p>' in done.content.decode()
    assert row_errors(done) == {3: {"email": ["Another subject of this company has this e-mail address."]}}
    assert not has_confirm_form(done)


# --- a valid file -------------------------------------------------------------------------------


def test_a_valid_file_is_previewed_then_imported_on_confirm(owner_client, tenants):
    a, b = tenants
    sales = DepartmentFactory(company=a.company, name="Sales")
    rows = [
        ["E1", "王小明", "employee", " Ming@A.example ", "0911000001", "sales", "Engineer"],
        ["E2", "Amy Lin", "", "amy@a.example", "", "研發部", ""],
        ["", "Guest", "visitor", "", "", "", ""],
        ["", "Big Boss", "vip", "", "", "", ""],
    ]
    before = counts()

    response = preview(owner_client, csv_file(rows))

    assert row_errors(response) == {}
    assert kinds(response) == ["new"] * 4
    assert counts() == before, "the preview wrote something"

    done = confirm(owner_client, response)

    assert done.redirect_chain[-1][0] == CHANGELIST
    assert [str(m) for m in done.context["messages"]] == ["Import finished: 4 new, 0 updated, 0 unchanged."]
    ours = subjects_of(a.company)
    assert len(ours) == 4
    ming = ours["E1"]
    assert (ming.name, ming.subject_type, ming.email, ming.phone, ming.title) == (
        "王小明", "employee", "Ming@A.example", "0911000001", "Engineer",
    )  # fmt: skip
    assert ming.department == sales  # matched by name, whatever the case and spaces
    assert ours["E2"].subject_type == SubjectType.EMPLOYEE  # a blank type is an employee
    lab = ours["E2"].department
    assert (lab.name, lab.company) == ("研發部", a.company)  # created by name, in our company
    generated = {s.subject_type: s.job_number for s in ours.values() if s.job_number not in ("E1", "E2")}
    assert re.fullmatch(r"V-[0-9A-F]{8}", generated["visitor"])
    assert re.fullmatch(r"VIP-[0-9A-F]{8}", generated["vip"])
    assert subjects_of(b.company) == {}
    assert Department.objects.for_company(b.company).count() == 0


def test_visitors_and_vips_get_distinct_generated_job_numbers(owner_client, tenants):
    a, _ = tenants
    rows = [["", f"Guest {i}", "visitor" if i % 2 else "vip", "", "", "", ""] for i in range(20)]

    confirm(owner_client, preview(owner_client, csv_file(rows)))

    numbers = list(subjects_of(a.company))
    assert len(numbers) == len(set(numbers)) == 20
    assert all(n.startswith(("V-", "VIP-")) for n in numbers)


def test_an_employee_without_job_number_is_an_error_row(owner_client, tenants):
    before = counts()
    response = preview(owner_client, csv_file([["", "No Number", "employee", "", "", "", ""]]))
    assert row_errors(response) == {2: {"job_number": ["An employee needs a job number."]}}
    assert counts() == before


# --- updates, matched by job number within the company ------------------------------------------


def test_a_row_updates_our_subject_with_that_job_number_and_never_company_bs(owner_client, tenants):
    a, b = tenants
    ours = SubjectFactory(company=a.company, job_number="E1", name="Old Name", email="old@a.example", title="")
    theirs = SubjectFactory(company=b.company, job_number="E1", name="B's Person", email="old@a.example")
    theirs_before = Subject.objects.for_company(b.company).values().get(pk=theirs.pk)
    rows = [["E1", "New Name", "employee", "new@a.example", "0900", "Ops", "Lead"]]

    response = preview(owner_client, csv_file(rows))
    assert kinds(response) == ["update"]
    confirm(owner_client, response)

    ours.refresh_from_db()
    assert (ours.name, ours.email, ours.phone, ours.title, ours.department.name) == (
        "New Name", "new@a.example", "0900", "Lead", "Ops",
    )  # fmt: skip
    assert ours.department.company == a.company
    assert Subject.objects.for_company(a.company).count() == 1
    assert Subject.objects.for_company(b.company).values().get(pk=theirs.pk) == theirs_before


def test_unchanged_rows_are_skipped_and_changed_rows_get_a_new_updated_at(owner_client, tenants):
    a, _ = tenants
    SubjectFactory(company=a.company, job_number="E1", name="Same", email="same@a.example")
    SubjectFactory(company=a.company, job_number="E2", name="Old", email="e2@a.example")
    stamps = dict(Subject.objects.for_company(a.company).values_list("job_number", "updated_at"))
    rows = [
        ["E1", "Same", "employee", " same@a.example", "", "", ""],
        ["E2", "New", "employee", "e2@a.example", "", "", ""],
    ]

    response = preview(owner_client, csv_file(rows))
    assert kinds(response) == ["skip", "update"]
    done = confirm(owner_client, response)

    # The same words as after a big file's job.
    assert [str(m) for m in done.context["messages"]] == ["Import finished: 0 new, 1 updated, 1 unchanged."]
    after = {s.job_number: s for s in Subject.objects.for_company(a.company)}
    assert after["E1"].updated_at == stamps["E1"]
    assert after["E2"].updated_at > stamps["E2"]
    assert (after["E1"].name, after["E2"].name) == ("Same", "New")


def test_a_file_with_some_columns_changes_only_those(owner_client, tenants):
    a, _ = tenants
    lab = DepartmentFactory(company=a.company, name="Lab")
    boss = SubjectFactory(company=a.company, job_number="BOSS")
    guest = SubjectFactory(
        company=a.company, job_number="V1", subject_type=SubjectType.VISITOR, email="v1@a.example", department=lab
    )
    rows = [["V1", "BOSS", "Renamed Guest"]]

    confirm(owner_client, preview(owner_client, csv_file(rows, header=["job_number", "host_job_number", "name"])))

    guest.refresh_from_db()
    assert (guest.name, guest.host, guest.email, guest.department, guest.subject_type) == (
        "Renamed Guest", boss, "v1@a.example", lab, SubjectType.VISITOR,
    )  # fmt: skip


def test_id_and_company_columns_in_the_file_cannot_reach_another_company(owner_client, tenants):
    a, b = tenants
    theirs = SubjectFactory(company=b.company, job_number="B1", name="B's Person")
    theirs_before = Subject.objects.for_company(b.company).values().get(pk=theirs.pk)
    header = ["id", "company", *HEADER]
    rows = [[theirs.pk, b.company.pk, "B1", "Hijacked", "employee", "", "", "", ""]]

    confirm(owner_client, preview(owner_client, csv_file(rows, header=header)))

    assert Subject.objects.for_company(b.company).values().get(pk=theirs.pk) == theirs_before
    created = Subject.objects.for_company(a.company).get(job_number="B1")
    assert created.name == "Hijacked" and created.pk != theirs.pk


def test_departments_are_matched_by_name_inside_our_company_only(owner_client, tenants):
    a, b = tenants
    ours = DepartmentFactory(company=a.company, name="Sales")
    theirs = DepartmentFactory(company=b.company, name="Research")
    rows = [
        ["E1", "One", "employee", "", "", "  SALES ", ""],
        ["E2", "Two", "employee", "", "", "Research", ""],
        ["E3", "Three", "employee", "", "", "research", ""],
        ["E4", "Four", "employee", "", "", "", ""],
    ]

    confirm(owner_client, preview(owner_client, csv_file(rows)))

    subjects = subjects_of(a.company)
    assert subjects["E1"].department == ours
    assert subjects["E2"].department == subjects["E3"].department  # created once
    assert subjects["E2"].department != theirs
    assert subjects["E2"].department.company == a.company
    assert subjects["E4"].department is None
    assert Department.objects.for_company(a.company).count() == 2
    assert Department.objects.for_company(b.company).get() == theirs


# --- encodings ----------------------------------------------------------------------------------

CHINESE_ROWS = [
    ["E1", "王小明", "employee", "", "", "研發部", "工程師"],
    ["E2", "陳美麗", "employee", "", "", "人力資源部", "經理"],
    ["E3", "Zoë Ōno", "employee", "", "", "", ""],
]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp950"], ids=["utf8-bom", "utf8", "big5-cp950"])
def test_csv_with_chinese_names_in_every_encoding_excel_writes(owner_client, tenants, encoding):
    a, _ = tenants
    rows = CHINESE_ROWS if encoding != "cp950" else CHINESE_ROWS[:2]  # Zoë Ōno is not in Big5
    content = csv_file(rows, encoding=encoding)
    assert content.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")

    response = preview(owner_client, content)
    assert row_errors(response) == {}
    confirm(owner_client, response)

    subjects = subjects_of(a.company)
    assert subjects["E1"].name == "王小明"
    assert subjects["E1"].department.name == "研發部"
    assert subjects["E1"].title == "工程師"
    assert subjects["E2"].name == "陳美麗"
    assert subjects["E2"].department.name == "人力資源部"
    if encoding != "cp950":
        assert subjects["E3"].name == "Zoë Ōno"


def test_a_file_in_neither_utf8_nor_big5_is_refused_with_a_form_error(owner_client, tenants):
    before = counts()
    response = preview(owner_client, b"job_number,name\r\nE1,\x80\xff\xfe\x81\r\n")
    assert "import_file" in response.context["form"].errors
    assert not has_confirm_form(response)
    assert counts() == before


# --- XLSX ---------------------------------------------------------------------------------------


def test_xlsx_import(owner_client, tenants):
    a, _ = tenants
    SubjectFactory(company=a.company, job_number="1001", name="Old")
    header = [*HEADER, "start_date", "remark"]
    rows = [
        ["E1", "王小明", "employee", "ming@a.example", "0911000001", "研發部", "工程師", date(2024, 3, 1), "note"],
        # Excel stores a typed-in job number or phone as a number.
        [1001, "Numbered", "employee", "", 912345678, "", "", None, None],
        # Empty cells read None, even in a column that must never be NULL.
        [1002, "New Numbered", None, None, None, None, None, None, None],
        [None, "Guest", "visitor", None, None, None, None, None, None],
    ]

    response = preview(owner_client, xlsx_file(rows, header=header), fmt="xlsx")

    assert row_errors(response) == {}
    assert import_failures(response) == []
    assert kinds(response) == ["new", "update", "new", "new"]
    confirm(owner_client, response)

    subjects = subjects_of(a.company)
    assert subjects["E1"].name == "王小明"
    assert subjects["E1"].department.name == "研發部"
    assert subjects["E1"].start_date == date(2024, 3, 1)
    assert subjects["1001"].name == "Numbered"
    assert subjects["1001"].phone == "912345678"
    assert subjects["1002"].subject_type == SubjectType.EMPLOYEE
    assert (subjects["1002"].email, subjects["1002"].remark, subjects["E1"].remark) == ("", "", "note")
    assert len(subjects) == 4


def test_xlsx_preview_reports_errors_and_writes_nothing(owner_client, tenants):
    before = counts()
    rows = [["E1", "Amy", "employee", "bad@", "", "", ""], ["E1", "", "robot", "", "", "", ""]]

    response = preview(owner_client, xlsx_file(rows), fmt="xlsx")

    assert row_errors(response) == {
        2: {"email": ["Enter a valid email address."]},
        3: {  # every error of the row, the repeated job number too
            "job_number": ["Row 2 of the file has the same job number."],
            "name": ["This field cannot be blank."],
            "subject_type": ["“robot” is not a type: use employee (Employee), visitor (Visitor) or vip (VIP)."],
        },
    }
    assert counts() == before


def billion_laughs_xlsx() -> bytes:
    """A real workbook with a shared-strings part that is the "billion laughs" entity bomb
    (openpyxl writes inline strings, so the part is added and declared here, as Excel has it)."""
    valid = xlsx_file([["E1", "Amy", "employee", "", "", "", ""]])
    laughs = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{laughs}]>'
        f'<sst xmlns="{MAIN_NS}" count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    )
    shared = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    relation = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(valid)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            data = source.read(name).decode()
            if name == "[Content_Types].xml":
                data = data.replace(
                    "</Types>", f'<Override PartName="/xl/sharedStrings.xml" ContentType="{shared}"/></Types>'
                )
            elif name == "xl/_rels/workbook.xml.rels":
                data = data.replace(
                    "</Relationships>",
                    f'<Relationship Id="rIdBomb" Type="{relation}" Target="sharedStrings.xml"/></Relationships>',
                )
            target.writestr(name, data)
        target.writestr("xl/sharedStrings.xml", bomb)
    return out.getvalue()


def test_an_xlsx_xml_bomb_is_refused_quickly_with_a_form_error(owner_client, tenants):
    assert openpyxl.xml.DEFUSEDXML is True  # openpyxl parses through defusedxml
    before = counts()

    started = time.monotonic()
    with time_limit(20):
        response = preview(owner_client, billion_laughs_xlsx(), fmt="xlsx")
    elapsed = time.monotonic() - started

    assert elapsed < 5
    assert "import_file" in response.context["form"].errors
    assert not has_confirm_form(response)
    assert counts() == before
    # ... and it is defusedxml that stopped it, not a parser limit that happens to be there.
    xlsx_format = admin.site._registry[Subject].get_import_formats()[int(FORMAT_INDEX["xlsx"])]
    with pytest.raises(ValueError) as refused:
        xlsx_format().create_dataset(billion_laughs_xlsx())
    assert isinstance(refused.value.__cause__, EntitiesForbidden)


def test_a_file_that_is_not_xlsx_is_refused_with_a_form_error(owner_client, tenants):
    before = counts()
    response = preview(owner_client, b"PK\x03\x04 not really a zip", fmt="xlsx")
    assert "import_file" in response.context["form"].errors
    assert counts() == before


# --- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_exported_file_imports_back_unchanged(owner_client, tenants, fmt):
    a, _ = tenants
    lab = DepartmentFactory(company=a.company, name="研發部")
    host = SubjectFactory(
        company=a.company, job_number="1001", name="王小明", department=lab, start_date=date(2020, 1, 2)
    )
    SubjectFactory(
        company=a.company,
        job_number="V-1",
        name="Guest",
        subject_type=SubjectType.VISITOR,
        email="",
        host=host,
        purpose="Meeting",
        visit_start=timezone.now().replace(microsecond=0),
        visit_end=timezone.now().replace(microsecond=0) + timedelta(hours=2),
        remark="line one\nline two",
        archived=True,
    )
    before = list(Subject.objects.for_company(a.company).order_by("pk").values())
    exported = download(owner_client, fmt)

    response = preview(owner_client, exported, fmt=fmt)

    assert row_errors(response) == {}
    assert import_failures(response) == []
    confirm(owner_client, response)
    after = list(Subject.objects.for_company(a.company).order_by("pk").values())
    for row in (*before, *after):
        row.pop("updated_at")
    assert after == before


def test_a_confirmed_import_is_audited_with_its_counts(owner_client, tenant_a):
    from accounts.models import AuditLog

    client = owner_client
    response = preview(client, csv_file([["E1", "Mei", "employee", "", "", "", ""], ["E2", "Lin", "", "", "", "", ""]]))
    confirm(client, response)
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="subject.import")
    assert (entry.changes["new"], entry.changes["update"]) == (2, 0)
    assert entry.actor == tenant_a.owner


def test_a_visit_time_without_offset_is_the_companys_local_time(owner_client, tenant_a):
    header = ["job_number", "name", "subject_type", "visit_start", "visit_end"]
    rows = [["", "Guest", "visitor", "2026-03-02 09:00", "2026-03-02T17:30:00"]]
    confirm(owner_client, preview(owner_client, csv_file(rows, header=header)))
    guest = Subject.objects.for_company(tenant_a.company).get(name="Guest")
    local = tenant_a.company.zone  # Asia/Taipei
    assert guest.visit_start.astimezone(local).strftime("%H:%M") == "09:00"
    assert guest.visit_end.astimezone(local).strftime("%H:%M") == "17:30"


def test_a_file_in_an_unknown_encoding_says_so(owner_client):
    response = preview(owner_client, "job_number,name\nE1,Ünïcödé\n".encode("utf-16"))
    assert "neither UTF-8 nor Big5" in response.content.decode()


def test_the_uploaded_file_waits_in_the_cache_not_on_disk(owner_client, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    preview(owner_client, csv_file([["E9", "Mei", "employee", "", "", "", ""]]))
    assert list(tmp_path.iterdir()) == []
