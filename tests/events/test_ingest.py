"""Devices post events: batches answered per item, retries never duplicate, strangers
never reveal another company's subjects, bad input gets its code."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Event
from tests.events.conftest import event
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes

pytestmark = pytest.mark.django_db


def post_batch(door, items):
    return door.box_client().post("/api/v1/device/events", {"events": items}, format="json")


def test_a_batch_is_stored_and_answered_per_item(tenant_a, door_a):
    mei = SubjectFactory(company=tenant_a.company, name="陳美玲")
    response = post_batch(door_a, [event("e1", door_a.entrance, mei), event("e2", door_a.exit, mei, confidence=0.9)])
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["duplicates"], body["errors"]) == (2, 0, 0)
    stored = {e.uid: e for e in Event.objects.for_company(tenant_a.company)}
    assert [r["id"] for r in body["results"]] == [stored["e1"].pk, stored["e2"].pk]
    first = stored["e1"]
    assert (first.kind, first.subject, first.subject_name, first.direction) == ("recognized", mei, "陳美玲", "in")
    assert (first.device_kind, first.device_id, first.screen) == ("box", door_a.box.pk, door_a.entrance)
    assert stored["e2"].direction == "out" and stored["e2"].confidence == 0.9


def test_a_retried_batch_creates_nothing_twice(tenant_a, door_a):
    items = [event(f"r{n}", door_a.entrance) for n in range(5)]
    first = post_batch(door_a, items).json()
    again = post_batch(door_a, items).json()
    assert (again["created"], again["duplicates"]) == (0, 5)
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
    assert Event.objects.for_company(tenant_a.company).count() == 5


def test_a_uid_twice_in_one_batch_is_one_event(tenant_a, door_a):
    body = post_batch(door_a, [event("same", door_a.entrance), event("same", door_a.entrance)]).json()
    assert [r["status"] for r in body["results"]] == ["created", "duplicate"]
    assert body["results"][0]["id"] == body["results"][1]["id"]


def test_uids_are_per_device(tenant_a, door_a):
    post_batch(door_a, [event("u1", door_a.entrance)])
    response = door_a.pad_client().post("/api/v1/device/events", event("u1"), format="json")
    assert response.status_code == 201
    assert Event.objects.for_company(tenant_a.company).count() == 2


def test_a_bad_item_does_not_reject_the_good_ones(tenant_a, door_a):
    now = timezone.now()
    items = [
        event("good1", door_a.entrance),
        event("future", door_a.entrance, when=now + timedelta(hours=1)),
        event("old", door_a.entrance, when=now - timedelta(days=400)),
        {"uid": "naive", "happened_at": "2026-01-01T08:00:00", "screen_id": door_a.entrance.pk},
        event("typo", door_a.entrance, confidance=0.5),
        event("confidence", door_a.entrance, confidence=1.5),
        {"happened_at": now.isoformat(), "screen_id": door_a.entrance.pk},
        "not an object",
        event("good2", door_a.exit),
    ]
    body = post_batch(door_a, items).json()
    codes = [r.get("error", {}).get("code", r["status"]) for r in body["results"]]
    assert codes == [
        "created",
        "event_from_future",
        "event_too_old",
        "validation_error",
        "unknown_fields",
        "validation_error",
        "validation_error",
        "validation_error",
        "created",
    ]
    assert body["results"][4]["error"]["fields"] == {"confidance": ["Unknown field."]}
    assert sorted(Event.objects.for_company(tenant_a.company).values_list("uid", flat=True)) == ["good1", "good2"]


def test_a_subject_of_another_company_becomes_a_stranger_like_an_unknown_id(tenants, door_a):
    a, b = tenants
    theirs = SubjectFactory(company=b.company)
    body = post_batch(
        door_a, [event("x1", door_a.entrance, theirs), event("x2", door_a.entrance, subject_id=999999)]
    ).json()
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    events = Event.objects.for_company(a.company).order_by("uid")
    assert [(e.kind, e.subject_id, e.subject_name) for e in events] == [("stranger", None, ""), ("stranger", None, "")]
    assert not Event.objects.for_company(b.company).exists()


def test_a_deleted_subject_becomes_a_stranger(tenant_a, door_a):
    gone = SubjectFactory(company=tenant_a.company)
    gone_id = gone.pk
    gone.delete()
    post_batch(door_a, [event("d1", door_a.entrance, subject_id=gone_id)])
    assert Event.objects.for_company(tenant_a.company).get().kind == "stranger"


def test_a_visitor_outside_their_window_is_flagged(tenant_a, door_a):
    now = timezone.now()
    visitor = SubjectFactory(
        company=tenant_a.company,
        subject_type="visitor",
        visit_start=now - timedelta(hours=1),
        visit_end=now + timedelta(hours=1),
    )
    post_batch(
        door_a,
        [
            event("in-window", door_a.entrance, visitor, when=now),
            event("too-early", door_a.entrance, visitor, when=now - timedelta(hours=3)),
        ],
    )
    kinds = dict(Event.objects.for_company(tenant_a.company).values_list("uid", "kind"))
    assert kinds == {"in-window": "recognized", "too-early": "visitor_outside_window"}


def test_a_screen_of_another_box_or_company_is_not_found(tenants, door_a, door_b):
    body = post_batch(door_a, [event("s1", door_b.entrance), event("s2", screen_id=987654)]).json()
    assert [r["error"]["code"] for r in body["results"]] == ["not_found", "not_found"]
    assert body["results"][0]["error"] == body["results"][1]["error"]
    assert not Event.objects.for_company(tenants[1].company).exists()


def test_a_box_must_name_the_screen(tenant_a, door_a):
    body = post_batch(door_a, [event("no-screen")]).json()
    assert body["results"][0]["error"]["code"] == "not_found"


def test_a_pad_reports_for_its_own_screen(tenant_a, door_a):
    subject = SubjectFactory(company=tenant_a.company)
    response = door_a.pad_client().post("/api/v1/device/events", event("p1", subject=subject), format="json")
    assert response.status_code == 201 and response.json()["status"] == "created"
    stored = Event.objects.for_company(tenant_a.company).get()
    assert (stored.screen, stored.direction, stored.device_kind) == (door_a.entrance, "in", "pad")


def test_a_single_post_answers_201_then_200_for_its_retry(tenant_a, door_a):
    client = door_a.box_client()
    first = client.post("/api/v1/device/events", event("one", door_a.entrance), format="json")
    again = client.post("/api/v1/device/events", event("one", door_a.entrance), format="json")
    assert (first.status_code, first.json()["status"]) == (201, "created")
    assert (again.status_code, again.json()["status"], again.json()["id"]) == (200, "duplicate", first.json()["id"])


def test_a_bad_single_post_answers_with_the_error_envelope(tenant_a, door_a):
    later = timezone.now() + timedelta(days=1)
    response = door_a.box_client().post("/api/v1/device/events", event("f", door_a.entrance, when=later), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "event_from_future"


def test_a_batch_over_500_is_refused_whole(tenant_a, door_a):
    response = post_batch(door_a, [event(f"b{n}", door_a.entrance) for n in range(501)])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "event_batch_too_large"
    assert not Event.objects.for_company(tenant_a.company).exists()


def test_a_snapshot_is_stored_normalised_and_served_only_to_the_company(api, tenants, door_a):
    a, b = tenants
    snapshot = base64.b64encode(jpeg_bytes((200, 150))).decode()
    body = post_batch(door_a, [event("snap", door_a.entrance, snapshot=snapshot)]).json()
    event_id = body["results"][0]["id"]
    mine = api(a.admin).get(f"/api/v1/events/{event_id}/snapshot")
    assert mine.status_code == 200 and mine.content[:2] == b"\xff\xd8"
    assert api(b.owner).get(f"/api/v1/events/{event_id}/snapshot").status_code == 404


def test_a_bad_snapshot_rejects_only_its_item_and_leaves_no_file(tenant_a, door_a, media_root):
    bad = base64.b64encode(b"not an image").decode()
    body = post_batch(door_a, [event("bad", door_a.entrance, snapshot=bad), event("fine", door_a.entrance)]).json()
    assert body["results"][0]["error"]["code"] == "photo_invalid"
    assert body["results"][1]["status"] == "created"
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))


@pytest.mark.parametrize("who", ["tv", "user", "nobody"])
def test_only_boxes_and_pads_post_events(api, tenant_a, door_a, who):
    from tests.events.conftest import device_client

    client = {"tv": lambda: device_client(door_a.tv_key), "user": lambda: api(tenant_a.owner)}.get(
        who, lambda: __import__("rest_framework.test").test.APIClient()
    )()
    response = client.post("/api/v1/device/events", event("x", door_a.entrance), format="json")
    assert response.status_code in (401, 403)
    assert not Event.objects.for_company(tenant_a.company).exists()


def test_a_device_status_change_becomes_an_event(tenant_a, door_a):
    from devices.services import device_heartbeat_record

    device_heartbeat_record(device=door_a.tv, version="1.0")
    event_row = Event.objects.for_company(tenant_a.company).get()
    assert (event_row.kind, event_row.device_kind, event_row.device_id) == ("device_online", "tvbox", door_a.tv.pk)


@pytest.mark.django_db(transaction=True)
def test_a_single_retry_in_autocommit_answers_duplicate(tenant_a, door_a):
    """Outside a transaction a single post is inserted first; its retry meets the unique
    index and must still be answered `duplicate` with the stored id, storing nothing."""
    client = door_a.box_client()
    first = client.post("/api/v1/device/events", event("auto", door_a.entrance), format="json")
    again = client.post("/api/v1/device/events", event("auto", door_a.entrance), format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"uid": "auto", "status": "duplicate", "id": first.json()["id"]}
    assert Event.objects.for_company(tenant_a.company).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_uid_stored_meanwhile_makes_a_batch_answer_duplicate_for_it(tenant_a, door_a, monkeypatch):
    """A retry racing the first post: the uid is stored after the batch looked its uids up
    and before it inserts. The insert meets the unique index, nothing of the batch is kept,
    and the second pass answers that item `duplicate` with the stored id."""
    from events import parsing

    first = post_batch(door_a, [event("raced", door_a.entrance)]).json()["results"][0]["id"]
    real_classify = parsing.classify
    calls = []

    def classify_missing_the_race(**kwargs):
        calls.append(kwargs["look_up_uids"])
        if len(calls) == 1:
            kwargs["look_up_uids"] = False  # as if the lookup ran before the racing insert
        return real_classify(**kwargs)

    monkeypatch.setattr("events.services.classify", classify_missing_the_race)
    items = [event("raced", door_a.entrance), *(event(f"new{n}", door_a.exit) for n in range(3))]
    body = post_batch(door_a, items).json()
    assert len(calls) == 2
    assert [r["status"] for r in body["results"]] == ["duplicate", "created", "created", "created"]
    assert body["results"][0]["id"] == first
    assert Event.objects.for_company(tenant_a.company).count() == 4


@pytest.mark.postgres
def test_a_batchs_uid_lookup_can_use_the_unique_index(tenant_a, door_a):
    """The lookup of a batch's uids must fit the partial unique index (uids not blank): a
    plan that cannot use it reads every event of the box's company on every batch. Which
    plan a small table gets is the planner's choice, so every other index is dropped here
    (inside the test's transaction, rolled back after it): the unique index must still be
    usable for a batch-sized lookup, more uids than PostgreSQL proves one by one (100)."""
    from django.db import connection

    from events.parsing import stored_uids, stored_uids_query

    post_batch(door_a, [event(f"u{n}", door_a.entrance) for n in range(3)])
    box = door_a.box
    uids = ["u0", "u1", *(f"missing{n}" for n in range(150))]
    lookup = stored_uids_query(box.company_id, box.kind, box.pk, uids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'events_event'"
            " AND indexname NOT IN ('events_event_pkey', 'event_uid_unique_per_device')"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = lookup.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "event_uid_unique_per_device" in plan, plan
    assert dict(stored_uids(box, set(uids))).keys() == {"u0", "u1"}
    assert dict(stored_uids(box, {"u0", "missing"})).keys() == {"u0"}  # a compiled shape


def test_a_small_batch_with_every_optional_column_empty_is_stored_as_sent(tenant_a, door_a):
    """A batch under COPY's size is one INSERT of one array per column: a column with no
    value in any row (strangers only: no subject, no confidence) is an array of nulls, which
    must still be read as the column's type."""
    items = [event(f"s{n}", door_a.entrance) for n in range(3)]
    response = post_batch(door_a, items)
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 3
    stored = Event.objects.for_company(tenant_a.company).filter(uid__in=["s0", "s1", "s2"])
    assert sorted(stored.values_list("uid", "kind", "subject_id", "confidence", "distance")) == [
        (f"s{n}", "stranger", None, None, None) for n in range(3)
    ]
