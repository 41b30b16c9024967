"""The admin's bulk photo upload in a real headless Chromium: from the subjects list to the
preview, then the progress bar until the photos are stored and enrolled, in English and in
Traditional Chinese, with no Content-Security-Policy violation on the way.

In the embedded shape the jobs run inline, in the confirming request; with Redis (the
production shape, as CI runs it) they wait in the queue until a real RQ worker runs them,
and the page shows them waiting first."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import translation

from subjects.models import Photo, PhotoStatus
from tests.factories import SubjectFactory
from tests.screenshots import screenshot
from tests.subjects.zips import astronaut_jpeg, hopper_png, other_jpeg, zip_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def chinese(text) -> str:
    with translation.override("zh-hant"):
        return str(text)


@pytest.fixture
def default_queue():
    """With Redis: the queue the confirmation's job and the enrolment jobs go to, empty
    before and after the test. None in the embedded shape, where jobs run inline."""
    if settings.JOBS_INLINE:
        yield None
        return
    import django_rq

    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def work(queue) -> None:
    """Run the queued jobs as `manage.py rqworker --burst` would: the store job, then the
    enrolment jobs it queues, until the queue is empty (in this thread: RQ's worker wants
    the main thread for its signal handlers)."""
    from rq import SimpleWorker

    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_hr_uploads_a_zip_previews_it_and_follows_the_progress_bar(
    asgi_server, client, browser, tenant_a, tmp_path, language, default_queue
):
    SubjectFactory(company=tenant_a.company, name="陳美玲", job_number="E-0042")
    SubjectFactory(company=tenant_a.company, name="林志明", job_number="E-0043")
    archive = tmp_path / "lobby team.zip"
    archive.write_bytes(
        zip_bytes(
            {
                "lobby/E-0042.jpg": astronaut_jpeg(),
                "lobby/E-0043.PNG": hopper_png(),
                "lobby/E-0099.jpg": other_jpeg(),
                "lobby/notes.txt": b"bring badges",
                "__MACOSX/lobby/._E-0042.jpg": b"\0",
            }
        )
    )
    client.force_login(tenant_a.admin)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, extra_http_headers={"Accept-Language": language}
    )
    context.add_init_script(RECORD_VIOLATIONS)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}])
    page = context.new_page()
    violations: list[str] = []

    def check_policy():
        violations.extend(page.evaluate("() => window.__csp"))

    with translation.override(language):
        from django.utils.translation import gettext as _

        link_text = _("Bulk photo upload")
        unknown = _("No subject of your company has this job number.")
        finished = _("Finished")
        waiting = _("Reading and storing the photos: %(done)d of %(total)d") % {"done": 0, "total": 2}

    page.goto(f"{asgi_server}/admin/subjects/subject/")
    page.click(f"text={link_text}")
    page.wait_for_selector("#bulk-upload-form")
    check_policy()
    screenshot(page, f"bulk-upload-form-{language}", tmp_path)

    page.set_input_files("input[name=archive]", str(archive))
    page.click("#bulk-upload-form input[type=submit]")
    page.wait_for_selector("#bulk-files")
    check_policy()
    rows = page.locator("#bulk-files tbody tr")
    assert rows.count() == 4  # the __MACOSX shadow file is not listed
    texts = [rows.nth(index).inner_text() for index in range(4)]
    assert "陳美玲" in texts[0] and "林志明" in texts[1]
    assert unknown in texts[2]
    assert page.locator("#bulk-files tr.bulk-ok").count() == 2
    assert not Photo.objects.for_company(tenant_a.company).exists()  # a preview stores nothing
    screenshot(page, f"bulk-upload-preview-{language}", tmp_path)

    page.click("form.bulk-confirm input[type=submit]")
    page.wait_for_selector("#bulk-progress")
    if default_queue is not None:
        # The job waits for a worker, and the page says so, until one runs it.
        page.wait_for_function(
            "(text) => document.getElementById('bulk-progress-text').textContent === text", arg=waiting
        )
        assert page.inner_text("#bulk-working") == _working_label(language)
        assert page.locator("#bulk-files tr[data-status=stored]").count() == 0
        work(default_queue)
    stored_rows = "() => document.querySelectorAll('#bulk-files tr[data-status=stored]').length === 2"
    page.wait_for_function(stored_rows, timeout=60_000)
    photos = list(Photo.objects.for_company(tenant_a.company).order_by("pk"))
    assert len(photos) == 2
    stored = [rows.nth(index).get_attribute("data-status") for index in range(4)]
    assert stored == ["stored", "stored", "job_number_unknown", "photo_invalid"]
    # Each stored photo's enrolment job runs the face engine; the bar follows it to the end.
    page.wait_for_function(
        "(label) => document.getElementById('bulk-working').textContent.trim() === label", arg=finished, timeout=30_000
    )
    assert page.locator("#bulk-working").is_disabled()
    assert page.locator("#bulk-progress-bar").evaluate("bar => bar.value === bar.max && bar.max === 2")
    ok = sum(photo.status == PhotoStatus.OK for photo in Photo.objects.for_company(tenant_a.company))
    with translation.override(language):
        from django.utils.translation import ngettext

        done = ngettext(
            "Done: %(stored)d photo stored, %(refused)d left out (faces: %(ok)d usable, %(rejected)d rejected)",
            "Done: %(stored)d photos stored, %(refused)d left out (faces: %(ok)d usable, %(rejected)d rejected)",
            2,
        ) % {"stored": 2, "refused": 2, "ok": ok, "rejected": 2 - ok}
    assert page.inner_text("#bulk-progress-text") == done
    check_policy()
    screenshot(page, f"bulk-upload-progress-{language}", tmp_path)
    assert violations == []


def _working_label(language: str) -> str:
    with translation.override(language):
        return translation.gettext("Working…")
