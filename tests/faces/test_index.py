"""The 1:N index: exact answers against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

import faces


@pytest.fixture
def gallery():
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, faces.EMBEDDING_DIM)).astype(np.float32) * 0.05
    subjects = np.repeat(np.arange(100), 3)  # three photos per subject
    return vectors, subjects, np.arange(1000, 1300)


def brute_force(vectors, query):
    return np.linalg.norm(vectors - query, axis=1)


def test_nearest_and_identify_agree_with_brute_force(gallery):
    vectors, subjects, photos = gallery
    index = faces.FaceIndex(vectors, subjects, photos)
    query = vectors[42] + 0.001
    distances = brute_force(vectors, query)
    match = index.nearest(query)
    assert (match.subject_id, match.photo_id) == (subjects[42], photos[42])
    assert match.distance == pytest.approx(distances.min(), abs=1e-4)
    assert index.identify(query, threshold=0.5) == match
    assert index.identify(query, threshold=match.distance / 2) is None


def test_search_gives_each_subject_once_with_its_best_photo(gallery):
    vectors, subjects, photos = gallery
    index = faces.FaceIndex(vectors, subjects, photos)
    query = vectors[10]
    distances = brute_force(vectors, query)
    results = index.search(query, k=5)
    expected, seen = [], set()
    for row in np.argsort(distances):
        if subjects[row] not in seen:
            seen.add(subjects[row])
            expected.append((int(subjects[row]), int(photos[row])))
    assert [(m.subject_id, m.photo_id) for m in results] == expected[:5]
    assert [m.distance for m in results] == sorted(m.distance for m in results)


def test_search_leaves_out_a_subject_and_whatever_is_too_far(gallery):
    vectors, subjects, photos = gallery
    index = faces.FaceIndex(vectors, subjects, photos)
    query = vectors[10]
    results = index.search(query, k=5, exclude_subject=int(subjects[10]))
    assert len(results) == 5 and all(m.subject_id != subjects[10] for m in results)
    assert index.search(query, k=5, max_distance=1e-3)[0].subject_id == subjects[10]
    assert len(index.search(query, k=5, max_distance=1e-3)) == 1


def test_an_empty_index_answers_nothing():
    index = faces.FaceIndex.from_rows([])
    assert len(index) == 0
    assert index.nearest(np.zeros(faces.EMBEDDING_DIM)) is None
    assert index.search(np.zeros(faces.EMBEDDING_DIM)) == []


def test_from_rows_reads_stored_bytes(gallery):
    vectors, subjects, photos = gallery
    rows = [(int(p), int(s), faces.embedding_to_bytes(v)) for p, s, v in zip(photos, subjects, vectors, strict=True)]
    index = faces.FaceIndex.from_rows(rows)
    assert index.nearest(vectors[7]).photo_id == photos[7]
