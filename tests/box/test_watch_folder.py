"""The watch folder: which files are taken, when, and where they go afterwards."""

from __future__ import annotations

import os

from kangaroo_box.sources import FolderSource
from tests.box.fakes import FakePortal, make_agent


def test_a_file_is_taken_once_its_size_held_still_for_a_look_and_hidden_ones_never(tmp_path):
    source = FolderSource(tmp_path / "in")
    (tmp_path / "in" / "a.jpg").write_bytes(b"1234")
    (tmp_path / "in" / ".b.jpg.part").write_bytes(b"being written")
    assert source.poll() == []  # first look: it may still be growing
    (tmp_path / "in" / "a.jpg").write_bytes(b"123456")
    assert source.poll() == []  # it grew
    [ready] = source.poll()
    assert (ready.path.name, ready.size) == ("a.jpg", 6)
    assert source.status() == "ok"


def test_finished_pictures_go_to_done_and_a_name_taken_there_gets_a_number(tmp_path):
    source = FolderSource(tmp_path / "in")
    for _ in range(2):
        (tmp_path / "in" / "door.jpg").write_bytes(b"x")
        source.poll()
        [picture] = source.poll()
        source.finish(picture)
    assert sorted(os.listdir(tmp_path / "in" / "done")) == ["door.1.jpg", "door.jpg"]
    assert source.poll() == []


def test_a_file_that_is_not_a_picture_goes_to_rejected_without_an_event(tmp_path):
    source = FolderSource(tmp_path / "in")
    agent = make_agent(FakePortal(down=True), tmp_path / "s.sqlite3", source=source)
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    agent.look()
    agent.look()
    assert os.listdir(tmp_path / "in" / "rejected") == ["notes.txt"]
    assert agent.store.pending_count() == 0


def test_a_picture_whose_event_was_stored_before_a_stop_is_not_recognised_again(tmp_path):
    source = FolderSource(tmp_path / "in")
    agent = make_agent(FakePortal(down=True), tmp_path / "s.sqlite3", source=source)
    picture = tmp_path / "in" / "door.jpg"
    picture.write_bytes(b"not even decoded: the record says it was done")
    stat = picture.stat()
    # The box stopped after storing the event, before moving the picture away.
    agent.store.enqueue({"uid": "u1"}, file=("door.jpg", stat.st_size, stat.st_mtime_ns))
    agent.look()
    agent.look()
    assert os.listdir(tmp_path / "in" / "done") == ["door.jpg"]
    assert agent.store.pending_count() == 1
    assert not agent.store.file_recorded("door.jpg", stat.st_size, stat.st_mtime_ns)
