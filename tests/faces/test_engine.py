"""The face engine on real portraits: dlib runs for real, models loaded once per process."""

from __future__ import annotations

import numpy as np
import pytest

import faces
from tests.faces import portraits

SAME_PERSON = 0.4  # every transformation below stays well under the company threshold


@pytest.fixture(scope="module")
def reference():
    """The embeddings of the two original portraits."""
    return {
        "astronaut": faces.enrol_face(portraits.astronaut()).face.embedding,
        "hopper": faces.enrol_face(portraits.grace_hopper()).face.embedding,
    }


def test_it_enrols_both_portraits_with_box_quality_and_embedding():
    for image in (portraits.astronaut(), portraits.grace_hopper()):
        enrolment = faces.enrol_face(image)
        assert enrolment.ok, enrolment.reason
        face = enrolment.face
        assert face.embedding.dtype == np.float32 and face.embedding.shape == (faces.EMBEDDING_DIM,)
        assert 0 < face.quality <= 1
        left, top, right, bottom = face.box
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height


def test_it_finds_the_astronauts_face_not_the_patch_on_her_suit():
    face = faces.enrol_face(portraits.astronaut()).face
    left, top, _, _ = face.box
    assert top < 200 and 150 < left < 200  # her face, at about (175, 76); the patch is at y 335


TRANSFORMATIONS = {
    "half size": lambda image: portraits.rescaled(image, 0.5),
    "1.25 times": lambda image: portraits.rescaled(image, 1.25),
    "flipped": portraits.flipped,
    "greyscale": portraits.greyscale,
    "JPEG quality 40": lambda image: portraits.recompressed(image, 40),
    "rotated 8 degrees": lambda image: portraits.rotated(image, 8),
    "rotated -8 degrees": lambda image: portraits.rotated(image, -8),
}


@pytest.mark.parametrize("person", ["astronaut", "hopper"])
@pytest.mark.parametrize("transformation", TRANSFORMATIONS)
def test_the_same_person_transformed_matches(reference, person, transformation):
    original = portraits.astronaut() if person == "astronaut" else portraits.grace_hopper()
    face = faces.snapshot_face(TRANSFORMATIONS[transformation](original))
    assert face is not None
    other = "hopper" if person == "astronaut" else "astronaut"
    assert faces.distance(face.embedding, reference[person]) < SAME_PERSON
    assert faces.distance(face.embedding, reference[other]) > 0.6


def test_the_two_people_do_not_match(reference):
    assert faces.distance(reference["astronaut"], reference["hopper"]) > 0.6


def test_a_landscape_without_a_face_is_no_face():
    assert faces.enrol_face(portraits.landscape()).reason == faces.NO_FACE
    assert faces.snapshot_face(portraits.landscape()) is None


def test_the_two_portraits_side_by_side_are_multiple_faces():
    enrolment = faces.enrol_face(portraits.side_by_side())
    assert enrolment.reason == faces.MULTIPLE_FACES
    assert enrolment.face.embedding is None


def test_a_snapshot_of_two_people_still_gives_one_face():
    assert faces.snapshot_face(portraits.side_by_side()) is not None


def test_a_tiny_face_is_too_small_and_the_minimum_is_a_rule():
    image = portraits.tiny_face()
    enrolment = faces.enrol_face(image)
    assert enrolment.reason == faces.FACE_TOO_SMALL
    assert enrolment.face.size < 80
    assert faces.enrol_face(image, faces.QualityRules(min_face_size=40)).ok


def test_a_blurred_face_is_too_blurry_and_the_threshold_is_a_rule():
    image = portraits.blurred(portraits.grace_hopper(), 4)
    enrolment = faces.enrol_face(image)
    assert enrolment.reason == faces.TOO_BLURRY
    assert faces.enrol_face(image, faces.QualityRules(min_sharpness=1)).ok
    # Blur costs quality; a snapshot is still recognised.
    assert enrolment.face.quality < faces.enrol_face(portraits.grace_hopper()).face.quality
    assert faces.snapshot_face(image) is not None


def test_a_turned_head_is_not_frontal():
    strict = faces.QualityRules(max_yaw=0.15)
    assert faces.enrol_face(portraits.grace_hopper(), strict).ok
    enrolment = faces.enrol_face(portraits.turned_head(), strict)
    assert enrolment.reason == faces.FACE_NOT_FRONTAL
    assert abs(enrolment.face.yaw) > 0.15


def test_embeddings_round_trip_as_float32_bytes(reference):
    data = faces.embedding_to_bytes(reference["astronaut"])
    assert len(data) == 4 * faces.EMBEDDING_DIM
    assert np.array_equal(faces.embedding_from_bytes(data), reference["astronaut"])


def test_load_image_reads_bytes_and_refuses_what_is_not_an_image():
    array = faces.load_image(portraits.jpeg(portraits.astronaut()))
    assert array.shape == (512, 512, 3) and array.dtype == np.uint8
    with pytest.raises(ValueError):
        faces.load_image(b"not an image")


def test_a_large_photo_is_detected_at_a_bounded_size_but_boxed_in_full_pixels():
    image = portraits.rescaled(portraits.grace_hopper(), 2.5)  # 1280 x 1500
    face = faces.enrol_face(image).face
    assert face.size > 400  # in the full image's pixels
