"""The real agent (`python -m kangaroo_box`, a process of its own) against the real portal
(the ASGI application on a loopback port), with real portraits dropped into its watch folder."""

from __future__ import annotations

import time

from devices import services as device_services
from devices.models import Box, Screen
from events.models import Event, EventKind
from subjects import services as subject_services
from subjects.selectors import gallery_sequence
from tests.box.conftest import SYNC_EVERY, wait_for
from tests.faces import portraits
from tests.faces.enrolled import enrol, snapshot_of

SIGHTINGS = (EventKind.RECOGNIZED, EventKind.STRANGER)


def sightings(door) -> list[Event]:
    return list(
        Event.objects.for_company(door.box.company_id)
        .filter(device_kind="box", device_id=door.box.pk, kind__in=SIGHTINGS)
        .order_by("id")
    )


def box_up_to_date(door) -> bool:
    """The box's last heartbeat reported the company's latest gallery change."""
    box = Box.objects.for_company(door.box.company_id).get(pk=door.box.pk)
    return box.last_seen_at is not None and box.gallery_cursor == gallery_sequence(door.box.company_id)


def test_a_box_recognises_a_face_enrolled_while_it_runs_and_forgets_it_once_deleted(tenant_a, door, run_agent):
    agent = run_agent()
    wait_for(lambda: "connected" in agent.log(), 30, "the agent to connect", agent=agent)
    grace = enrol(tenant_a, "Grace Hopper", portraits.grace_hopper())
    wait_for(lambda: box_up_to_date(door), 20, "the box to pull the new face", agent=agent)

    agent.drop(snapshot_of(portraits.grace_hopper()))
    [seen] = wait_for(lambda: sightings(door), 20, "the event", agent=agent)
    assert (seen.kind, seen.subject_id, seen.subject_name) == (EventKind.RECOGNIZED, grace.pk, "Grace Hopper")
    assert (seen.screen_id, seen.direction, seen.device_name) == (door.screen.pk, "in", "Lobby box")
    assert seen.confidence > 0.6 and not seen.snapshot
    assert agent.done() == ["frame-0001.jpg"]  # processed once, moved out of the way

    agent.drop(snapshot_of(portraits.astronaut()))
    stranger = wait_for(lambda: sightings(door)[1:], 20, "the stranger's event", agent=agent)[0]
    assert (stranger.kind, stranger.subject_id) == (EventKind.STRANGER, None)
    assert stranger.snapshot  # the stranger's face came with the event

    subject_services.subject_delete(company=tenant_a.company, actor=tenant_a.admin, subject=grace)
    # Within one gallery pull (and the watch folder's settling look), she is a stranger.
    time.sleep(SYNC_EVERY + 0.5)
    agent.drop(snapshot_of(portraits.grace_hopper()))
    after = wait_for(lambda: sightings(door)[2:], 20, "the event after the deletion", agent=agent)[0]
    assert (after.kind, after.subject_id) == (EventKind.STRANGER, None)

    screen = Screen.objects.for_company(tenant_a.company).get(pk=door.screen.pk)
    assert screen.camera_status == "ok"  # the heartbeats report the watch folder as the camera
    assert agent.log().count("connected") == 1  # a line per change of state, none per picture


def test_events_made_while_the_portal_is_down_arrive_once_each_when_it_is_back(tenant_a, door, portal, run_agent):
    grace = enrol(tenant_a, "Grace Hopper", portraits.grace_hopper())
    agent = run_agent("--batch-size", "8")
    wait_for(lambda: "connected" in agent.log(), 30, "the agent to connect", agent=agent)

    portal.stop()
    picture = snapshot_of(portraits.grace_hopper())
    for _ in range(20):
        agent.drop(picture)
    wait_for(lambda: len(agent.done()) == 20, 60, "the 20 pictures to be recognised", agent=agent)
    wait_for(lambda: "offline" in agent.log(), 10, "the agent to notice", agent=agent)
    assert sightings(door) == []

    portal.start()
    wait_for(lambda: len(sightings(door)) >= 20, 30, "the 20 events", agent=agent)
    time.sleep(1.5)  # time for any event sent twice to arrive twice
    events = sightings(door)
    assert len(events) == 20 and len({event.uid for event in events}) == 20
    assert {(event.kind, event.subject_id) for event in events} == {(EventKind.RECOGNIZED, grace.pk)}
    log = agent.log()
    assert log.count("offline") == 1 and log.index("offline") < log.rindex("connected")


def test_a_revoked_key_stops_the_agent_with_a_clear_message(tenant_a, door, run_agent):
    agent = run_agent()
    wait_for(lambda: "connected" in agent.log(), 30, "the agent to connect", agent=agent)
    device_services.device_key_revoke(company=tenant_a.company, actor=tenant_a.admin, device=door.box)
    wait_for(lambda: agent.process.poll() is not None, 15, "the agent to stop")
    assert agent.process.returncode == 3
    assert "the portal revoked this box's key (device_key_revoked)" in agent.log()
