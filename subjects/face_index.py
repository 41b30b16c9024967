"""Each company's faces, searchable in this process: what recognition, verification, search by
face and the duplicate check call.

The interface (every function takes the company; another company's faces are never
candidates, by construction: each company has its own index, built from its rows only):

- `identify(company, embedding) -> faces.Match | None`: the closest subject if closer than
  the company's `face_match_threshold`, else None (a stranger).
- `search(company, embedding, k=10, max_distance=None) -> list[faces.Match]`: up to `k`
  subjects, closest first, each once with its closest photo and the distance.
- `verify(company, subject_id, embedding) -> faces.Match | None`: the subject's closest photo
  (1:1), whatever the distance; compare `.distance` with the threshold.
- `face_rules()`: the enrolment and snapshot rules from the settings, for `faces.enrol_face`
  and `faces.snapshot_face`.

A `faces.Match` has `subject_id`, `photo_id` and `distance`. The embedding comes from
`faces.snapshot_face(image, face_rules()).embedding`.

What is in an index: every `ok` photo of the company whose embedding was made by the
current model (`faces.MODEL`), of subjects that are not archived. Each process keeps one
index per company and rebuilds it when the company's gallery changed: at most once every
`FACE_INDEX_RECHECK_SECONDS` (1 s) it reads the company's gallery change-log sequence
(`subjects.selectors.gallery_sequence`, one row by primary key), which every enrolment,
photo removal, archiving and deletion moves on, so every web and worker process agrees
within about a second of a commit.

The cache is bounded: when the indexes of a process hold more than `FACE_INDEX_CACHE_MB`,
the companies searched least recently are dropped (and rebuilt from the database when next
needed), so a deployment of many companies does not grow each process without limit. The
index in use is never dropped, however large.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

import faces
from subjects.selectors import gallery_sequence, usable_photos

if TYPE_CHECKING:
    from accounts.models import Company


def face_rules() -> faces.QualityRules:
    """The quality rules of enrolment (and the detector's effort) from the settings."""
    return faces.QualityRules(
        min_face_size=settings.FACE_MIN_SIZE,
        min_sharpness=settings.FACE_MIN_SHARPNESS,
        max_yaw=settings.FACE_MAX_YAW,
        upsample=settings.FACE_UPSAMPLE,
        detect_max_side=settings.FACE_DETECT_MAX_SIDE,
    )


def identify(company: Company, embedding) -> faces.Match | None:
    return company_index(company.pk).identify(embedding, company.face_match_threshold)


def search(company: Company, embedding, k: int = 10, max_distance: float | None = None) -> list[faces.Match]:
    return company_index(company.pk).search(embedding, k, max_distance=max_distance)


def verify(company: Company, subject_id: int, embedding) -> faces.Match | None:
    rows = _usable_photos(company.pk).filter(subject_id=subject_id)
    index = faces.FaceIndex.from_rows(rows.values_list("pk", "subject_id", "embedding"))
    return index.nearest(embedding)


def possible_duplicate(company: Company, subject_id: int, embedding) -> faces.Match | None:
    """The closest other subject of the company closer than its threshold, if any."""
    matches = company_index(company.pk).search(
        embedding, 1, max_distance=company.face_match_threshold, exclude_subject=subject_id
    )
    return matches[0] if matches else None


# --- The per-process cache ----------------------------------------------------------------


@dataclass
class _Cached:
    index: faces.FaceIndex
    version: int
    checked_at: float


_indexes: OrderedDict[int, _Cached] = OrderedDict()  # least recently used first
_build_locks: dict[int, threading.Lock] = {}
_locks_lock = threading.Lock()


def _usable_photos(company_id: int):
    # What the boxes may match (`usable_photos`: the consent rule included), of this face
    # model, of subjects who are not archived.
    return usable_photos(company_id).filter(embedding_model=faces.MODEL, subject__archived=False)


def company_index(company_id: int) -> faces.FaceIndex:
    """The company's index, rebuilt if its gallery changed (checked at most once a second)."""
    now = time.monotonic()
    cached = _indexes.get(company_id)
    if cached is not None and now - cached.checked_at < settings.FACE_INDEX_RECHECK_SECONDS:
        _touch(company_id)
        return cached.index
    with _locks_lock:
        lock = _build_locks.setdefault(company_id, threading.Lock())
    with lock:  # one build per company at a time; the others wait for it and use it
        cached = _indexes.get(company_id)
        if cached is not None and now - cached.checked_at < settings.FACE_INDEX_RECHECK_SECONDS:
            return cached.index
        # The version is read before the rows: an index is never older than its version,
        # at worst one change newer, which the next check rebuilds for nothing.
        version = gallery_sequence(company_id)
        if cached is not None and cached.version == version:
            cached.checked_at = time.monotonic()
            _remember(company_id, cached)
            return cached.index
        index = faces.FaceIndex.from_rows(_usable_photos(company_id).values_list("pk", "subject_id", "embedding"))
        _remember(company_id, _Cached(index, version, time.monotonic()))
        return index


def _touch(company_id: int) -> None:
    with _locks_lock:
        if company_id in _indexes:
            _indexes.move_to_end(company_id)


def _remember(company_id: int, cached: _Cached) -> None:
    """Keep `cached` as the most recently used index, then drop the least recently used
    others while the cache is over its size (another build may have dropped this one)."""
    budget = settings.FACE_INDEX_CACHE_MB * 1024 * 1024
    with _locks_lock:
        _indexes[company_id] = cached
        _indexes.move_to_end(company_id)
        total = sum(entry.index.nbytes for entry in _indexes.values())
        for other in list(_indexes):
            if total <= budget:
                break
            if other != company_id:
                total -= _indexes.pop(other).index.nbytes


def cached_companies() -> list[int]:
    """The companies whose index this process holds, least recently used first."""
    return list(_indexes)


def forget_indexes() -> None:
    """Drop every cached index (tests: company ids and versions repeat after a rollback)."""
    _indexes.clear()
