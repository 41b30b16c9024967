"""A box's screens are read once per box, not on every post, and whatever changes them
(a screen added, moved to another box, turned round, deleted) counts from the next post."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices import services as device_services
from events.models import Event
from tests.devices.conftest import device_client
from tests.events.conftest import event

pytestmark = pytest.mark.django_db


def post(door, *items):
    return door.box_client().post("/api/v1/device/events", {"events": list(items)}, format="json").json()["results"]


def statuses(results):
    return [result["status"] if result["status"] != "error" else result["error"]["code"] for result in results]


def test_a_box_reads_its_screens_once_not_on_every_post(tenant_a, door_a):
    assert statuses(post(door_a, event("first", door_a.entrance))) == ["created"]
    with CaptureQueriesContext(connection) as queries:
        assert statuses(post(door_a, event("second", door_a.exit), event("third", door_a.entrance))) == [
            "created",
            "created",
        ]
    assert not [q["sql"] for q in queries.captured_queries if '"devices_screen"' in q["sql"]]
    stored = Event.objects.for_company(tenant_a.company).filter(uid__in=["second", "third"]).order_by("uid")
    assert [(e.uid, e.screen_id, e.direction) for e in stored] == [
        ("second", door_a.exit.pk, "out"),
        ("third", door_a.entrance.pk, "in"),
    ]


def test_a_screen_added_to_the_box_counts_from_the_next_post(tenant_a, door_a):
    assert statuses(post(door_a, event("before", door_a.entrance))) == ["created"]
    side, _ = device_services.screen_create(
        company=tenant_a.company, actor=tenant_a.admin, name="Side door", camera_url="rtsp://10.0.0.9/s",
        direction="in", box=door_a.box,
    )  # fmt: skip
    assert statuses(post(door_a, event("side", side))) == ["created"]


def test_a_screen_moved_to_another_box_is_that_boxs_from_the_next_post(tenant_a, door_a):
    kwargs = {"company": tenant_a.company, "actor": tenant_a.admin}
    other, other_key = device_services.box_create(name="Garage box", max_screens=2, **kwargs)
    assert statuses(post(door_a, event("before", door_a.exit))) == ["created"]
    device_services.screen_attach(screen=door_a.exit, box=other, **kwargs)
    assert statuses(post(door_a, event("after", door_a.exit))) == ["not_found"]
    moved = device_client(other_key).post("/api/v1/device/events", event("there", door_a.exit), format="json")
    assert moved.status_code == 201


def test_a_screen_turned_round_or_deleted_counts_from_the_next_post(tenant_a, door_a):
    kwargs = {"company": tenant_a.company, "actor": tenant_a.admin}
    assert statuses(post(door_a, event("in", door_a.entrance))) == ["created"]
    device_services.screen_update(screen=door_a.entrance, direction="out", **kwargs)
    assert statuses(post(door_a, event("out", door_a.entrance))) == ["created"]
    assert Event.objects.for_company(tenant_a.company).get(uid="out").direction == "out"
    device_services.device_delete(device=door_a.exit, **kwargs)
    assert statuses(post(door_a, event("gone", door_a.exit))) == ["not_found"]
