"""An in-memory 1:N index of face embeddings.

One float32 matrix (rows: embeddings) with the subject and photo of each row. A query is
one matrix-vector product: |x - q|² = |x|² - 2 x·q + |q|², with |x|² computed once at build
time and the product written into a buffer allocated once per index, so a search makes
no temporary the size of the gallery except `search`'s partial sort (8 bytes a row).

Memory: 512 bytes a row for the matrix plus 20 for the norms, ids and buffer, about
53 MB per 100,000 faces. The index is immutable: a changed gallery builds a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from faces.engine import EMBEDDING_DIM, embedding_from_bytes


@dataclass(frozen=True)
class Match:
    subject_id: int
    photo_id: int
    distance: float


class FaceIndex:
    def __init__(
        self,
        embeddings: np.ndarray,
        subject_ids: Sequence[int] | np.ndarray,
        photo_ids: Sequence[int] | np.ndarray | None = None,
    ):
        matrix = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        rows = matrix.shape[0]
        self._matrix = matrix
        self._subjects = np.asarray(subject_ids, dtype=np.int64).reshape(rows)
        self._photos = (
            np.asarray(photo_ids, dtype=np.int64).reshape(rows) if photo_ids is not None else np.zeros(rows, np.int64)
        )
        self._norms = np.einsum("ij,ij->i", matrix, matrix)
        self._buffer = np.empty(rows, dtype=np.float32)
        self._lock = threading.Lock()  # guards the buffer
        # The most rows one subject has: `search` looks at k times this many best rows,
        # which is sure to hold the best row of each of the k best subjects.
        self._rows_per_subject = int(np.unique(self._subjects, return_counts=True)[1].max()) if rows else 0

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int, bytes]]) -> FaceIndex:
        """Build from (photo id, subject id, embedding bytes) rows."""
        photos, subjects, vectors = [], [], []
        for photo_id, subject_id, data in rows:
            photos.append(photo_id)
            subjects.append(subject_id)
            vectors.append(embedding_from_bytes(data))
        matrix = np.vstack(vectors) if vectors else np.empty((0, EMBEDDING_DIM), np.float32)
        return cls(matrix, subjects, photos)

    def __len__(self) -> int:
        return self._matrix.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._matrix, self._subjects, self._photos, self._norms, self._buffer))

    def _query(self, embedding) -> tuple[np.ndarray, float]:
        query = np.asarray(embedding, dtype=np.float32).reshape(EMBEDDING_DIM)
        return query, float(query @ query)

    def _squared_distances(self, query: np.ndarray) -> np.ndarray:
        """|x|² - 2 x·q for every row, in the shared buffer (hold the lock)."""
        buffer = self._buffer
        np.matmul(self._matrix, query, out=buffer)
        buffer *= -2.0
        buffer += self._norms
        return buffer

    def _match(self, row: int, squared: float) -> Match:
        return Match(
            subject_id=int(self._subjects[row]),
            photo_id=int(self._photos[row]),
            distance=float(np.sqrt(max(squared, 0.0))),
        )

    def nearest(self, embedding) -> Match | None:
        """The closest row, whatever its distance; None for an empty index."""
        if not len(self):
            return None
        query, query_norm = self._query(embedding)
        with self._lock:
            distances = self._squared_distances(query)
            row = int(distances.argmin())
            squared = float(distances[row]) + query_norm
        return self._match(row, squared)

    def identify(self, embedding, threshold: float) -> Match | None:
        """The closest subject if under `threshold`, else None."""
        match = self.nearest(embedding)
        return match if match is not None and match.distance < threshold else None

    def search(
        self,
        embedding,
        k: int = 10,
        *,
        max_distance: float | None = None,
        exclude_subject: int | None = None,
    ) -> list[Match]:
        """Up to `k` subjects, closest first, each with its best row (photo) and distance;
        only those under `max_distance` if given, never `exclude_subject`."""
        rows = len(self)
        if not rows or k <= 0:
            return []
        query, query_norm = self._query(embedding)
        wanted = (k + (exclude_subject is not None)) * self._rows_per_subject
        with self._lock:
            distances = self._squared_distances(query)
            candidates = np.argpartition(distances, wanted)[:wanted] if wanted < rows else np.arange(rows)
            squared = distances[candidates] + query_norm
        order = np.argsort(squared, kind="stable")
        matches: list[Match] = []
        seen: set[int] = set()
        limit = None if max_distance is None else max_distance * max_distance
        for position in order:
            if limit is not None and squared[position] >= limit:
                break
            row = int(candidates[position])
            subject = int(self._subjects[row])
            if subject in seen or subject == exclude_subject:
                continue
            seen.add(subject)
            matches.append(self._match(row, float(squared[position])))
            if len(matches) == k:
                break
        return matches
