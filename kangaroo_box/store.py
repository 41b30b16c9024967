"""The box's state in one SQLite file: its copy of the gallery, its cursor, its outbox.

Why one file and these transactions:

- A gallery page and the cursor after it are written in one transaction: a box that stops
  half-way either has both or neither, and the feed's changes are idempotent, so reading a
  page again after a crash is harmless. A restart resumes from the saved cursor.
- An event is written to the outbox before anything is sent, with its `uid` chosen once;
  a row leaves the outbox only when the portal has answered for it (`created`,
  `duplicate`, or refused for good). A post whose answer was lost is sent again with the
  same uids, and the portal answers `duplicate`: nothing lost, nothing doubled.
- A picture from the watch folder is recorded in the same transaction as its event, so a
  box stopped between storing the event and moving the file away does not recognise the
  picture a second time.

The file is opened in WAL mode with full synchronisation: a committed event survives a
power cut, which is the point of an outbox.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    job_number TEXT NOT NULL,
    visit_start TEXT,
    visit_end TEXT
);
CREATE TABLE IF NOT EXISTS faces (
    photo_id INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_subject ON faces (subject_id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    item TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Subject:
    id: int
    name: str
    type: str
    job_number: str


@dataclass(frozen=True)
class Pending:
    id: int
    uid: str
    item: dict


class Store:
    def __init__(self, path: str | Path):
        self.path = str(path)
        # One thread uses it (the agent's loop); autocommit, with explicit transactions.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _transaction(self):
        return _Transaction(self._db)

    # --- meta ---------------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def cursor(self) -> int:
        return int(self._get("cursor") or 0)

    @property
    def threshold(self) -> float | None:
        value = self._get("threshold")
        return float(value) if value is not None else None

    def set_threshold(self, value: float) -> None:
        self._set("threshold", repr(float(value)))

    def claim(self, company: str) -> bool:
        """Tie the file to the company of the box's key. A file that held another company's
        gallery and events is emptied (they mean nothing to this company); True then."""
        with self._transaction():
            previous = self._get("company")
            if previous == company:
                return False
            changed = previous is not None
            if changed:
                self._db.execute("DELETE FROM outbox")
                self._db.execute("DELETE FROM files")
                self._clear_gallery()
            self._set("company", company)
            return changed

    # --- the gallery --------------------------------------------------------------------------

    def apply(self, changes: Iterable[dict], *, next_cursor: int, model: str) -> int:
        """Apply a feed page's `changes` (as the feed sends them: embeddings in base64) and
        move the cursor to `next_cursor`, all or nothing. Faces of
        another model than `model` are left out: their distances mean nothing to ours.
        Answers how many changes were applied."""
        count = 0
        with self._transaction():
            for change in changes:
                subject_id = int(change["id"])
                self._db.execute("DELETE FROM faces WHERE subject_id = ?", (subject_id,))
                self._db.execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
                if change["op"] == "upsert":
                    self._db.execute(
                        "INSERT INTO subjects (id, name, type, job_number, visit_start, visit_end) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            subject_id,
                            change["name"],
                            change["type"],
                            change["job_number"],
                            change.get("visit_start"),
                            change.get("visit_end"),
                        ),
                    )
                    self._db.executemany(
                        "INSERT OR REPLACE INTO faces (photo_id, subject_id, embedding) VALUES (?, ?, ?)",
                        [
                            (int(face["photo_id"]), subject_id, base64.b64decode(face["embedding"]))
                            for face in change.get("faces", ())
                            if face.get("model") == model
                        ],
                    )
                count += 1
            self._set("cursor", str(int(next_cursor)))
        return count

    def _clear_gallery(self) -> None:
        self._db.execute("DELETE FROM faces")
        self._db.execute("DELETE FROM subjects")
        self._set("cursor", "0")

    def clear_gallery(self) -> None:
        """Forget the gallery and start from cursor 0 (the feed asked for a resync)."""
        with self._transaction():
            self._clear_gallery()

    def face_rows(self) -> list[tuple[int, int, bytes]]:
        """(photo id, subject id, embedding bytes) of every face, for the face index."""
        return self._db.execute("SELECT photo_id, subject_id, embedding FROM faces ORDER BY photo_id").fetchall()

    def subject(self, subject_id: int) -> Subject | None:
        row = self._db.execute("SELECT id, name, type, job_number FROM subjects WHERE id = ?", (subject_id,)).fetchone()
        return Subject(*row) if row else None

    def counts(self) -> tuple[int, int]:
        """(subjects, faces) held."""
        return (
            self._db.execute("SELECT count(*) FROM subjects").fetchone()[0],
            self._db.execute("SELECT count(*) FROM faces").fetchone()[0],
        )

    # --- the outbox ---------------------------------------------------------------------------

    def enqueue(self, item: dict, *, file: tuple[str, int, int] | None = None) -> None:
        """Keep `item` (an event as the portal's device API takes it, with its `uid`) until
        the portal has answered for it; `file` (name, size, mtime_ns) records the picture it
        came from, in the same transaction."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO outbox (uid, item, created_at) VALUES (?, ?, ?)",
                (item["uid"], json.dumps(item, separators=(",", ":")), time.time()),
            )
            if file is not None:
                self._db.execute("INSERT OR REPLACE INTO files (name, size, mtime_ns) VALUES (?, ?, ?)", file)

    def pending(self, limit: int) -> list[Pending]:
        """The oldest `limit` events not yet answered for, oldest first."""
        rows = self._db.execute("SELECT id, uid, item FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [Pending(id=row[0], uid=row[1], item=json.loads(row[2])) for row in rows]

    def pending_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def done(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            with self._transaction():
                self._db.executemany("DELETE FROM outbox WHERE id = ?", [(pk,) for pk in ids])

    # --- pictures of the watch folder ---------------------------------------------------------

    def file_recorded(self, name: str, size: int, mtime_ns: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM files WHERE name = ? AND size = ? AND mtime_ns = ?", (name, size, mtime_ns)
        ).fetchone()
        return row is not None

    def record_file(self, name: str, size: int, mtime_ns: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO files (name, size, mtime_ns) VALUES (?, ?, ?)", (name, size, mtime_ns))

    def forget_file(self, name: str) -> None:
        """The picture has left the watch folder: its record is no longer needed."""
        self._db.execute("DELETE FROM files WHERE name = ?", (name,))


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
