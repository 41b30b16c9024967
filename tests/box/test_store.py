"""The box's state file: gallery, cursor, outbox and pictures, as SQLite keeps them."""

from __future__ import annotations

import numpy as np
import pytest

from faces import MODEL
from kangaroo_box.store import Store
from tests.box.fakes import embedding, upsert


def test_a_page_and_its_cursor_survive_a_restart(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    assert store.cursor == 0
    store.apply([upsert(3, 1, 1, 2), upsert(5, 2, 3)], next_cursor=5, model=MODEL)
    store.close()

    again = Store(tmp_path / "state.sqlite3")
    assert again.cursor == 5
    assert again.counts() == (2, 3)
    assert again.subject(1).name == "Person 1"
    rows = again.face_rows()
    assert [(photo, subject) for photo, subject, _ in rows] == [(100, 1), (101, 1), (200, 2)]
    assert np.allclose(np.frombuffer(rows[2][2], "<f4"), embedding(3))


def test_an_upsert_replaces_every_face_and_a_delete_forgets_the_subject(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    store.apply([upsert(1, 1, 1, 2), upsert(2, 2, 3)], next_cursor=2, model=MODEL)
    store.apply([upsert(3, 1, 4), {"seq": 4, "op": "delete", "id": 2}], next_cursor=4, model=MODEL)
    assert [(photo, subject) for photo, subject, _ in store.face_rows()] == [(100, 1)]
    assert store.subject(2) is None
    # A deletion of a subject never held is harmless, like the same page applied twice.
    store.apply([{"seq": 5, "op": "delete", "id": 99}, upsert(3, 1, 4)], next_cursor=5, model=MODEL)
    assert store.counts() == (1, 1) and store.cursor == 5


def test_faces_of_another_model_are_left_out(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    store.apply([upsert(1, 1, 1, model="another-model-v2")], next_cursor=1, model=MODEL)
    assert store.counts() == (1, 0)


def test_a_page_that_fails_half_way_changes_nothing(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    store.apply([upsert(1, 1, 1)], next_cursor=1, model=MODEL)
    broken = {"seq": 3, "op": "upsert", "id": 3}  # no name: the insert fails
    with pytest.raises(KeyError):
        store.apply([upsert(2, 2, 2), broken], next_cursor=3, model=MODEL)
    assert store.cursor == 1 and store.counts() == (1, 1)


def test_clearing_the_gallery_starts_again_from_zero_and_keeps_the_outbox(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    store.apply([upsert(1, 1, 1)], next_cursor=9, model=MODEL)
    store.enqueue({"uid": "u1"})
    store.clear_gallery()
    assert (store.cursor, store.counts(), store.pending_count()) == (0, (0, 0), 1)


def test_the_outbox_gives_the_oldest_first_and_forgets_only_what_was_answered(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    for n in range(5):
        store.enqueue({"uid": f"u{n}", "n": n})
    first = store.pending(3)
    assert [p.uid for p in first] == ["u0", "u1", "u2"]
    assert first[1].item == {"uid": "u1", "n": 1}
    store.done([first[0].id, first[2].id])
    store.close()
    again = Store(tmp_path / "state.sqlite3")
    assert [p.uid for p in again.pending(10)] == ["u1", "u3", "u4"]


def test_a_picture_is_recorded_with_its_event(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    store.enqueue({"uid": "u1"}, file=("door.jpg", 1234, 99))
    assert store.file_recorded("door.jpg", 1234, 99)
    assert not store.file_recorded("door.jpg", 1235, 99)  # another file by the same name
    store.forget_file("door.jpg")
    assert not store.file_recorded("door.jpg", 1234, 99)
    assert store.pending_count() == 1


def test_a_file_of_another_company_is_emptied(tmp_path):
    store = Store(tmp_path / "state.sqlite3")
    assert store.claim("7") is False
    store.apply([upsert(1, 1, 1)], next_cursor=1, model=MODEL)
    store.enqueue({"uid": "u1"})
    store.set_threshold(0.5)
    assert store.claim("7") is False  # the same company (a rotated key): all kept
    assert (store.cursor, store.pending_count()) == (1, 1)
    assert store.claim("8") is True
    assert (store.cursor, store.counts(), store.pending_count()) == (0, (0, 0), 0)
