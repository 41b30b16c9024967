"""The one owner of biometric files: face photos, their thumbnails, event snapshots,
evidence images and signed consent forms. Every one of them is written, served and
deleted through this module.

- **What.** Only normalised JPEGs are stored: `kangaroo.images.normalise_photo` (decoded by
  content, bombs refused before decoding, upright, RGB, scaled down, re-encoded without any
  metadata) turns every upload and every device snapshot into the bytes given to `media_save`.
  The one exception is a bulk photo upload's ZIP archive (`UPLOAD`), kept as sent only
  between its preview and its confirmation, and deleted once its photos are stored or the
  upload expires.
- **Where.** Each file is stored as `<kind>/<company id>/<random>.jpg` in Django's default
  storage: the file system (`MEDIA_ROOT`) in the embedded shape, S3-compatible object storage
  when `MEDIA_STORAGE_URL` is set, so every web node sees the same files. The company in the
  path is what lets a company's files be purged by listing, without a row to point at them.
- **Serving.** Only through `media_response`, from a view that has checked the requester's
  company first. There is no MEDIA_URL and no public bucket URL: a bucket needs no public
  access at all.
- **Deleting.** A row's files go once the row's deletion is committed
  (`media_delete_on_commit`), never before, since a rolled-back delete must keep them; files
  written inside a block that fails are deleted at once (`media_written`), so a failed write
  leaves no orphan. Deleting a company deletes every file under its folders
  (`media_purge_company`, a job with retries), including any that no row names any more.
"""

from __future__ import annotations

import logging
import posixpath
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpResponse

from kangaroo.jobs import enqueue

logger = logging.getLogger(__name__)


class MediaKind(StrEnum):
    """The kinds of biometric file, each the top folder of its files."""

    PHOTO = "photos"  # a subject's normalised face photo
    THUMBNAIL = "thumbs"  # its small copy for lists and live pages
    SNAPSHOT = "snapshots"  # what a device saw when it recorded an event
    EVIDENCE = "evidence"  # crops and frames the face engine keeps with a decision
    UPLOAD = "uploads"  # a bulk photo upload's ZIP archive, until confirmed or expired
    CONSENT = "consents"  # a consent's evidence: the signed form, scanned or photographed


SUFFIXES = {MediaKind.UPLOAD: ".zip"}


def media_save(*, kind: MediaKind, company_id: int, content: bytes | File, written: list[str] | None = None) -> str:
    """Store `content` (a JPEG; for `UPLOAD` a ZIP archive, which may be an uploaded file
    rather than bytes) as a new file of `kind` for the company; returns its name.

    `written` is the list of a `media_written` block: the name is added to it, so the file
    is deleted again if the block fails.
    """
    kind = MediaKind(kind)
    path = f"{kind}/{int(company_id)}/{secrets.token_hex(16)}{SUFFIXES.get(kind, '.jpg')}"
    if not isinstance(content, File):
        content = ContentFile(content)
    elif hasattr(content, "seek"):
        content.seek(0)
    name = default_storage.save(path, content)
    if written is not None:
        written.append(name)
    return name


def media_read(name: str) -> bytes:
    """The bytes of a stored file (e.g. a photo for the face engine). Raises OSError (such
    as FileNotFoundError) when the storage cannot give it."""
    with default_storage.open(name, "rb") as file:
        return file.read()


def media_copy(*, name: str, kind: MediaKind, company_id: int, written: list[str] | None = None) -> str:
    """Store a copy of the named file as a new file of `kind` for the company; returns its
    name. A copy, not a second name for the same file: each row deletes its own file."""
    return media_save(kind=kind, company_id=company_id, content=media_read(name), written=written)


@contextmanager
def media_written() -> Iterator[list[str]]:
    """Collects the names of the files saved inside the block (pass the list to `media_save`)
    and deletes them if the block raises, so a failed write leaves no orphan file behind.

    Services are the outermost transaction of every request that stores files, so an
    exception that rolls the rows back passes through here first.
    """
    written: list[str] = []
    try:
        yield written
    except BaseException:
        media_delete(written)
        raise


def media_delete(names: Iterable[str]) -> None:
    """Delete the named files now. A file already gone is no error. A storage that fails is
    logged, not raised: the rows are gone already, and the company purge still finds the file."""
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("could not delete media file %s", name)


def media_delete_on_commit(names: Iterable[str]) -> None:
    """Delete the named files once the current transaction commits (at once outside one)."""
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: media_delete(names))


def media_open(name: str):
    """A stored file opened for reading (a file object; close it, e.g. with `with`). Raises
    OSError (such as FileNotFoundError) when the storage cannot give it."""
    return default_storage.open(name, "rb")


def media_purge_company(company_id: int) -> int:
    """Delete every biometric file of the company, whether or not a row still names it;
    returns how many files were deleted. Raises if the storage fails, so that the job that
    runs it is retried."""
    deleted = 0
    for kind in MediaKind:
        deleted += _purge_folder(f"{kind}/{int(company_id)}")
    return deleted


def purge_deleted_company(sender, instance, **kwargs) -> None:
    """post_delete of a company: once that commits, a job empties its folders, with retries
    (a storage that is down for a moment must not leave a deleted company's faces behind).
    This is also what deletes its events' snapshots: a company's events go by one SQL
    DELETE, with no handler per row. Any file no row named goes too."""
    enqueue(media_purge_company, int(instance.pk))


def _purge_folder(folder: str) -> int:
    bucket = getattr(default_storage, "bucket", None)
    if bucket is not None:
        # Object storage: one request per 1,000 objects instead of one per object.
        prefix = posixpath.join(default_storage.location or "", folder) + "/"
        deleted = 0
        for answer in bucket.objects.filter(Prefix=prefix).delete():
            if answer.get("Errors"):
                raise OSError(f"could not delete {len(answer['Errors'])} media files under {prefix}")
            deleted += len(answer.get("Deleted", []))
        return deleted
    names = list(_walk(folder))
    for name in names:
        default_storage.delete(name)
    # The file system keeps folders; the company's leave nothing behind.
    shutil.rmtree(default_storage.path(folder), ignore_errors=True)
    return len(names)


def _walk(folder: str) -> Iterator[str]:
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield posixpath.join(folder, name)
    for sub in folders:
        yield from _walk(posixpath.join(folder, sub))


def media_response(file) -> HttpResponse:
    """A stored JPEG (photo, thumbnail, snapshot) for the one who passed the checks.

    Read whole rather than streamed: they are small (normalised, at most a few hundred KB),
    and under ASGI a streamed file would be pulled through a thread per chunk. Private
    caching only: these are biometric data behind a login.
    """
    with file.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
