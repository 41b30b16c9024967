"""Reading a bulk photo upload's ZIP archive safely. Parses only: no database, no storage.

An archive comes from anyone with an admin login, so it is read as hostile:

- **Size and count first.** The archive's size, and the number of members its end record
  announces, are checked before Python's `zipfile` builds one object per member, so a
  central directory of millions of entries costs nothing.
- **Zip bombs.** Each file is limited to one photo's size (`PHOTO_MAX_BYTES`, a larger one
  is that file's `photo_invalid`), all of them together to `PHOTO_ZIP_MAX_TOTAL_BYTES`
  (the whole archive's `zip_unpacks_too_large`), both by what the directory declares and
  by reading no more than the limit, whatever the compressed stream holds.
- **No paths.** Nothing is ever extracted to disk: a member is read into memory, and only
  its base name matters, so `../../etc/passwd` or `C:\\x\\E-1.jpg` is the file `passwd` or
  `E-1.jpg`. Folders are allowed (HR zips a folder per floor); the name is the file's.
- **Junk is skipped**, not reported: folders, macOS's `__MACOSX/` and `._` files, hidden
  files, Windows' `Thumbs.db` and `desktop.ini`.
- **Names.** An archive made on Traditional Chinese Windows stores names in Big5 without
  saying so; names are decoded as UTF-8, then CP950, and normalised to NFC (macOS writes
  NFD). Extensions are compared case-insensitively.

A file is named by job number: `E-0042.jpg`, with a second photo `E-0042_2.png` (or
`E-0042 (2).png`, as Windows names a copy). Which job number a name means is decided by the
caller, which knows the company's job numbers (`job_number_candidates`).
"""

from __future__ import annotations

import posixpath
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from kangaroo import errors
from kangaroo.errors import KangarooError

PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".bmp", ".gif"})
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
# Members of any kind (folders and macOS's shadow files included) an archive may list: a
# Mac's archive lists two per photo plus its folders.
MEMBERS_PER_FILE = 3
SECOND_PHOTO = re.compile(r"^(?P<job>.+?)(?:_(?P<n>\d{1,3})| \((?P<copy>\d{1,3})\))$")
UTF8_FLAG = 0x800


@dataclass(frozen=True)
class ZipMember:
    index: int  # position in the archive's member list: how the store step finds it again
    name: str  # the path inside the archive, decoded, as the person sees it
    file_name: str  # its base name, which is what counts
    size: int  # uncompressed, as the archive declares it
    is_photo: bool  # by its extension
    encrypted: bool


def zip_too_large(limit: int) -> KangarooError:
    return KangarooError(errors.ZIP_TOO_LARGE, extra={"limit": limit})


def zip_invalid() -> KangarooError:
    return KangarooError(errors.ZIP_INVALID)


def zip_open(file) -> zipfile.ZipFile:
    """The archive in `file` (a seekable binary file), or `zip_invalid` / `zip_too_large` /
    `zip_too_many_files`. The caller closes it."""
    limit = settings.PHOTO_ZIP_MAX_BYTES
    try:
        file.seek(0, 2)
        size = file.tell()
        file.seek(0)
    except (OSError, ValueError):
        raise zip_invalid() from None
    if size > limit:
        raise zip_too_large(limit)
    try:
        end = zipfile._EndRecData(file)  # the end record: its member count, before any parsing
    except (OSError, ValueError, EOFError):
        end = None
    if not end:
        raise zip_invalid()
    max_members = settings.PHOTO_ZIP_MAX_FILES * MEMBERS_PER_FILE
    if end[zipfile._ECD_ENTRIES_TOTAL] > max_members:
        raise KangarooError(errors.ZIP_TOO_MANY_FILES, extra={"limit": settings.PHOTO_ZIP_MAX_FILES})
    try:
        file.seek(0)
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise zip_invalid() from None


def _decoded_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        raw = name.encode("cp437")  # zipfile decoded the undeclared bytes as CP437
        for encoding in ("utf-8", "cp950"):
            try:
                name = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


def _is_junk(info: zipfile.ZipInfo, name: str) -> bool:
    if info.is_dir() or name.endswith("/"):
        return True
    if stat.S_ISLNK(info.external_attr >> 16):
        return True  # a link points at a file of someone's disk, never a photo
    parts = [part for part in name.split("/") if part]
    if not parts or "__MACOSX" in parts:
        return True
    base = parts[-1]
    return base.startswith(".") or base.lower() in JUNK_NAMES


def zip_members(archive: zipfile.ZipFile) -> list[ZipMember]:
    """The files of the archive worth a look (junk skipped), in archive order, or
    `zip_too_many_files` / `zip_unpacks_too_large` / `zip_empty`."""
    members = []
    total = 0
    for index, info in enumerate(archive.infolist()):
        name = _decoded_name(info)
        if _is_junk(info, name):
            continue
        file_name = posixpath.basename(name).strip()
        extension = posixpath.splitext(file_name)[1].lower()
        members.append(
            ZipMember(
                index=index,
                name=name,
                file_name=file_name,
                size=info.file_size,
                is_photo=extension in PHOTO_EXTENSIONS,
                encrypted=bool(info.flag_bits & 0x1),
            )
        )
        total += info.file_size
    if len(members) > settings.PHOTO_ZIP_MAX_FILES:
        raise KangarooError(errors.ZIP_TOO_MANY_FILES, extra={"limit": settings.PHOTO_ZIP_MAX_FILES})
    if total > settings.PHOTO_ZIP_MAX_TOTAL_BYTES:
        raise KangarooError(errors.ZIP_UNPACKS_TOO_LARGE, extra={"limit": settings.PHOTO_ZIP_MAX_TOTAL_BYTES})
    if not any(member.is_photo for member in members):
        raise KangarooError(errors.ZIP_EMPTY)
    return members


def zip_read(archive: zipfile.ZipFile, index: int) -> bytes:
    """The bytes of member `index`, at most one photo's size (a larger one, or a damaged or
    encrypted member, is `photo_invalid` with its reason)."""
    from kangaroo.images import photo_invalid

    info = archive.infolist()[index]
    limit = settings.PHOTO_MAX_BYTES
    too_large = photo_invalid("too_large", _("The photo is larger than %(mb)d MB.") % {"mb": limit // 2**20})
    if info.flag_bits & 0x1:
        raise photo_invalid("encrypted", _("The file is encrypted in the archive."))
    if info.file_size > limit:
        raise too_large
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        raise photo_invalid("unreadable", _("The file is damaged in the archive.")) from None
    if len(data) > limit:
        raise too_large
    return data


def job_number_candidates(file_name: str) -> list[str]:
    """The job numbers a file name may mean, the likelier first: `E-0042_2.png` may be the
    second photo of E-0042 or the first of a job number `E-0042_2`."""
    stem = posixpath.splitext(file_name)[0].strip()
    candidates = [stem] if stem else []
    second = SECOND_PHOTO.match(stem)
    if second:
        candidates.append(second.group("job").strip())
    return candidates
