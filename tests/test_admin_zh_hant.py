"""Every admin page a company's HR sees, rendered in Traditional Chinese, has no English UI left.

The pages are found from the admin site's registry, not listed by hand: a new model admin
(its changelist, add and change forms, import and export pages) is checked as soon as it is
registered. The company's own data is Chinese, so any English word found on a page is the
interface's. The known words are the interface's usual ones (buttons, filters, choice values
shown raw); a page may show product and format names (Kangaroo, CSV) and the language switch's
"English", which names itself.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Role
from devices import services as device_services
from events.models import Event, EventKind
from subjects import photo_uploads
from subjects import services as subject_services
from subjects.models import PhotoUpload, Subject
from tests.factories import CompanyFactory, PhotoFactory, UserFactory
from tests.subjects.zips import other_jpeg, uploaded, zip_bytes

pytestmark = pytest.mark.django_db

# Words of Django's, django-import-export's and Kangaroo's own interface, and choice values
# that a list would show raw. Matched as whole words, case-insensitively.
ENGLISH_UI_WORDS = [
    "add", "save", "delete", "search", "filter", "import", "export", "submit", "history", "home",
    "yes", "no", "none", "unknown", "all", "action", "go", "select", "change", "view", "show",
    "hide", "today", "now", "choose", "format", "resource", "file", "encoding", "confirm", "log out",
    "welcome", "attendance", "name", "date", "clear", "remove", "employee", "visitor", "vip",
    "recognized", "stranger", "online", "offline", "never", "status", "photo", "photos", "pending",
    "rejected", "ok", "device", "devices", "screen", "box", "department", "subject", "subjects",
    "events", "event", "company", "user", "users", "job", "jobs", "key", "light", "dark", "in",
    "out", "both", "entry", "exit", "type", "archived", "active", "the", "of", "and", "to", "by",
    "this", "selected", "items", "results", "total", "page", "previous", "next",
    "username", "required", "characters", "letters", "digits", "only", "result", "open", "live", "dashboard",
    "hours", "ahead", "behind", "server", "computer",
]  # fmt: skip
ALLOWED = {"Kangaroo", "English", "CSV", "XLSX", "XLS", "JSON", "TSV", "ODS", "HTML", "YAML", "VIP", "UTC"}
WORD = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH_UI_WORDS) + r")\b", re.IGNORECASE)


class VisibleText(HTMLParser):
    """The text a person reads: element text, and the words on buttons and in placeholders,
    titles and alt texts; never scripts, styles, or hidden inputs."""

    # Code is quoted, not interface: a file's column names, a URL's form. `bdi` isolates data
    # inside a sentence, such as the salt and hash of a password (random letters like "iN").
    # An element that declares another language than Chinese (`lang="en"`) holds data written
    # in it, such as the retention policy's English text an owner edits: not interface.
    SKIP = {"script", "style", "template", "code", "bdi"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0
        self.foreign: list = []  # [tag, depth] of the element in another language being read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.foreign:
            self.foreign[1] += tag == self.foreign[0]
            return
        if attrs.get("lang") and not attrs["lang"].lower().startswith("zh") and tag not in self.VOID:
            self.foreign = [tag, 1]
            return
        if tag in self.SKIP:
            self.skipping += 1
        if tag == "input" and attrs.get("type") in ("submit", "button", "reset") and attrs.get("value"):
            self.parts.append(attrs["value"])
        for name in ("placeholder", "title", "alt", "aria-label"):
            if attrs.get(name):
                self.parts.append(attrs[name])

    def handle_endtag(self, tag):
        if self.foreign:
            self.foreign[1] -= tag == self.foreign[0]
            if not self.foreign[1]:
                self.foreign = []
            return
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping and not self.foreign:
            self.parts.append(data)


def english_words(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    found = []
    for part in parser.parts:
        part = re.sub(r"\w+://\S+|\{\w+\}", " ", part)  # an address's example, a placeholder's name
        for match in WORD.finditer(part):
            if match.group(0) not in ALLOWED:
                found.append(match.group(0))
    return found


@pytest.fixture
def chinese_company():
    """A company whose own data is Chinese, with a row of every kind its admin lists."""
    company = CompanyFactory(slug="tw", name="袋鼠科技")
    owner = UserFactory(company=company, role=Role.OWNER, username="王經理", email="owner@tw.example")
    owner.language = "zh-hant"
    owner.save(update_fields=["language"])
    department = subject_services.department_create(company=company, actor=owner, name="研發部")
    host = subject_services.subject_create(
        company=company, actor=owner, name="林志明", subject_type="employee", job_number="E001", department=department
    )
    visitor = subject_services.subject_create(
        company=company, actor=owner, name="陳美玲", subject_type="visitor", host=host, purpose="面試"
    )
    PhotoFactory(company=company, subject=host)
    kwargs = {"company": company, "actor": owner}
    box, _ = device_services.box_create(name="大廳盒", max_screens=2, location="一樓", **kwargs)
    entrance, _ = device_services.screen_create(
        name="大門入口", camera_url="rtsp://cam:secret@10.0.0.5/in", direction="in", box=box, location="一樓", **kwargs
    )
    device_services.pad_create(name="櫃台平板", screen=entrance, location="一樓", **kwargs)
    device_services.tvbox_create(name="大廳電視", screens=[entrance], location="一樓", **kwargs)
    now = timezone.now()
    for subject in (host, visitor):
        Event.objects.create(
            company=company,
            kind=EventKind.RECOGNIZED,
            subject=subject,
            subject_name=subject.name,
            subject_type=subject.subject_type,
            subject_job_number=subject.job_number,
            device_kind="box",
            device_id=box.pk,
            device_name=box.name,
            screen=entrance,
            direction="in",
            confidence=0.93,
            happened_at=now,
            received_at=now,
        )
    Event.objects.create(company=company, kind=EventKind.STRANGER, device_name=box.name, screen=entrance,
                         direction="in", happened_at=now, received_at=now)  # fmt: skip
    archive = zip_bytes({f"{host.job_number}.jpg": other_jpeg(), "E-404.jpg": other_jpeg(), "名單.txt": b"x"})
    photo_uploads.photo_upload_preview(company=company, actor=owner, upload=uploaded(archive, "一樓.zip"))
    return company, owner


def admin_pages(client, company) -> list[str]:
    """Every page of the admin a company owner may open: index, app pages, and per model
    admin its changelist, add and change forms, history, import and export pages."""
    previews = import_preview_pages(client, company)  # first: its job is then on the jobs pages
    urls = [reverse("admin:index"), reverse("admin:password_change")]
    apps = set()
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        request = client.get(reverse("admin:index")).wsgi_request
        if not model_admin.has_module_permission(request):
            continue
        apps.add(model._meta.app_label)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(request):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
        obj = model_admin.get_queryset(request).first()
        if obj is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            urls.append(reverse("admin:{}_{}_history".format(*info), args=[obj.pk]))
        for extra in ("import", "export"):
            try:
                url = reverse(f"admin:{info[0]}_{info[1]}_{extra}")
            except NoReverseMatch:
                continue
            if extra == "export" and model._meta.model_name == "attendanceday":
                continue  # a file, not a page
            urls.append(url)
    urls += [reverse("admin:app_list", args=[app]) for app in sorted(apps)]
    # A search: its count of results out of the total, and the link that shows them all.
    urls.append(reverse("admin:subjects_subject_changelist") + "?q=林志明")
    # Pages of their own: the monthly timesheet, and one employee's month in it.
    timesheet = reverse("admin:events_attendanceday_timesheet")
    employee = Subject.objects.for_company(company).filter(subject_type="employee").first()
    urls += [timesheet, f"{timesheet}?employee={employee.pk}"]
    # The bulk photo upload: its form, and the preview of an archive.
    urls.append(reverse("admin:subjects_subject_bulk_upload"))
    upload = PhotoUpload.objects.for_company(company).first()
    if upload is not None:
        urls.append(reverse("admin:subjects_subject_bulk_preview", args=[upload.pk]))
    return urls + previews


# A file as HR would write it: a changed title, a new person, and rows with errors (a date
# that does not exist, a job number twice, an employee without one).
IMPORT_HEADER = "job_number,name,department,title,start_date\n"
IMPORT_WITH_ERRORS = IMPORT_HEADER + (
    "E001,林志明,研發部,資深工程師,2024/1/2\nE002,王小明,研發部,工程師,2026/13/40\nE002,陳大文,業務部,,\n,黃小華,,,\n"
)
IMPORT_VALID = IMPORT_HEADER + "E001,林志明,研發部,資深工程師,2024/1/2\nE003,張美華,業務部,專員,2025/7/1\n"


def import_preview_pages(client, company) -> list[str]:
    """The import's preview pages: a file with errors (every row, then the errors only), a
    valid one with its confirm button, and a preview whose import job is running."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import Job, JobState
    from subjects import imports

    def upload(content: str) -> str:
        response = client.post(
            reverse("admin:subjects_subject_import"),
            {"import_file": SimpleUploadedFile("人員.csv", content.encode("utf-8")), "format": "0", "resource": "0"},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        return response.url

    with_errors, valid, running = upload(IMPORT_WITH_ERRORS), upload(IMPORT_VALID), upload(IMPORT_VALID)
    pending = imports.pending_load(running.rstrip("/").rsplit("/", 1)[-1])
    pending.confirm_job = Job.objects.create(company=company, kind=imports.IMPORT_CONFIRM_KIND, state=JobState.RUNNING,
                                             done=1, total=2, timeout=600).pk  # fmt: skip
    imports.pending_save(pending)
    return [with_errors, f"{with_errors}?show=all", valid, f"{valid}?show=update", running]


def test_every_admin_page_of_a_chinese_user_is_chinese(client, chinese_company):
    company, owner = chinese_company
    client.force_login(owner)
    pages = admin_pages(client, company)
    assert len(pages) > 30  # the registry walk found the admin
    english = {}
    for url in pages:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200, url
        html = response.content.decode()
        assert 'lang="zh-hant"' in html, url
        words = english_words(html)
        if words:
            english[url] = sorted(set(words))
    assert english == {}


def test_the_check_finds_english_words():
    # The sweep above would pass on an empty parse: prove it sees what a person sees.
    assert english_words('<button>Import</button><p>員工</p><input type="submit" value="Save">') == ["Import", "Save"]
    assert english_words("<script>var all = 1;</script><p>Kangaroo · CSV</p>") == []
    assert english_words('<option value="employee">員工</option><td>employee</td>') == ["employee"]
    # Words that once slipped through: a search's count and link, the user form's help.
    assert english_words('<span class="small quiet">1 result (<a href="?">2 total</a>)</span>') == ["result", "total"]
    assert english_words('<a href="?">Show all</a><label>Username:</label>') == ["Show", "all", "Username"]
    assert english_words('<div class="help">Required. 150 characters or fewer.</div>') == ["Required", "characters"]
    # Data declared English (the policy's English text) is not interface; what follows it is.
    assert english_words('<textarea lang="en">Photos of the visitor</textarea><p>Save</p>') == ["Save"]
    assert english_words('<div lang="en"><div>all</div>photos</div><input lang="en"><p>Filter</p>') == ["Filter"]
