"""Times are the company's: every admin and API request of a company's user, and every
device request, reads and shows times in the company's time zone (Asia/Taipei, UTC+8, for
the test companies), whatever the server's zone (UTC)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from subjects.models import Subject
from tests.devices.conftest import device_client
from tests.factories import EventFactory, SubjectFactory
from tests.subjects.test_admin_import import confirm, preview

pytestmark = pytest.mark.django_db

# 09:00–18:00 in Taipei on 2 March 2026.
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

ADMIN_FORM = {
    "consents-TOTAL_FORMS": "0",
    "consents-INITIAL_FORMS": "0",
    "consents-MIN_NUM_FORMS": "0",
    "consents-MAX_NUM_FORMS": "1000",
    "photos-TOTAL_FORMS": "0",
    "photos-INITIAL_FORMS": "0",
    "photos-MIN_NUM_FORMS": "0",
    "photos-MAX_NUM_FORMS": "5",
    "subject_type": "visitor",
    "job_number": "",
    "email": "",
    "phone": "",
}


def visitor_window(company, name):
    guest = Subject.objects.for_company(company).get(name=name)
    return guest.visit_start, guest.visit_end


def test_a_visit_window_typed_in_the_admin_the_api_and_an_import_is_the_same_instant(client, api, tenant_a):
    company = tenant_a.company
    assert company.time_zone == "Asia/Taipei"

    client.force_login(tenant_a.admin)
    added = client.post(
        "/admin/subjects/subject/add/",
        ADMIN_FORM
        | {
            "name": "Form Guest",
            "visit_start_0": "2026-03-02",
            "visit_start_1": "09:00:00",
            "visit_end_0": "2026-03-02",
            "visit_end_1": "18:00:00",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]

    created = api(tenant_a.admin).post(
        "/api/v1/subjects",
        {
            "name": "API Guest",
            "subject_type": "visitor",
            "visit_start": "2026-03-02T09:00:00",
            "visit_end": "2026-03-02T18:00",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    # The API answers in the company's zone too, with the offset that says so.
    assert created.json()["visit_start"] == "2026-03-02T09:00:00+08:00"

    out = io.StringIO()
    csv.writer(out).writerows(
        [
            ["job_number", "name", "subject_type", "visit_start", "visit_end"],
            ["", "File Guest", "visitor", "2026/3/2 09:00", "2026-03-02 18:00"],
        ]
    )
    confirm(client, preview(client, out.getvalue().encode()))

    for name in ("Form Guest", "API Guest", "File Guest"):
        assert visitor_window(company, name) == (START, END), name


def test_the_admin_form_shows_the_companys_wall_clock_time_and_names_the_zone(client, tenant_a):
    guest = SubjectFactory(company=tenant_a.company, subject_type="visitor", visit_start=START, visit_end=END)
    client.force_login(tenant_a.admin)

    page = client.get(f"/admin/subjects/subject/{guest.pk}/change/").content.decode()

    assert re.search(r'name="visit_start_1"[^>]*value="09:00:00"', page)
    assert re.search(r'name="visit_end_1"[^>]*value="18:00:00"', page)
    # The visit's start and end, and a new consent's time (its row and the template of more rows).
    assert page.count('<span class="time-zone">Time zone: Asia/Taipei (UTC+08:00)</span>') == 4


def test_another_companys_admin_sees_its_own_zone(client, tenants):
    _, b = tenants
    b.company.time_zone = "Europe/Berlin"
    b.company.save()
    guest = SubjectFactory(company=b.company, subject_type="visitor", visit_start=START, visit_end=END)
    client.force_login(b.admin)

    page = client.get(f"/admin/subjects/subject/{guest.pk}/change/").content.decode()

    assert re.search(r'name="visit_start_1"[^>]*value="02:00:00"', page)  # CET in March
    assert "Time zone: Europe/Berlin (UTC+01:00)" in page


def test_the_events_list_and_detail_show_the_companys_time(client, tenant_a):
    event = EventFactory(company=tenant_a.company, happened_at=START, received_at=START)
    client.force_login(tenant_a.viewer)

    listing = client.get("/admin/events/event/").content.decode()
    detail = client.get(f"/admin/events/event/{event.pk}/change/").content.decode()

    assert "March 2, 2026, 9 a.m." in listing and "1 a.m." not in listing
    assert "March 2, 2026, 9 a.m." in detail
    # A read-only time names its zone as its help text.
    assert "Time zone: Asia/Taipei (UTC+08:00)" in detail


def test_a_device_sends_its_local_time_without_offset(tenant_a):
    from devices import services

    _, key = services.device_create(company=tenant_a.company, actor=tenant_a.admin, kind="pad", name="Lobby pad")
    local_now = timezone.localtime(timezone.now(), tenant_a.company.zone).replace(tzinfo=None, microsecond=0)

    answer = device_client(key).post("/api/v1/device/heartbeat", {"sent_at": local_now.isoformat()}, format="json")

    # Read in UTC it would be eight hours ahead and refused as a clock from the future.
    assert answer.status_code == 200, answer.json()


def test_the_zone_does_not_outlive_the_request(client, tenant_a):
    client.force_login(tenant_a.admin)
    client.get("/admin/subjects/subject/")
    assert timezone.get_current_timezone_name() == "UTC"


def test_platform_staff_see_the_servers_zone(client, platform_admin, tenant_a):
    guest = SubjectFactory(company=tenant_a.company, subject_type="visitor", visit_start=START, visit_end=END)
    client.force_login(platform_admin)

    page = client.get(f"/admin/subjects/subject/{guest.pk}/change/").content.decode()

    assert re.search(r'name="visit_start_1"[^>]*value="01:00:00"', page)
    assert "Time zone: UTC (UTC+00:00)" in page
