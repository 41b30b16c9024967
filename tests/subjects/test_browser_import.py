"""The import and the company's time in a real Chromium, in English and Traditional Chinese:
the upload form's help, a preview with errors in place, a preview with changes, the
progress bar of a big file's job following the job to its result, and a visitor's edit
form with the zone's name. Screenshots go to KANGAROO_SCREENSHOTS when it is set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from accounts.models import Job, JobState
from subjects import imports
from subjects.models import Subject
from tests.factories import PASSWORD, DepartmentFactory, SubjectFactory
from tests.screenshots import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

HEADER = "job_number,name,subject_type,email,department,title,start_date,visit_start,visit_end\n"
WITH_ERRORS = HEADER + (
    "E100,王小明,employee,ming@a.example,研發部,工程師,2026/4/3,,\n"
    "E101,陳美麗,employee,MING@a.example,研發部,經理,03/04/2026,,\n"
    "E102,Amy Lin,contractor,,,,2026-04-01,,\n"
    "E100,林志明,employee,,,,,,\n"
    ",Guest,visitor,,,,,2026/5/2 上午 09:00,2026/5/2 18:00\n"
)
VALID = HEADER + (
    "E1,林志明,employee,lin@a.example,業務部,資深經理,2024-01-02,,\n"
    "E2,Same Person,employee,,,,,,\n"
    "E100,王小明,employee,ming@a.example,研發部,工程師,2026/4/3,,\n"
    ",Guest,visitor,,,,,2026/5/2 09:00,2026/5/2 18:00\n"
)


def sign_in(page, base: str, login: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", login)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def upload(page, base: str, path: Path) -> None:
    page.goto(f"{base}/admin/subjects/subject/import/")
    page.set_input_files("input[type=file]", str(path))
    page.select_option("select[name=format]", value="0")
    page.click("#content input[type=submit]")
    page.wait_for_selector("table.import-preview", timeout=15_000)


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_hr_checks_an_import_before_confirming(asgi_server, browser, tenant_a, tmp_path, language):
    owner = tenant_a.owner
    owner.language = language
    owner.save(update_fields=["language"])
    sales = DepartmentFactory(company=tenant_a.company, name="業務部")
    SubjectFactory(company=tenant_a.company, job_number="E1", name="林志明", email="lin@a.example",
                   department=sales, title="經理", phone="")  # fmt: skip
    SubjectFactory(company=tenant_a.company, job_number="E2", name="Same Person", email="", title="", phone="")
    page = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale=language, timezone_id="Asia/Taipei"
    ).new_page()
    sign_in(page, asgi_server, "a-owner@a")

    page.goto(f"{asgi_server}/admin/subjects/subject/import/")
    page.wait_for_selector(".import-help")
    screenshot(page, f"import-form-{language}")

    (tmp_path / "errors.csv").write_text(WITH_ERRORS, encoding="utf-8")
    upload(page, asgi_server, tmp_path / "errors.csv")
    # Errors show in their cells, by the spreadsheet's row numbers; no confirm button.
    assert page.locator("tr.invalid").count() == 3
    # Every problem of a row at once: the ambiguous date and the e-mail of row 2.
    problems = page.locator("#row-3 td.has-error .cell-errors").all_inner_texts()
    assert len(problems) == 2 and "03/04/2026" in problems[1]
    assert "Row 2 " in problems[0] or "第 2 列" in problems[0]
    duplicate = page.locator("#row-5 .cell-errors").inner_text()
    assert "Row 2 " in duplicate or "第 2 列" in duplicate  # E100 is first on row 2
    assert page.locator("input[name=confirm]").count() == 0
    screenshot(page, f"import-errors-{language}")

    (tmp_path / "people.csv").write_text(VALID, encoding="utf-8")
    upload(page, asgi_server, tmp_path / "people.csv")
    assert page.locator("tr.update td.changed").count() == 2  # E1's title and start date
    assert page.locator("tr.update td.changed del").first.inner_text() == "經理"
    assert page.locator("tr.skip").count() == 1 and page.locator("tr.new").count() == 2
    screenshot(page, f"import-preview-{language}")

    button = page.locator("input[name=confirm]")
    button.click()
    page.wait_for_url(f"{asgi_server}/admin/subjects/subject/")
    assert Subject.objects.for_company(tenant_a.company).get(job_number="E1").title == "資深經理"
    guest = Subject.objects.for_company(tenant_a.company).get(name="Guest")
    assert guest.visit_start == datetime(2026, 5, 2, 1, tzinfo=UTC)  # 09:00 in Taipei

    # The visitor's edit form: the wall-clock time typed, and the zone it means.
    page.goto(f"{asgi_server}/admin/subjects/subject/{guest.pk}/change/")
    page.locator("details:has(#id_visit_start_0) > summary").click()  # open the collapsed "Visit" section
    assert page.input_value("#id_visit_start_1").startswith("09:00")
    assert (
        page.locator(".time-zone")
        .first.inner_text()
        .endswith("Asia/Taipei（UTC+08:00）" if language != "en" else "Asia/Taipei (UTC+08:00)")
    )
    page.locator(".time-zone").first.scroll_into_view_if_needed()
    screenshot(page, f"visitor-form-{language}")


WIDE_HEADER = (
    "job_number,name,english_name,subject_type,email,phone,department,title,start_date,visit_start,"
    "visit_end,host_job_number,purpose,remark,archived\n"
)
LONG_REMARK = "到職前請先完成資安訓練並繳交健康檢查報告，門禁卡於報到當日由總務處發放，" * 3


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_wide_files_preview_keeps_the_row_and_its_result_in_sight(asgi_server, browser, tenant_a, tmp_path, language):
    """Every column of the export, long remarks included: the table scrolls inside its frame,
    the row's number, its result and the column headers stay in place, long values wrap."""
    owner = tenant_a.owner
    owner.language = language
    owner.save(update_fields=["language"])
    SubjectFactory(company=tenant_a.company, job_number="H1", name="林志明", subject_type="employee")
    rows = "".join(
        f"E{i},員工{i},Person Number {i},employee,person{i}@a.example,0912-345-{i:03},研發部,資深軟體工程師,"
        f"2024/1/2,,,,,{LONG_REMARK},0\n"
        for i in range(30)
    )
    rows += ",訪客,Guest,visitor,,,,,,2026/5/2 09:00,2026/5/2 18:00,H1,洽談年度維護合約與新門禁系統導入時程,,0\n"
    rows += "E0,重複,Again,employee,,,,,soon,,,,,,maybe\n"  # errors in a wide row
    (tmp_path / "wide.csv").write_text(WIDE_HEADER + rows, encoding="utf-8")
    page = browser.new_context(
        viewport={"width": 1366, "height": 800}, locale=language, timezone_id="Asia/Taipei"
    ).new_page()
    sign_in(page, asgi_server, "a-owner@a")
    upload(page, asgi_server, tmp_path / "wide.csv")
    page.goto(page.url.split("?")[0] + "?show=all")
    page.wait_for_selector("table.import-preview")

    frame = page.locator(".import-table-wrap")
    box = frame.bounding_box()
    assert box["x"] + box["width"] <= 1366  # the page itself does not scroll sideways
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    # A long remark wraps inside a column of bounded width.
    remark = page.locator("#row-2 td").nth(13)
    assert remark.bounding_box()["width"] < 320 and remark.bounding_box()["height"] > 40

    def left(selector):
        return page.locator(selector).bounding_box()["x"]

    before = left("#row-2 .row-number"), left("#row-2 .import-type")
    name_before = left("#row-2 td:nth-child(4)")
    header_before = page.locator("thead .row-number").bounding_box()["y"]
    frame.evaluate("(el) => { el.scrollLeft = el.scrollWidth; el.scrollTop = 600; }")
    page.wait_for_timeout(100)
    # Scrolled to the last column and down: the row's number and result stay at the left,
    # the column headers at the top of the frame, while the other columns moved.
    assert (left("#row-2 .row-number"), left("#row-2 .import-type")) == before
    assert left("#row-2 td:nth-child(4)") < name_before - 300
    assert abs(page.locator("thead .row-number").bounding_box()["y"] - header_before) < 2
    assert page.locator("#row-20 td.import-type").is_visible()
    screenshot(page, f"import-wide-{language}")
    # The errors of the last row, all of them, in place.
    page.goto(page.url.split("?")[0] + "?show=errors")
    problems = page.locator("#row-33 .cell-errors").all_inner_texts()
    assert len(problems) == 3, problems  # job number twice, the date, the yes/no
    frame.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
    screenshot(page, f"import-wide-errors-{language}")


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_big_files_progress_bar_follows_its_job(asgi_server, browser, tenant_a, tmp_path, settings, language):
    from playwright.sync_api import expect

    settings.SUBJECT_IMPORT_INLINE_MAX_BYTES = 0  # every file goes through jobs
    settings.JOBS_INLINE = True  # which run at once, as in the embedded shape
    settings.JOBS_INLINE_DETACH = False  # in the request's thread, so the test reads the result
    owner = tenant_a.owner
    owner.language = language
    owner.save(update_fields=["language"])
    page = browser.new_context(
        viewport={"width": 1366, "height": 700}, locale=language, timezone_id="Asia/Taipei"
    ).new_page()
    sign_in(page, asgi_server, "a-owner@a")
    rows = "".join(f"E{i},Person {i},employee,,,,,,\n" for i in range(300))
    (tmp_path / "big.csv").write_text(HEADER + rows, encoding="utf-8")
    upload(page, asgi_server, tmp_path / "big.csv")  # the embedded shape ran the job at once
    name = page.url.rstrip("/").rsplit("/", 1)[-1]

    # A confirm job still running: the page shows its progress and no live button.
    job = Job.objects.create(company=tenant_a.company, kind="subjects.import", state=JobState.RUNNING,
                             done=120, total=300, timeout=600, started_by=owner)  # fmt: skip
    pending = imports.pending_load(name)
    pending.confirm_job = job.pk
    imports.pending_save(pending)
    page.goto(page.url)
    page.wait_for_selector("#import-progress progress")
    assert page.locator("#import-progress progress").get_attribute("value") == "120"
    assert page.locator("input[type=submit][disabled]").count() == 1
    Job.objects.filter(pk=job.pk).update(done=210)
    expect(page.locator("#import-progress .progress-text")).to_contain_text("210 / 300 (70%)", timeout=10_000)
    screenshot(page, f"import-progress-{language}")

    # The job fails (say, someone took an e-mail meanwhile): the page reloads and says so.
    pending = imports.pending_load(name)
    pending.outcome = {"ok": False, "error": ""}
    imports.pending_save(pending)
    Job.objects.filter(pk=job.pk).update(state=JobState.DONE, done=300)
    page.wait_for_selector("p.errornote", timeout=10_000)
    assert page.locator("#import-progress").count() == 0
