"""`events_recorded`: every stored event is announced once, after commit, to every listener,
and a failing listener never costs a device its answer."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from devices import services as device_services
from events.hooks import events_recorded
from events.models import Event, EventKind
from events.services import event_ingest
from tests.events.conftest import event
from tests.factories import PhotoFactory, SubjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    calls: list[tuple] = []

    def listener(sender, *, company, events, **kwargs):
        calls.append((company, [e.pk for e in events], events))

    events_recorded.connect(listener, weak=False)
    yield calls
    events_recorded.disconnect(listener)


@pytest.fixture
def failing_listener():
    def listener(sender, **kwargs):
        raise RuntimeError("the listener broke")

    events_recorded.connect(listener, weak=False)
    yield
    events_recorded.disconnect(listener)


def post_batch(door, items):
    return door.box_client().post("/api/v1/device/events", {"events": items}, format="json")


def test_a_batch_is_announced_once_after_commit_with_only_the_stored_events(
    tenant_a, door_a, heard, django_capture_on_commit_callbacks
):
    post_batch(door_a, [event("old", door_a.entrance)])
    heard.clear()
    with django_capture_on_commit_callbacks(execute=False) as pending:
        body = post_batch(
            door_a, [event("new1", door_a.entrance), event("old", door_a.entrance), {"uid": "bad"}, event("new2")]
        ).json()
        assert heard == []  # nothing before the commit
    for callback in pending:
        callback()
    created = [r["id"] for r in body["results"] if r["status"] == "created"]
    assert len(created) == 1  # "new2" has no screen: a box must name one
    [(company, ids, events)] = heard
    assert company == tenant_a.company and ids == created
    assert all(isinstance(e, Event) and e.company_id == company.pk for e in events)


def test_a_single_post_and_a_pad_post_are_announced(tenant_a, door_a, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        one = door_a.box_client().post("/api/v1/device/events", event("one", door_a.entrance), format="json")
        pad = door_a.pad_client().post("/api/v1/device/events", event("pad"), format="json")
    assert [ids for _, ids, _ in heard] == [[one.json()["id"]], [pad.json()["id"]]]


def test_a_retried_event_is_not_announced_again(tenant_a, door_a, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(door_a, [event("again", door_a.entrance)])
        post_batch(door_a, [event("again", door_a.entrance)])
        door_a.box_client().post("/api/v1/device/events", event("again", door_a.entrance), format="json")
    assert len(heard) == 1


def test_nothing_is_announced_when_the_transaction_rolls_back(tenant_a, door_a, heard):
    with pytest.raises(RuntimeError), transaction.atomic():
        event_ingest(device=door_a.box, items=[event("gone", door_a.entrance)])
        raise RuntimeError("the caller failed after ingest")
    assert heard == []
    assert not Event.objects.for_company(tenant_a.company).exists()


def test_listeners_get_the_subjects_first_photo(tenant_a, door_a, heard, django_capture_on_commit_callbacks):
    mei = SubjectFactory(company=tenant_a.company)
    photo = PhotoFactory(company=tenant_a.company, subject=mei)
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(door_a, [event("mei", door_a.entrance, mei), event("nobody", door_a.entrance)])
    [(_, _, events)] = heard
    assert [e.first_photo_id for e in events] == [photo.pk, None]


def test_a_device_status_change_is_announced_as_an_event(tenant_a, door_a, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        device_services.device_heartbeat_record(device=door_a.pad)
    [(company, ids, events)] = heard
    assert company == tenant_a.company
    assert [e.kind for e in events] == [EventKind.DEVICE_ONLINE]
    assert Event.objects.for_company(company).get(pk=ids[0]).device_name == door_a.pad.name


def test_a_failing_listener_is_logged_and_the_others_and_the_device_carry_on(
    tenant_a, door_a, failing_listener, heard, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.ERROR, logger="events.hooks"), django_capture_on_commit_callbacks(execute=True):
        response = door_a.box_client().post("/api/v1/device/events", event("fine", door_a.entrance), format="json")
    assert response.status_code == 201
    assert Event.objects.for_company(tenant_a.company).filter(uid="fine").exists()
    assert [ids for _, ids, _ in heard] == [[response.json()["id"]]]
    assert "A listener of events_recorded" in caplog.text and "the listener broke" in caplog.text
