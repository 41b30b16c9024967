"""A box's gallery lag, from the cursor of its heartbeats: in the API, the admin and the live
dashboard; and the periodic compaction that may send a slow box back to 0."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from devices import jobs
from devices.selectors import gallery_lag, lagging_boxes
from events.selectors import device_counts
from subjects import services
from subjects.models import GalleryChange, GalleryCounter
from subjects.selectors import gallery_sequence
from tests.devices.conftest import device_client
from tests.events.live_client import as_admin, receive

pytestmark = pytest.mark.django_db


def heartbeat(key, cursor):
    response = device_client(key).post("/api/v1/device/heartbeat", {"gallery_cursor": cursor}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def changes(tenant, count, *, minutes_ago=0, start=0):
    people = [
        services.subject_create(company=tenant.company, actor=None, name=f"P{i}", job_number=f"E{i}")
        for i in range(start, start + count)
    ]
    if minutes_ago:
        GalleryChange.objects.for_company(tenant.company).filter(subject_ref__in=[p.pk for p in people]).update(
            at=timezone.now() - timedelta(minutes=minutes_ago)
        )
    return people


def test_a_box_hears_the_latest_number_in_its_heartbeat_answer(register, tenant_a):
    changes(tenant_a, 3)
    _, box_key = register("box", tenant_a)
    _, pad_key = register("pad", tenant_a)
    assert heartbeat(box_key, 0)["gallery_sequence"] == 3
    pad = device_client(pad_key).post("/api/v1/device/heartbeat", {}, format="json").json()
    assert "gallery_sequence" not in pad


def test_the_api_shows_how_far_behind_each_box_is_and_since_when(register, api, tenant_a, settings):
    settings.GALLERY_LAG_SECONDS = 300
    box, key = register("box", tenant_a)
    changes(tenant_a, 2, minutes_ago=10)  # 1, 2
    changes(tenant_a, 3, start=2)  # 3, 4, 5: now
    client = api(tenant_a.viewer)

    heartbeat(key, 5)
    assert client.get(f"/api/v1/boxes/{box.pk}").json()["gallery_lag"] == {
        "changes": 0,
        "since": None,
        "lagging": False,
    }
    heartbeat(key, 2)  # behind by 3, since a moment ago: not lagging yet
    lag = client.get(f"/api/v1/boxes/{box.pk}").json()["gallery_lag"]
    assert (lag["changes"], lag["lagging"]) == (3, False) and lag["since"] is not None
    heartbeat(key, 0)  # behind since the first change, ten minutes ago: lagging
    [listed] = client.get("/api/v1/boxes").json()["results"]
    assert (listed["gallery_lag"]["changes"], listed["gallery_lag"]["lagging"]) == (5, True)


def test_lagging_needs_more_changes_behind_than_the_setting(register, tenant_a, settings):
    box, key = register("box", tenant_a)
    changes(tenant_a, 3, minutes_ago=30)
    heartbeat(key, 1)
    settings.GALLERY_LAG_CHANGES = 2
    box.refresh_from_db()
    assert gallery_lag(box).changes == 2 and not gallery_lag(box).lagging
    settings.GALLERY_LAG_CHANGES = 1
    assert gallery_lag(box).lagging
    assert lagging_boxes(company=tenant_a.company) == [box]


def test_the_admin_box_list_shows_lagging_boxes(register, client, tenant_a):
    slow, slow_key = register("box", tenant_a, name="Slow box")
    _, fresh_key = register("box", tenant_a, name="Fresh box")
    changes(tenant_a, 4, minutes_ago=20)
    heartbeat(slow_key, 1)
    heartbeat(fresh_key, 4)
    client.force_login(tenant_a.admin)
    page = client.get("/admin/devices/box/").content.decode()
    assert page.count('class="device-status device-status-lagging"') == 1
    assert "3 changes behind, since 20\xa0minutes ago" in page
    assert "up to date" in page
    detail = client.get(f"/admin/devices/box/{slow.pk}/change/").content.decode()
    assert "device-status-lagging" in detail


def test_the_admin_home_counts_the_companys_lagging_boxes_and_links_them(register, client, tenant_a, tenant_b):
    _, slow_key = register("box", tenant_a, name="Slow box")
    _, fresh_key = register("box", tenant_a, name="Fresh box")
    _, theirs_key = register("box", tenant_b, name="Their box")
    changes(tenant_a, 4, minutes_ago=20)
    changes(tenant_b, 4, minutes_ago=20)
    heartbeat(slow_key, 1)
    heartbeat(fresh_key, 4)
    heartbeat(theirs_key, 0)  # behind too, but B's
    client.force_login(tenant_a.viewer)

    home = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(
        r'<a class="summary-figure alert" href="/admin/devices/box/\?gallery=lagging">\s*<b>1</b> box lagging</a>',
        home,
    )
    listed = client.get("/admin/devices/box/?gallery=lagging")
    assert [box.name for box in listed.context["cl"].result_list] == ["Slow box"]
    assert {box.name for box in client.get("/admin/devices/box/").context["cl"].result_list} == {
        "Fresh box",
        "Slow box",
    }


def test_the_live_dashboard_counts_lagging_boxes(register, tenant_a, tenant_b):
    _, key = register("box", tenant_a)
    register("box", tenant_b)
    changes(tenant_a, 2, minutes_ago=20)
    changes(tenant_b, 2, minutes_ago=20)  # B's box is behind too, but it is not A's
    heartbeat(key, 0)
    assert device_counts(company=tenant_a.company)["lagging"] == 1


def test_the_dashboard_hello_carries_the_lagging_count(asgi_server, client, register, tenant_a):
    _, key = register("box", tenant_a)
    changes(tenant_a, 2, minutes_ago=20)
    heartbeat(key, 0)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        assert receive(socket, "hello")["devices"]["lagging"] == 1


def test_an_open_dashboard_hears_when_a_box_starts_and_stops_lagging(
    asgi_server, client, register, tenant_a, tenant_b, settings
):
    settings.LIVE_TICK_SECONDS = 1
    _, key = register("box", tenant_a)
    _, theirs = register("box", tenant_b)
    heartbeat(key, 0)
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        assert receive(socket, "hello")["devices"]["lagging"] == 0
        # Another company's box falling behind is not ours to count.
        changes(tenant_b, 2, minutes_ago=20)
        heartbeat(theirs, 0)
        # Ours falls behind long enough ago: no event says so, the next tick does.
        changes(tenant_a, 2, minutes_ago=20)
        assert receive(socket, "devices", timeout=5) == {"type": "devices", "lagging": 1}
        heartbeat(key, gallery_sequence(tenant_a.company.pk))
        assert receive(socket, "devices", timeout=5) == {"type": "devices", "lagging": 0}
        # A tick that finds the same figure sends nothing.
        kinds: list[str] = []
        while kinds.count("tick") < 2:
            kinds.append(json.loads(socket.recv(timeout=5))["type"])
        assert "devices" not in kinds


def test_periodic_compaction_keeps_what_the_slowest_box_has_not_read(register, tenant_a, tenant_b):
    _, slow_key = register("box", tenant_a)
    _, fast_key = register("box", tenant_a)
    kept, gone, late = changes(tenant_a, 3)  # 1, 2, 3
    services.subject_update(company=tenant_a.company, actor=None, subject=kept, name="Renamed")  # 4
    services.subject_delete(company=tenant_a.company, actor=None, subject=gone)  # 5
    services.subject_delete(company=tenant_a.company, actor=None, subject=late)  # 6
    heartbeat(slow_key, 5)
    heartbeat(fast_key, 6)
    changes(tenant_b, 1)
    assert jobs.gallery_compact() == 4  # rows 1, 2, 3 superseded; tombstone 5 read by both boxes
    rows = GalleryChange.objects.for_company(tenant_a.company).values_list("sequence", flat=True)
    assert list(rows.order_by("sequence")) == [4, 6]  # 6 is unread by the slow box
    assert GalleryCounter.objects.for_company(tenant_a.company).get().compacted_through == 5
    assert gallery_sequence(tenant_b.company.pk) == 1
    # The slow box at 5 goes on; a box at 4 would have missed a deletion: back to 0.
    assert device_client(slow_key).get("/api/v1/device/gallery", {"after": 5}).status_code == 200
    stale = device_client(slow_key).get("/api/v1/device/gallery", {"after": 4})
    assert stale.json()["error"]["code"] == "gallery_resync_required"


def test_compaction_runs_from_the_periodic_runner(tenant_a):
    from kangaroo.schedule import periodic_tasks

    assert "gallery.compact" in {task.name for task in periodic_tasks()}
    person = changes(tenant_a, 1)[0]
    services.subject_update(company=tenant_a.company, actor=None, subject=person, name="Again")
    call_command("periodic", "--once")
    assert GalleryChange.objects.for_company(tenant_a.company).count() == 1
