"""What changed in a company's departments, subjects and photos, announced by the services.

Every change to these rows, from any entry point (admin, API, import, jobs, commands),
goes through `subjects.services`, and the service announces it with exactly one of the
signals below per kind of change. A higher app (the gallery change log, the face index,
webhooks) listens here instead of hooking model saves, so a bulk write that never calls
`save()` is announced like a single one.

Contract:

- Every signal carries `company` (the Company) and `ids` (a non-empty list of primary keys,
  never instances); the sender is the model class. A bulk write sends one signal per kind
  of change carrying every id it wrote, never one per row.
- Signals are sent synchronously INSIDE the service's transaction, after the rows are
  written (or deleted). A listener that writes to the database, such as the gallery change
  log appending its row, writes in that same transaction: its row commits or rolls back
  with the change, so the log can never miss or invent one.
- A listener that does anything outside the database (cache, websockets, queues, files,
  HTTP) registers `transaction.on_commit` itself: a change may still roll back when the
  signal arrives. An exception a listener raises rolls the change back.
- Deleted rows are gone when their signal arrives: a listener gets their ids only.
- Cascades are announced too: deleting a subject announces its photos removed and the
  visitors it hosted changed (`host`); deleting a department announces its subjects
  changed (`department`).

Signals and their arguments besides `company` and `ids`:

- `department_changed`: `action`, one of "created", "updated", "deleted".
- `subject_changed`: `action`, one of "created", "updated", "deleted"; `fields`, the names
  of the changed fields for "updated" (empty otherwise).
- `photo_added` and `photo_removed`: `subject_ids`, the subject of each photo, in the order
  of `ids`.
- `photo_enrolled`: `subject_ids` likewise. The face engine has finished with these photos
  (embedding stored, or the photo rejected with its reason), so what a recognition box
  may match against has changed.
- `consent_withdrawn`: `ids` are subjects who withdrew their consent; their photos are
  deleted already (and announced removed). A higher app deletes whatever biometric data of
  theirs it holds (events: snapshots and unknown-person links), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.dispatch import Signal

from subjects.models import Department, Photo, Subject

if TYPE_CHECKING:
    from accounts.models import Company

CREATED, UPDATED, DELETED = "created", "updated", "deleted"

department_changed = Signal()
subject_changed = Signal()
photo_added = Signal()
photo_removed = Signal()
photo_enrolled = Signal()
consent_withdrawn = Signal()
subject_erased = Signal()


def announce_departments(*, company: Company, action: str, ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        department_changed.send(sender=Department, company=company, ids=ids, action=action)


def announce_subjects(*, company: Company, action: str, ids: Iterable[int], fields: Sequence[str] = ()) -> None:
    ids = list(ids)
    if ids:
        subject_changed.send(sender=Subject, company=company, ids=ids, action=action, fields=tuple(fields))


def announce_consent_withdrawn(*, company: Company, ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        consent_withdrawn.send(sender=Subject, company=company, ids=ids)


def announce_photos_added(*, company: Company, photos: Iterable[tuple[int, int]]) -> None:
    """`photos`: (photo id, subject id) pairs."""
    _announce_photos(photo_added, company=company, photos=photos)


def announce_photos_removed(*, company: Company, photos: Iterable[tuple[int, int]]) -> None:
    """`photos`: (photo id, subject id) pairs."""
    _announce_photos(photo_removed, company=company, photos=photos)


def announce_photos_enrolled(*, company: Company, photos: Iterable[tuple[int, int]]) -> None:
    """`photos`: (photo id, subject id) pairs."""
    _announce_photos(photo_enrolled, company=company, photos=photos)


def _announce_photos(signal: Signal, *, company: Company, photos: Iterable[tuple[int, int]]) -> None:
    pairs = list(photos)
    if pairs:
        signal.send(
            sender=Photo,
            company=company,
            ids=[photo for photo, _ in pairs],
            subject_ids=[subject for _, subject in pairs],
        )


def announce_subject_erased(*, company: Company, identifiers: dict[int, Sequence[str]]) -> None:
    if identifiers:
        subject_erased.send(
            sender=Subject,
            company=company,
            ids=list(identifiers),
            identifiers={pk: [text for text in texts if text] for pk, texts in identifiers.items()},
        )
