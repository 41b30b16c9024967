"""Status comes from the last heartbeat and DEVICE_OFFLINE_AFTER; the watcher records
online -> offline once; nothing ever contacts a device."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices import jobs, selectors, services
from devices.models import Box, DeviceStatusChange, Pad, Status
from tests.factories import BoxFactory, PadFactory, ScreenFactory, TVBoxFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _grace_period(settings):
    settings.DEVICE_OFFLINE_AFTER = 90


def seen(seconds_ago):
    return NOW - timedelta(seconds=seconds_ago)


def test_status_is_online_offline_or_never_seen_by_the_last_heartbeat(tenant_a):
    assert BoxFactory(company=tenant_a.company).get_status(NOW) == Status.NEVER_SEEN
    assert BoxFactory(company=tenant_a.company, last_seen_at=seen(89)).get_status(NOW) == Status.ONLINE
    assert BoxFactory(company=tenant_a.company, last_seen_at=seen(90)).get_status(NOW) == Status.ONLINE
    assert BoxFactory(company=tenant_a.company, last_seen_at=seen(91)).get_status(NOW) == Status.OFFLINE


def test_the_grace_period_is_a_setting(tenant_a, settings):
    box = BoxFactory(company=tenant_a.company, last_seen_at=seen(120))
    assert box.get_status(NOW) == Status.OFFLINE
    settings.DEVICE_OFFLINE_AFTER = 300
    assert box.get_status(NOW) == Status.ONLINE


def test_the_status_filter_agrees_with_get_status(tenant_a):
    boxes = [BoxFactory(company=tenant_a.company, last_seen_at=s) for s in (None, seen(10), seen(90), seen(91))]
    for status in Status.values:
        found = set(selectors.with_status(Box.objects.for_company(tenant_a.company), status, now=NOW))
        assert found == {b for b in boxes if b.get_status(NOW) == status}, status


def test_the_api_filters_by_status_location_and_box(api, tenant_a):
    company = tenant_a.company
    box = BoxFactory(company=company)
    online = ScreenFactory(company=company, box=box, location="Lobby", last_seen_at=timezone.now())
    offline = ScreenFactory(company=company, location="Lobby", last_seen_at=timezone.now() - timedelta(hours=1))
    never = ScreenFactory(company=company, location="Garage")
    client = api(tenant_a.viewer)

    def ids(query):
        response = client.get(f"/api/v1/screens?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("status=online") == {online.pk}
    assert ids("status=offline") == {offline.pk}
    assert ids("status=never_seen") == {never.pk}
    assert ids("location=lobby") == {online.pk, offline.pk}
    assert ids(f"box={box.pk}") == {online.pk}
    assert client.get("/api/v1/screens?status=asleep").status_code == 400


def test_a_list_takes_the_same_queries_however_many_devices(api, tenant_a):
    client = api(tenant_a.viewer)
    box = BoxFactory(company=tenant_a.company)
    for kind, factory in (("boxes", BoxFactory), ("screens", ScreenFactory), ("pads", PadFactory)):
        factory(company=tenant_a.company)
        with CaptureQueriesContext(connection) as one:
            client.get(f"/api/v1/{kind}")
        for _ in range(5):
            factory(company=tenant_a.company, **({"box": box} if kind == "screens" else {}))
        with CaptureQueriesContext(connection) as six:
            client.get(f"/api/v1/{kind}")
        # user (token check), count, page; nothing per row, and no device is contacted
        assert len(six) == len(one), kind
    TVBoxFactory(company=tenant_a.company)
    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/tv-boxes")
    for _ in range(3):
        TVBoxFactory(company=tenant_a.company).screens.add(ScreenFactory(company=tenant_a.company))
    with CaptureQueriesContext(connection) as four:
        client.get("/api/v1/tv-boxes")
    assert len(four) == len(one)  # screens come in one prefetch query


def test_the_list_shows_each_status(api, tenant_a):
    PadFactory(company=tenant_a.company, name="A", last_seen_at=timezone.now())
    PadFactory(company=tenant_a.company, name="B", last_seen_at=timezone.now() - timedelta(days=1))
    PadFactory(company=tenant_a.company, name="C")
    rows = api(tenant_a.viewer).get("/api/v1/pads").json()["results"]
    assert [(r["name"], r["status"]) for r in rows] == [("A", "online"), ("B", "offline"), ("C", "never_seen")]


# --- the watcher ------------------------------------------------------------------------------


def test_the_watcher_marks_silent_devices_offline_once(tenants):
    a, b = tenants
    silent_a = BoxFactory(company=a.company, recorded_status=Status.ONLINE, last_seen_at=seen(200))
    silent_b = PadFactory(company=b.company, recorded_status=Status.ONLINE, last_seen_at=seen(100))
    alive = BoxFactory(company=a.company, recorded_status=Status.ONLINE, last_seen_at=seen(30))
    already = BoxFactory(company=a.company, recorded_status=Status.OFFLINE, last_seen_at=seen(900))
    never = BoxFactory(company=a.company)

    changes = services.devices_mark_offline(now=NOW)

    assert {(c.company_id, c.device_kind, c.device_id, c.change) for c in changes} == {
        (a.company.pk, "box", silent_a.pk, "device_offline"),
        (b.company.pk, "pad", silent_b.pk, "device_offline"),
    }
    assert all(c.at == NOW for c in changes)
    for device, status in ((silent_a, "offline"), (alive, "online"), (already, "offline"), (never, "never_seen")):
        device.refresh_from_db()
        assert device.recorded_status == status, device.name
    assert services.devices_mark_offline(now=NOW) == []  # a second pass records nothing new
    # Each change is in its own company's records only.
    assert DeviceStatusChange.objects.for_company(b.company).get().device_id == silent_b.pk


def test_online_then_offline_then_online_again(tenant_a, register, device_api, monkeypatch):
    box, key = register("box", tenant_a)
    clock = {"now": NOW}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    assert device_api(key).post("/api/v1/device/heartbeat", {}, format="json").json()["status"] == "online"
    clock["now"] = NOW + timedelta(seconds=60)
    assert jobs.devices_mark_offline() == 0  # within the grace period
    clock["now"] = NOW + timedelta(seconds=91)
    assert jobs.devices_mark_offline() == 1
    box.refresh_from_db()
    assert box.get_status() == Status.OFFLINE
    clock["now"] = NOW + timedelta(seconds=120)
    device_api(key).post("/api/v1/device/heartbeat", {}, format="json")
    changes = DeviceStatusChange.objects.for_company(tenant_a.company).order_by("id")
    assert [(c.change, c.at) for c in changes] == [
        ("device_online", NOW),
        ("device_offline", NOW + timedelta(seconds=91)),
        ("device_online", NOW + timedelta(seconds=120)),
    ]


def test_a_heartbeat_that_lands_before_the_flip_keeps_the_device_online(tenant_a):
    pad = PadFactory(company=tenant_a.company, recorded_status=Status.ONLINE, last_seen_at=seen(200))
    # The heartbeat arrives between the watcher's read and its update (possible on SQLite).
    original = Pad.objects.filter

    def filter_then_heartbeat(*args, **kwargs):
        if "recorded_status" in kwargs and "pk" in kwargs:
            Pad.objects.for_company(tenant_a.company).filter(pk=pad.pk).update(last_seen_at=NOW)
        return original(*args, **kwargs)

    Pad.objects.filter = filter_then_heartbeat
    try:
        assert services.devices_mark_offline(now=NOW) == []
    finally:
        Pad.objects.filter = original
    pad.refresh_from_db()
    assert pad.recorded_status == Status.ONLINE


def test_the_periodic_runner_once_marks_silent_devices_offline(tenant_a, capsys):
    BoxFactory(
        company=tenant_a.company, recorded_status=Status.ONLINE, last_seen_at=timezone.now() - timedelta(hours=1)
    )
    call_command("periodic", "--once")
    assert "devices.mark_offline: 1" in capsys.readouterr().out
    assert DeviceStatusChange.objects.for_company(tenant_a.company).get().change == "device_offline"


def test_the_whole_story_register_hand_over_the_key_come_online_go_offline(api, tenant_a, device_api, monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    admin = api(tenant_a.admin)
    created = admin.post("/api/v1/pads", {"name": "Gate pad"}, format="json").json()
    pad_url = f"/api/v1/pads/{created['id']}"
    assert admin.get(pad_url).json()["status"] == "never_seen"

    pad = device_api(created["api_key"])
    assert pad.get("/api/v1/device/pad/config").json()["name"] == "Gate pad"
    pad.post("/api/v1/device/heartbeat", {"version": "3.1"}, format="json")
    assert admin.get(pad_url).json()["status"] == "online"

    clock["now"] = NOW + timedelta(seconds=91)  # heartbeats stopped
    assert admin.get(pad_url).json()["status"] == "offline"  # shown at once, from the timestamp
    call_command("periodic", "--once")  # and recorded once by the periodic runner
    changes = DeviceStatusChange.objects.for_company(tenant_a.company).values_list("change", flat=True)
    assert list(changes.order_by("id")) == ["device_online", "device_offline"]
