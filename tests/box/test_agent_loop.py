"""The agent's loop against a stand-in portal (tests/box/fakes.py): outbox, backoff, gallery
cursor, heartbeats and the log. Fast: no server, no pictures."""

from __future__ import annotations

import itertools
import logging

import httpx
import pytest

from kangaroo_box.agent import EXIT_CONFIGURATION, EXIT_KEY_REFUSED, ConfigurationError, company_of_key
from kangaroo_box.store import Store
from tests.box.fakes import SCREEN, Clock, FakePortal, embedding, make_agent, upsert


def event(n: int) -> dict:
    return {"uid": f"uid-{n:04d}", "happened_at": "2026-11-27T10:00:00+00:00", "screen_id": SCREEN}


def fill(agent, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        agent.store.enqueue(event(n))


STATES = {"connected", "lagging", "offline", "resynced"}


def state_lines(caplog) -> list[str]:
    """The log's lines of state changes, by their state."""
    words = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "kangaroo_box"]
    return [word for word in words if word in STATES]


@pytest.fixture
def clock():
    return Clock()


def test_events_wait_in_the_outbox_while_the_portal_is_down_and_leave_once_each(tmp_path, clock):
    fake = FakePortal(down=True)
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock, batch_size=10)
    fill(agent, 25)
    for _ in range(5):
        agent.step()
        clock.advance(120)
    assert agent.store.pending_count() == 25 and not fake.stored

    fake.down = False
    agent.step()
    assert agent.store.pending_count() == 0
    assert sorted(fake.stored) == [f"uid-{n:04d}" for n in range(25)]
    assert [len(post) for post in fake.posts] == [10, 10, 5]  # in batches, oldest first
    assert fake.posts[0][0] == "uid-0000"


def test_a_lost_answer_resends_the_same_uids_and_nothing_is_doubled(tmp_path, clock):
    fake = FakePortal(lose_answers=1)
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    fill(agent, 3)
    agent.step()  # stored by the portal, but the answer never came back
    assert agent.store.pending_count() == 3 and agent.state == "offline"
    clock.advance(120)
    agent.step()
    assert agent.store.pending_count() == 0
    assert fake.posts[0] == fake.posts[1]  # the same uids again: the portal answered "duplicate"
    assert len(fake.stored) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_keep_the_events(tmp_path, clock, status):
    fake = FakePortal(fail_with=status)
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    fill(agent, 2)
    agent.step()
    assert agent.store.pending_count() == 2 and agent.state == "offline"
    fake.fail_with = None
    clock.advance(120)
    agent.step()
    assert agent.store.pending_count() == 0 and len(fake.stored) == 2


def test_the_portal_is_left_alone_between_tries_longer_each_time(tmp_path, clock):
    fake = FakePortal(down=True)
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock, backoff_max=8)
    tries = []
    for _ in range(400):  # 40 s of ticks
        before = len(fake.requests)
        agent.step()
        if len(fake.requests) > before:
            tries.append(clock.now)
        clock.advance(0.1)
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(tries)]
    assert len(tries) <= 13, gaps  # not one a tick: at most 0.5, 1, 2, then 4 s and more apart
    assert all(0.5 <= gap <= 8.1 for gap in gaps), gaps
    assert max(gaps) >= 4  # it got to the long waits


def test_an_event_the_portal_refuses_is_dropped_with_a_line_and_the_rest_go(tmp_path, clock, caplog):
    fake = FakePortal(refuse_uids={"uid-0001"})
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    fill(agent, 3)
    with caplog.at_level(logging.INFO, logger="kangaroo_box"):
        agent.step()
    assert agent.store.pending_count() == 0
    assert sorted(fake.stored) == ["uid-0000", "uid-0002"]
    assert any("uid-0001 refused by the portal" in r.getMessage() and "event_too_old" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_a_restart_resumes_from_the_saved_cursor(tmp_path, clock):
    fake = FakePortal(log=[upsert(1, 1, 1), upsert(2, 2, 2)])
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    agent.step()
    assert agent.store.cursor == 2 and len(agent.index) == 2
    agent.close()

    fake.log.append(upsert(3, 3, 3))
    fake.requests.clear()
    again = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    assert len(again.index) == 2  # recognises from its file before the portal answers
    again.step()
    pulls = [params["after"] for name, params in fake.requests if name == "gallery"]
    assert pulls == ["2"]  # not from 0
    assert again.store.cursor == 3 and len(again.index) == 3


def test_a_resync_request_clears_the_gallery_and_pulls_it_from_zero(tmp_path, clock, caplog):
    fake = FakePortal(log=[upsert(1, 1, 1), upsert(2, 2, 2)])
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock, sync_every=5)
    agent.step()
    # Subject 2 was deleted, and its deletion compacted away while the box was not looking.
    fake.log = [upsert(1, 1, 1), upsert(7, 3, 3)]
    fake.compacted_through = 5
    clock.advance(6)
    with caplog.at_level(logging.INFO, logger="kangaroo_box"):
        agent.step()
    assert agent.store.cursor == 7
    assert [subject for _, subject, _ in agent.store.face_rows()] == [1, 3]
    assert agent.index.identify(embedding(2), 0.55) is None
    assert agent.index.identify(embedding(3), 0.55).subject_id == 3
    assert "resynced" in state_lines(caplog)


def test_an_unchanged_gallery_is_asked_with_its_etag(tmp_path, clock):
    fake = FakePortal(log=[upsert(1, 1, 1)])
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock, sync_every=5)
    agent.step()  # pulls 1 change, moves to cursor 1
    clock.advance(6)
    agent.step()  # asks after=1: nothing, an ETag
    clock.advance(6)
    index = agent.index
    agent.step()  # the same question again: 304
    assert agent.index is index  # nothing rebuilt
    assert fake.not_modified == 1
    assert [params["after"] for name, params in fake.requests if name == "gallery"] == ["0", "1", "1"]


def test_heartbeats_follow_next_heartbeat_in_and_carry_the_cursor_and_camera(tmp_path, clock):
    fake = FakePortal(log=[upsert(4, 1, 1)], next_heartbeat_in=7, threshold=0.42)
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    for _ in range(300):  # 30 s
        agent.step()
        clock.advance(0.1)
    assert len(fake.heartbeats) == 5  # at 0, 7, 14, 21, 28 s
    assert fake.heartbeats[0]["gallery_cursor"] == 0
    assert fake.heartbeats[-1]["gallery_cursor"] == 4
    assert fake.heartbeats[-1]["cameras"] == [{"screen_id": SCREEN, "status": "ok"}]
    assert agent.threshold == 0.42


def test_a_heartbeat_announcing_new_changes_pulls_them_at_once(tmp_path, clock):
    fake = FakePortal(log=[upsert(1, 1, 1)], next_heartbeat_in=5)
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock, sync_every=3600)
    agent.step()
    fake.log.append({"seq": 2, "op": "delete", "id": 1})
    clock.advance(5)
    agent.step()
    assert agent.store.cursor == 2 and len(agent.index) == 0


def test_the_log_has_a_line_per_change_of_state_not_per_try(tmp_path, clock, caplog):
    fake = FakePortal()
    agent = make_agent(fake, tmp_path / "s.sqlite3", clock=clock)
    with caplog.at_level(logging.INFO, logger="kangaroo_box"):
        for down in [False] * 3 + [True] * 30 + [False] * 3:
            fake.down = down
            agent.step()
            clock.advance(61)
    assert state_lines(caplog) == ["connected", "offline", "connected"]


def test_a_revoked_key_stops_the_agent_with_a_clear_message(tmp_path, caplog):
    fake = FakePortal(revoked=True)
    agent = make_agent(fake, tmp_path / "s.sqlite3", tick=0.01)
    fill(agent, 2)
    with caplog.at_level(logging.INFO, logger="kangaroo_box"):
        assert agent.run() == EXIT_KEY_REFUSED
    assert any("revoked this box's key" in r.getMessage() for r in caplog.records)
    assert Store(tmp_path / "s.sqlite3").pending_count() == 2  # kept for a new key


def test_a_screen_that_is_not_the_boxs_stops_the_agent(tmp_path, caplog):
    class NotOurScreen(FakePortal):
        def handle(self, request):
            if request.url.path.endswith("heartbeat"):
                fields = {"cameras.0.screen_id": ["Not found."]}
                error = {"code": "validation_error", "message": "Invalid input.", "fields": fields}
                return httpx.Response(400, json={"error": error})
            return super().handle(request)

    agent = make_agent(NotOurScreen(), tmp_path / "s.sqlite3", tick=0.01)
    with caplog.at_level(logging.INFO, logger="kangaroo_box"):
        assert agent.run() == EXIT_CONFIGURATION
    assert any(f"screen {SCREEN} is not one of this box's screens" in r.getMessage() for r in caplog.records)


def test_only_box_keys_are_taken():
    assert company_of_key("kgr_box_12_abcdef012345_s3cr_et") == "12"
    for key in ("kgr_pad_12_abcdef012345_secret", "nonsense", "kgr_box_x_abc_secret"):
        with pytest.raises(ConfigurationError):
            company_of_key(key)
