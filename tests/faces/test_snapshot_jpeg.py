"""A stranger's snapshot as a box sends it: the face and the head around it, within a byte
budget, still a face the portal's engine finds and matches."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import faces
from tests.faces import portraits


def test_the_snapshot_is_the_face_with_its_head_and_still_the_same_face():
    picture = portraits.grace_hopper()
    face = faces.snapshot_face(picture)
    data = faces.snapshot_jpeg(picture, face, 64 * 1024)
    assert len(data) <= 64 * 1024
    snapshot = Image.open(io.BytesIO(data))
    assert snapshot.format == "JPEG"
    assert snapshot.width < picture.width and snapshot.height < picture.height  # cropped to the head
    again = faces.snapshot_face(snapshot)
    assert again is not None and faces.distance(again.embedding, face.embedding) < 0.4


def test_a_small_budget_lowers_the_quality_then_the_size():
    picture = portraits.astronaut()
    whole = faces.snapshot_jpeg(picture, None, 1024 * 1024)
    assert Image.open(io.BytesIO(whole)).size == (480, 480)  # no face: the whole picture, scaled
    small = faces.snapshot_jpeg(picture, None, 6 * 1024)
    assert len(small) <= 6 * 1024 and max(Image.open(io.BytesIO(small)).size) < 480


def test_an_impossible_budget_is_an_error():
    with pytest.raises(ValueError):
        faces.snapshot_jpeg(portraits.astronaut(), None, 200)
