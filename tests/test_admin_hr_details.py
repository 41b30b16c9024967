"""Details an HR user meets first: the subjects list, a device key shown once, the admin home."""

from __future__ import annotations

import csv
import io
import re

import pytest

from subjects.models import Subject
from tests.factories import PhotoFactory, SubjectFactory

pytestmark = pytest.mark.django_db
SUBJECTS = "/admin/subjects/subject/"


def listed(client, **params) -> set[str]:
    response = client.get(SUBJECTS, params, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return {subject.job_number for subject in response.context["cl"].result_list}


def test_archived_people_are_hidden_until_the_filter_asks_for_them(client, tenant_a):
    SubjectFactory(company=tenant_a.company, job_number="E1", name="Here")
    SubjectFactory(company=tenant_a.company, job_number="E2", name="Gone", archived=True)
    client.force_login(tenant_a.viewer)
    assert listed(client) == {"E1"}
    assert listed(client, archived__exact="1") == {"E2"}
    assert listed(client, archived__exact="all") == {"E1", "E2"}
    page = client.get(SUBJECTS, {"archived__exact": "all"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="archived-badge">archived<' in page  # a word, not a red cross
    assert "icon-no.svg" not in page


def test_the_list_searches_the_romanised_name_and_shows_it_under_the_name(client, tenant_a, tenant_b):
    SubjectFactory(company=tenant_a.company, job_number="E1", name="林志明", english_name="Lin Chih-ming")
    SubjectFactory(company=tenant_a.company, job_number="E2", name="陳美玲")
    SubjectFactory(company=tenant_b.company, job_number="E9", name="林志明", english_name="Lin Chih-ming")
    client.force_login(tenant_a.viewer)
    assert listed(client, q="chih-ming") == {"E1"}
    page = client.get(SUBJECTS, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<span class="english-name">Lin Chih-ming</span>' in page


def test_the_romanised_name_goes_through_the_api_and_the_export(api, client, tenant_a):
    created = api(tenant_a.admin).post(
        "/api/v1/subjects", {"name": "王大同", "english_name": "Wang Da-tong", "job_number": "E7"}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["english_name"] == "Wang Da-tong"
    assert Subject.objects.for_company(tenant_a.company).get(job_number="E7").english_name == "Wang Da-tong"
    client.force_login(tenant_a.admin)
    exported = client.post("/admin/subjects/subject/export/", {"format": "0", "resource": "0", **{
        f"subjectresource_{name}": "on" for name in ("job_number", "name", "english_name")}})  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows == [{"job_number": "E7", "name": "王大同", "english_name": "Wang Da-tong"}]


def test_the_export_form_preselects_csv_and_says_the_filter_applies(client, tenant_a):
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/subjects/subject/export/?subject_type__exact=employee", HTTP_ACCEPT_LANGUAGE="en")
    form = page.context["form"]
    formats = dict(form.fields["format"].choices)
    assert formats[form.initial["format"]] == "csv"
    text = page.content.decode()
    assert "only the rows it shows now are exported" in text
    unfiltered = client.get("/admin/subjects/subject/export/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No filter is applied" in unfiltered


def test_a_new_device_key_is_shown_once_in_a_box_with_a_copy_button(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post("/admin/devices/box/add/", {"name": "Lobby box", "max_screens": "4"}, follow=True,
                           HTTP_ACCEPT_LANGUAGE="en")  # fmt: skip
    page = response.content.decode()
    assert 'class="device-key-box"' in page
    assert '<code class="device-key" id="device-key-box-' in page
    assert 'data-copy-target="device-key-box-' in page
    assert "It will not be shown again" in page


def test_the_admin_home_sums_up_the_day_and_links_the_live_dashboard(client, tenant_a, tenant_b):
    from subjects.models import PhotoStatus

    PhotoFactory(company=tenant_a.company, status=PhotoStatus.REJECTED, reason="no_face")
    PhotoFactory(company=tenant_b.company, status=PhotoStatus.REJECTED, reason="no_face")
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="home-summary"' in page
    assert "<b>1</b> photo rejected" in page
    assert "<b>0</b> arrived today" in page
    assert 'href="/dashboard/"' in page
    assert '<link rel="icon" href="/static/kangaroo/favicon.svg"' in page


def test_the_home_counts_offline_devices_of_every_kind_and_links_each_kinds_offline_list(client, tenant_a, tenant_b):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import BoxFactory, PadFactory, ScreenFactory, TVBoxFactory

    silent, fresh = timezone.now() - timedelta(hours=2), timezone.now()
    BoxFactory(company=tenant_a.company, name="Lobby box", last_seen_at=silent)
    BoxFactory(company=tenant_a.company, name="Hall box", last_seen_at=fresh)
    ScreenFactory(company=tenant_a.company, name="Front door", last_seen_at=silent)
    ScreenFactory(company=tenant_a.company, name="Back door", last_seen_at=silent)
    PadFactory(company=tenant_a.company, name="Desk pad", last_seen_at=fresh)
    TVBoxFactory(company=tenant_a.company, name="Lobby TV")  # never seen: not offline
    PadFactory(company=tenant_b.company, name="Their pad", last_seen_at=silent)  # B's
    client.force_login(tenant_a.viewer)

    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    figure = re.search(r'<div class="summary-figure devices-offline alert">(.*?)</div>', page, re.S).group(1)
    assert re.search(r"<b>3</b> devices offline", figure)
    links = dict(re.findall(r'<a href="([^"]+)">([^<]+)</a>', figure))
    assert links == {
        "/admin/devices/box/?status=offline": "1 recognition box",
        "/admin/devices/screen/?status=offline": "2 screens",
    }
    listed = {url: {d.name for d in client.get(url).context["cl"].result_list} for url in links}
    assert listed == {
        "/admin/devices/box/?status=offline": {"Lobby box"},
        "/admin/devices/screen/?status=offline": {"Front door", "Back door"},
    }
    assert sum(len(names) for names in listed.values()) == 3  # the figure is what the links show

    from django.utils.translation import override

    from devices.models import Screen

    tenant_a.viewer.language = "zh-hant"
    tenant_a.viewer.save(update_fields=["language"])
    chinese = client.get("/admin/").content.decode()
    with override("zh-hant"):
        assert f'status=offline">2 {Screen._meta.verbose_name_plural}</a>' in chinese


def test_with_no_device_offline_the_figure_is_zero_and_links_nowhere(client, tenant_a, tenant_b):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import PadFactory

    PadFactory(company=tenant_b.company, name="Their pad", last_seen_at=timezone.now() - timedelta(hours=2))
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(
        r'<div class="summary-figure devices-offline">\s*<span><b>0</b> devices offline</span>\s*</div>', page
    )
    assert "?status=offline" not in page

    from tests.factories import TVBoxFactory

    TVBoxFactory(company=tenant_a.company, name="Lobby TV", last_seen_at=timezone.now() - timedelta(hours=2))
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<b>1</b> device offline</span>" in page  # one device, in the singular
    assert '<a href="/admin/devices/tvbox/?status=offline">1 TV box</a>' in page


@pytest.mark.browser
def test_the_copy_button_copies_the_key(asgi_server, client, browser, tenant_a):
    from tests.events.test_browser import signed_in_page

    page = signed_in_page(browser, client, asgi_server, tenant_a.admin)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=asgi_server)
    page.goto(f"{asgi_server}/admin/devices/box/add/")
    page.fill("#id_name", "Lobby box")
    page.fill("#id_max_screens", "4")
    page.click("input[name=_save]")
    key = page.inner_text(".device-key-box .device-key")
    assert key.startswith("kgr_box_")
    width = page.evaluate("() => document.querySelector('.device-key').scrollWidth")
    assert width <= page.evaluate("() => document.querySelector('.device-key').clientWidth")  # it wraps
    page.click(".device-key-box .copy-key")
    page.wait_for_selector(".copy-key.copied", timeout=5_000)
    assert page.evaluate("() => navigator.clipboard.readText()") == key


def test_photo_rows_show_status_and_reason_in_words_and_the_upload_time(client, tenant_a):
    from django.utils import timezone
    from django.utils.translation import override

    from kangaroo.errors import PHOTO_INVALID
    from subjects.models import PhotoStatus

    photo = PhotoFactory(company=tenant_a.company, status=PhotoStatus.REJECTED, reason="invalid")
    client.force_login(tenant_a.viewer)
    page = client.get(f"/admin/subjects/subject/{photo.subject_id}/change/", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    with override("en"):
        assert str(PHOTO_INVALID.message) in text  # the code "invalid" read through the error registry
    assert ">Rejected<" in text
    uploaded = timezone.localtime(photo.created_at, tenant_a.company.zone).strftime("%Y-%m-%d %H:%M")
    assert uploaded in text
    assert "<p>None</p>" not in text


def test_a_person_seen_twice_today_counts_once_on_the_home_page(client, tenant_a, door_a):
    from django.utils import timezone

    from events.models import Event, EventKind

    mei = SubjectFactory(company=tenant_a.company, name="陳美玲")
    now = timezone.now()
    for direction in ("in", "out"):
        Event.objects.create(company=tenant_a.company, kind=EventKind.RECOGNIZED, subject=mei, subject_name=mei.name,
                             screen=door_a.entrance, direction=direction, happened_at=now, received_at=now)  # fmt: skip
    client.force_login(tenant_a.viewer)
    assert "<b>1</b> arrived today" in client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
