"""Every page carries a Content-Security-Policy without 'unsafe-inline', and the pages
people use load in a real headless Chromium with no violation of it reported."""

from __future__ import annotations

import pytest

from tests.events.conftest import make_door
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

# Collects every violation the browser reports, from the moment a page starts.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/", "/tv/", "/admin/password_reset/"])
def test_every_page_has_a_policy_without_unsafe_inline(client, tenant_a, path):
    response = client.get(path)
    assert response.status_code == 200
    directives = policy(response)
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


def test_the_api_docs_need_no_other_site(client, tenant_a):
    page = client.get("/api/docs/").content.decode()
    assert "cdn" not in page.lower()
    assert "<script>" not in page and "<style>" not in page
    script = client.get("/api/docs/?script")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def _watch(context, messages):
    context.add_init_script(RECORD_VIOLATIONS)

    def on_console(message):
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            messages.append(text)

    context.on("console", lambda page_message: on_console(page_message))


def _violations(page) -> list[str]:
    return page.evaluate("() => window.__csp")


@pytest.mark.browser
def test_the_pages_load_in_chromium_with_no_policy_violation(asgi_server, browser, tenant_a, tmp_path):
    from subjects.models import Subject
    from tests.factories import PhotoFactory, SubjectFactory

    door = make_door(tenant_a, "A")
    # With a photo, so the changelist's thumbnail and the page's preview are drawn too.
    PhotoFactory(company=tenant_a.company, subject=SubjectFactory(company=tenant_a.company, name="陳美玲"))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    console: list[str] = []
    _watch(context, console)
    page = context.new_page()
    seen: dict[str, list[str]] = {}

    def visit(url, ready="body"):
        page.goto(url)
        page.wait_for_selector(ready, timeout=15_000)
        page.wait_for_load_state("networkidle")
        seen[url] = _violations(page)

    # The admin, signed in through its login page.
    visit(f"{asgi_server}/admin/login/", "#id_username")
    page.fill("#id_username", "a-owner@a")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{asgi_server}/admin/")
    seen["after login"] = _violations(page)
    subject = Subject.objects.for_company(tenant_a.company).first()
    for path, ready in [
        ("/admin/", "#content"),
        ("/admin/subjects/subject/", "#result_list"),
        ("/admin/subjects/subject/add/", "#subject_form"),
        (f"/admin/subjects/subject/{subject.pk}/change/", "#subject_form"),
        ("/admin/accounts/user/", "#result_list"),
        (f"/admin/accounts/user/{tenant_a.viewer.pk}/change/", "#user_form"),
        ("/admin/events/event/", "#content"),
        ("/admin/devices/box/", "#result_list"),
        (f"/admin/devices/box/{door.box.pk}/change/", "#box_form"),
        ("/admin/devices/screen/", "#result_list"),
        ("/admin/devices/pad/", "#result_list"),
        ("/admin/devices/tvbox/", "#result_list"),
        ("/admin/subjects/subject/export/", "form.kangaroo-export"),
        ("/admin/events/attendanceday/", "#content"),
        ("/admin/events/attendanceday/timesheet/", "#timesheet-filters"),
        ("/admin/subjects/subject/import/", "input[type=file]"),
    ]:
        visit(f"{asgi_server}{path}", ready)

    # The import preview: a file uploaded, the dry run shown with its confirm form.
    upload = tmp_path / "people.csv"
    upload.write_text("job_number,name,subject_type\nE-900,林志明,employee\n", encoding="utf-8")
    page.set_input_files("input[type=file]", str(upload))
    page.select_option("select[name=format]", value="0")  # CSV
    page.click("#content input[type=submit]")
    page.wait_for_selector("table.import-preview tr.new", timeout=15_000)
    page.wait_for_load_state("networkidle")
    seen["import preview"] = _violations(page)

    visit(f"{asgi_server}/dashboard/", "#connection.live")
    # Picking a screen still reloads the dashboard for it (a listener, no inline handler).
    page.select_option("select[name=screen]", value=str(door.entrance.pk))
    page.wait_for_url(f"**/dashboard/?screen={door.entrance.pk}")
    page.wait_for_selector("#connection.live", timeout=15_000)
    seen["dashboard, one screen"] = _violations(page)
    visit(f"{asgi_server}/api/docs/", ".swagger-ui .info")

    tv = context.new_page()
    tv.goto(f"{asgi_server}/tv/#key={door.tv_key}")
    tv.wait_for_selector("#connection.live", timeout=15_000)
    seen["tv"] = _violations(tv)

    assert {url: found for url, found in seen.items() if found} == {}
    assert console == []
