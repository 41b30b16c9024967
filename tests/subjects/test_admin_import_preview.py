"""The import preview HR checks before confirming: values and old → new, a summary, filters
and pages; errors in place with the spreadsheet's row numbers and what to write instead;
dates as people write them; big files checked and imported by jobs with a progress bar."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from accounts.models import DateOrder, Job, JobState
from subjects import imports
from subjects.models import Subject
from tests.factories import DepartmentFactory, SubjectFactory
from tests.subjects.test_admin_import import (
    CHANGELIST,
    confirm,
    confirm_fields,
    csv_file,
    has_confirm_form,
    kinds,
    preview,
    report_of,
    row_errors,
    subjects_of,
)

pytestmark = pytest.mark.django_db

DATES = ["job_number", "name", "start_date"]
DATE_HINT = "use YYYY-MM-DD or YYYY/M/D, e.g. 2026-04-03"


@pytest.fixture
def owner_client(client, tenants):
    client.force_login(tenants[0].owner)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- dates ----------------------------------------------------------------------------------------


def test_iso_and_excels_year_first_dates_are_read(owner_client, tenant_a):
    rows = [["E1", "Iso", "2026-04-03"], ["E2", "Slashes", "2026/4/3"], ["E3", "Padded", "2026/04/03"]]
    confirm(owner_client, preview(owner_client, csv_file(rows, header=DATES)))
    assert {s.start_date for s in subjects_of(tenant_a.company).values()} == {date(2026, 4, 3)}


def test_an_ambiguous_date_is_refused_without_the_companys_date_order(owner_client, tenant_a):
    rows = [["E1", "Ambiguous", "03/04/2026"], ["E2", "Day 13", "13/04/2026"], ["E3", "Nonsense", "soon"]]
    response = preview(owner_client, csv_file(rows, header=DATES))
    assert row_errors(response) == {
        2: {"start_date": [f"“03/04/2026” could be read day first or month first: {DATE_HINT}, or set the "
                           "company's date order for imports."]},
        4: {"start_date": [f"“soon” is not a date: {DATE_HINT}."]},
    }  # fmt: skip
    assert kinds(response)[1] == "new"  # 13/04/2026 has only one reading
    assert not has_confirm_form(response)


@pytest.mark.parametrize(
    ("order", "expected"), [(DateOrder.DAY_FIRST, date(2026, 4, 3)), (DateOrder.MONTH_FIRST, date(2026, 3, 4))]
)
def test_the_companys_date_order_says_how_to_read_03_04_2026(owner_client, tenant_a, order, expected):
    tenant_a.company.date_order = order
    tenant_a.company.save()
    confirm(owner_client, preview(owner_client, csv_file([["E1", "Mei", "03/04/2026"]], header=DATES)))
    assert subjects_of(tenant_a.company)["E1"].start_date == expected


def test_a_date_that_does_not_exist_names_the_format(owner_client, tenant_a):
    response = preview(owner_client, csv_file([["E1", "Mei", "2026/2/30"]], header=DATES))
    assert row_errors(response) == {2: {"start_date": [f"“2026/2/30” is not a real date: {DATE_HINT}."]}}


def test_visit_times_as_excel_writes_them_are_the_companys_wall_clock(owner_client, tenant_a):
    header = ["job_number", "name", "subject_type", "visit_start", "visit_end"]
    rows = [["", "Guest", "visitor", "2026/3/2 上午 09:00:00", "2026/3/2 下午 06:00:00"]]
    confirm(owner_client, preview(owner_client, csv_file(rows, header=header)))
    guest = Subject.objects.for_company(tenant_a.company).get(name="Guest")
    assert (guest.visit_start, guest.visit_end) == (
        datetime(2026, 3, 2, 1, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC),
    )  # fmt: skip


def test_a_yes_no_column_refuses_what_is_neither(owner_client, tenant_a):
    header = ["job_number", "name", "archived"]
    response = preview(owner_client, csv_file([["E1", "Yes", "yes"], ["E2", "Maybe", "maybe"]], header=header))
    assert row_errors(response) == {3: {"archived": ["“maybe” is not yes or no: use 1 or 0."]}}


def test_a_row_with_an_unreadable_cell_still_names_the_row_it_duplicates(owner_client, tenant_a):
    header = ["job_number", "name", "email", "start_date"]
    rows = [
        ["E1", "Mei", "mei@a.example", "2026-04-03"],
        ["E1", "Ming", "MEI@a.example", "soon"],  # every problem of the row at once
        ["E2", "Bad date first", "", "later"],
        ["E2", "Then a duplicate", "", "2026-04-03"],  # E2 is row 4's, though row 4 is not valid
    ]
    response = preview(owner_client, csv_file(rows, header=header))
    assert row_errors(response) == {
        3: {
            "job_number": ["Row 2 of the file has the same job number."],
            "email": ["Row 2 of the file has the same e-mail address."],
            "start_date": [f"“soon” is not a date: {DATE_HINT}."],
        },
        4: {"start_date": [f"“later” is not a date: {DATE_HINT}."]},
        5: {"job_number": ["Row 4 of the file has the same job number."]},
    }
    page = text(response)
    assert "Row 2 of the file has the same job number." in page and "“soon” is not a date" in page


# --- what the preview shows -------------------------------------------------------------------


def test_the_preview_shows_values_changes_and_a_summary(owner_client, tenant_a):
    sales = DepartmentFactory(company=tenant_a.company, name="Sales")
    SubjectFactory(company=tenant_a.company, job_number="E1", name="Old Name", title="Clerk", department=sales,
                   email="", phone="")  # fmt: skip
    SubjectFactory(company=tenant_a.company, job_number="E2", name="Same", title="", email="", phone="")
    rows = [
        ["E1", "New Name", "employee", "", "", "Sales", "Clerk"],
        ["E2", "Same", "employee", "", "", "", ""],
        ["E3", "王小明", "", "ming@a.example", "", "研發部", "工程師"],
        ["", "Guest", "visitor", "", "", "", ""],
    ]

    response = preview(owner_client, csv_file(rows))

    assert kinds(response) == ["update", "skip", "new", "new"]
    page = response.content.decode()
    assert re.search(r"1 new|2 new", page) and "2 new" in page
    assert "1 changed" in page and "1 unchanged" in page and "0 with errors" in page
    # The changed cell, old → new, and only that one.
    assert re.search(
        r'<td class="changed">\s*<del>Old Name</del> <span class="arrow"[^>]*>→</span> <ins>New Name</ins>', page
    )
    assert page.count('<td class="changed">') == 1
    # New rows with their values as they would be stored: type by name, generated number.
    report = report_of(response)
    ming = report.rows[2]
    assert (ming.number, ming.cells) == (4, ["E3", "王小明", "Employee", "ming@a.example", "", "研發部", "工程師"])
    guest = report.rows[3]
    assert re.fullmatch(r"V-[0-9A-F]{8}", guest.cells[0]) and guest.cells[2] == "Visitor"
    assert f">{guest.cells[0]}<" in page.replace("\n", "").replace(" ", "") or guest.cells[0] in page
    assert has_confirm_form(response)


def test_a_big_preview_is_paged_and_filtered(owner_client, tenant_a):
    rows = [[f"E{i:04}", f"Person {i}", "employee", "", "", "", ""] for i in range(250)]
    rows[180][2] = "robot"
    response = preview(owner_client, csv_file(rows))
    preview_url = response.redirect_chain[-1][0]

    # With errors the page opens on them.
    assert "robot" in text(response) and "Person 0 " not in text(response)
    everything = owner_client.get(preview_url, {"show": "all"})
    assert everything.content.decode().count('<tr class="new"') == 100
    last = owner_client.get(preview_url, {"show": "all", "page": 3})
    assert last.content.decode().count('<tr class="new"') == 50
    assert "Rows 201–250 of 250" in text(last)
    middle = owner_client.get(preview_url, {"show": "all", "page": 2}).content.decode()
    assert '<tr class="invalid" id="row-182">' in middle  # the 181st person, below the header


def test_another_users_preview_is_not_found(client, tenants):
    a, b = tenants
    client.force_login(a.owner)
    response = preview(client, csv_file([["E1", "Mei", "employee", "", "", "", ""]]))
    url = response.redirect_chain[-1][0]
    client.force_login(a.admin)
    assert client.get(url).status_code == 404
    client.force_login(b.owner)
    assert client.get(url).status_code == 404


# --- big files: jobs with progress --------------------------------------------------------------


def test_a_big_file_is_checked_and_imported_by_jobs(
    owner_client, tenant_a, settings, django_capture_on_commit_callbacks
):
    settings.SUBJECT_IMPORT_INLINE_MAX_BYTES = 0  # every file counts as big
    settings.JOBS_INLINE = True  # the jobs run at once after commit (the embedded shape)
    settings.JOBS_INLINE_DETACH = False  # in the request's thread, so the test reads the result
    rows = [[f"E{i}", f"Person {i}", "employee", "", "", "", ""] for i in range(1200)]

    with django_capture_on_commit_callbacks(execute=True):  # the job runs once the upload commits
        waiting = preview(owner_client, csv_file(rows))
    preview_url = waiting.redirect_chain[-1][0]
    assert "<progress" in waiting.content.decode()  # shown while the job had not run yet
    response = owner_client.get(preview_url)

    checked = Job.objects.for_company(tenant_a.company).get(kind="subjects.import_preview")
    assert (checked.state, checked.done, checked.total, checked.started_by) == (
        JobState.DONE, 1200, 1200, tenant_a.owner,
    )  # fmt: skip
    assert kinds(response) == ["new"] * 1200
    assert Subject.objects.for_company(tenant_a.company).count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        importing = confirm(owner_client, response)
    assert importing.redirect_chain[-1][0] == preview_url
    done = owner_client.get(preview_url, follow=True)  # the page follows the job to its end

    imported = Job.objects.for_company(tenant_a.company).get(kind="subjects.import")
    assert (imported.state, imported.done, imported.total) == (JobState.DONE, 1200, 1200)
    assert done.redirect_chain[-1][0] == CHANGELIST
    assert [str(m) for m in done.context["messages"]] == ["Import finished: 1200 new, 0 updated, 0 unchanged."]
    assert Subject.objects.for_company(tenant_a.company).count() == 1200


@pytest.mark.parametrize("size", ["small", "big"])
@pytest.mark.parametrize("ends", ["imported", "refused"])
def test_a_small_and_a_big_file_end_on_the_same_result_page(
    owner_client, tenant_a, settings, django_capture_on_commit_callbacks, size, ends
):
    """A small file is imported in the request, a big one in a job: HR sees the same page
    at the end, the list with what was imported, or the preview saying nothing was."""
    settings.SUBJECT_IMPORT_INLINE_MAX_BYTES = 0 if size == "big" else 10_000_000
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False  # in the request's thread, so the test reads the result
    rows = [["E1", "Mei", "employee", "mei@a.example", "", "", ""], ["E2", "Ming", "employee", "", "", "", ""]]
    with django_capture_on_commit_callbacks(execute=True):
        waiting = preview(owner_client, csv_file(rows))
    preview_url = waiting.redirect_chain[-1][0]
    action, fields = confirm_fields(owner_client.get(preview_url))
    if ends == "refused":  # meanwhile someone takes an e-mail of the file
        SubjectFactory(company=tenant_a.company, job_number="LATE", email="mei@a.example")

    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.post(action, fields).url == preview_url
    done = owner_client.get(preview_url, follow=True)

    if ends == "imported":
        assert done.redirect_chain[-1][0] == CHANGELIST
        assert [str(m) for m in done.context["messages"]] == ["Import finished: 2 new, 0 updated, 0 unchanged."]
        assert Subject.objects.for_company(tenant_a.company).count() == 2
    else:
        assert done.redirect_chain == []
        assert '<p class="errornote">The file has errors; nothing was imported.</p>' in done.content.decode()
        assert not has_confirm_form(done)
        assert Subject.objects.for_company(tenant_a.company).count() == 1


def test_while_a_job_runs_the_page_shows_its_progress_and_no_live_button(owner_client, tenant_a, settings):
    settings.SUBJECT_IMPORT_INLINE_MAX_BYTES = 0
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False  # in the request's thread, so the test reads the result
    response = preview(owner_client, csv_file([["E1", "Mei", "employee", "", "", "", ""]]))
    name = response.redirect_chain[-1][0].rstrip("/").rsplit("/", 1)[-1]
    job = Job.objects.create(
        company=tenant_a.company,
        kind="subjects.import",
        state=JobState.RUNNING,
        done=1500,
        total=6000,
        timeout=600,
        started_by=tenant_a.owner,
    )
    pending = imports.pending_load(name)
    pending.confirm_job = job.pk
    imports.pending_save(pending)

    page = owner_client.get(f"/admin/subjects/subject/import/{name}/").content.decode()
    status = owner_client.get(f"/admin/subjects/subject/import/{name}/status/").json()

    assert re.search(r'<progress max="6000" value="1500"></progress>', page)
    assert "1500 of 6000 rows" in page
    assert re.search(r'<input type="submit" class="default" value="Confirm import" disabled>', page)
    assert not has_confirm_form(owner_client.get(f"/admin/subjects/subject/import/{name}/"))
    assert status == {"state": "running", "state_label": "Running", "done": 1500, "total": 6000, "percent": 25,
                      "finished": False}  # fmt: skip


def test_an_owner_sets_the_date_order_through_the_api_and_the_import_follows_it(owner_client, tenant_a, api):
    answer = api(tenant_a.owner).patch("/api/v1/company", {"date_order": "mdy"}, format="json")
    assert answer.status_code == 200 and answer.json()["date_order"] == "mdy"
    refused = api(tenant_a.owner).patch("/api/v1/company", {"date_order": "ymd"}, format="json")
    assert refused.status_code == 400

    confirm(owner_client, preview(owner_client, csv_file([["E1", "Mei", "03/04/2026"]], header=DATES)))

    assert subjects_of(tenant_a.company)["E1"].start_date == date(2026, 3, 4)


@pytest.mark.django_db(transaction=True)
def test_the_embedded_shape_checks_a_big_file_in_a_thread_while_the_page_shows_progress(
    owner_client, tenant_a, settings, monkeypatch
):
    """`make run` has no worker: a big file's check runs detached, so the upload answers at
    once with the progress bar instead of holding the request for thousands of rows."""
    import threading

    from subjects import jobs as subject_jobs

    settings.SUBJECT_IMPORT_INLINE_MAX_BYTES = 0
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = True
    gate = threading.Event()
    check = subject_jobs.subject_import_preview

    def held_check(*args, **kwargs):
        gate.wait(timeout=30)
        return check(*args, **kwargs)

    monkeypatch.setattr(subject_jobs, "subject_import_preview", held_check)
    rows = [[f"E{i}", f"Person {i}", "employee", "", "", "", ""] for i in range(50)]

    waiting = preview(owner_client, csv_file(rows))  # answers while the check is held
    assert "<progress" in waiting.content.decode()
    [worker] = [thread for thread in threading.enumerate() if thread.name == "job-run_job"]
    job = Job.objects.for_company(tenant_a.company).get(kind="subjects.import_preview")
    assert job.state in (JobState.QUEUED, JobState.RUNNING)

    gate.set()
    worker.join(timeout=30)
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == (JobState.DONE, 50, 50)
    assert kinds(owner_client.get(waiting.redirect_chain[-1][0])) == ["new"] * 50
