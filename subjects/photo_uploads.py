"""Bulk photo upload: a ZIP of photos named by job number enrols a whole team at once.

1. **Preview** (`photo_upload_preview`, in the request). The archive is checked
   (`subjects.photo_zip`: size, member count, zip bombs, junk), each file's name matched to
   a job number of the uploader's company only (another company's job number is simply
   unknown), and each matched file's header read (format and pixel count, a millisecond a
   file). The result is one entry per file: `matched` with the subject, or the code that
   keeps it out (`job_number_unknown`, `photo_invalid` with its reason, `subject_archived`,
   `subject_photo_limit`). Nothing is stored but the archive itself, through kangaroo.media,
   to wait for the confirmation.
2. **Confirm** (`photo_upload_confirm`) starts a recorded job (accounts.jobs: progress,
   retries), detached, so no request waits for hundreds of photos to be decoded and
   enrolled, in the embedded shape either.
3. **Store** (`photo_upload_store`, the job). The matched files are read from the archive
   a few at a time (`STORE_CHUNK`): each batch is decoded and normalised (the slow part,
   outside any transaction), then stored through `subjects.services.photos_add_bulk` in
   one transaction with the upload's record of what became of each file. A batch that
   fails stores nothing and leaves no file, and the retry goes on with the files still
   waiting. A file refused now (damaged past its header, the same picture as one the
   subject has, a subject archived or deleted since the preview) gets its code; the others
   are stored, each queuing its enrolment job after commit (subjects.signals). Then the
   archive goes.
4. **Expiry.** An upload left unconfirmed is deleted with its archive after
   `PHOTO_ZIP_EXPIRES_AFTER` seconds (`photo_uploads_expire`, a periodic task).

Archived subjects are left out on purpose: an archived person has left, and a folder of
last year's photos must not quietly enrol them again; restoring them first is one click.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.jobs import job_progress, job_start
from accounts.models import Company, Job, JobState, User, job_kind_register
from accounts.services import audit_record
from kangaroo import errors
from kangaroo.errors import KangarooError
from kangaroo.images import NormalisedImage, normalise_photo, photo_invalid, photo_probe
from kangaroo.media import MediaKind, media_delete_on_commit, media_open, media_save, media_written
from subjects import photo_zip
from subjects.models import (
    FILE_MATCHED,
    FILE_STORED,
    MAX_PHOTOS_PER_SUBJECT,
    Photo,
    PhotoUpload,
    PhotoUploadState,
    Subject,
)
from subjects.selectors import photos_allowed_for
from subjects.services import photos_add_bulk

logger = logging.getLogger(__name__)

JOB_KIND = job_kind_register("photos.bulk_upload", _("Photos from a ZIP archive"))
JOB_QUEUE = "default"
# Why a file of an upload is left out, in the preview or when it is stored.
FILE_ERRORS = [
    errors.JOB_NUMBER_UNKNOWN,
    errors.PHOTO_INVALID,
    errors.PHOTO_DUPLICATE,
    errors.SUBJECT_ARCHIVED,
    errors.CONSENT_REQUIRED,
    errors.SUBJECT_PHOTO_LIMIT,
]
FILE_MESSAGES = {
    FILE_MATCHED: _("Matched; stored when you confirm."),
    FILE_STORED: _("Stored."),
    **{error.code: error.message for error in FILE_ERRORS},
}
REASON_MESSAGES = {
    "unsupported_format": _("The file is not a JPEG, PNG, WebP, HEIC, BMP or GIF image."),
    "too_large": _("The photo is larger than the portal accepts."),
    "too_many_pixels": _("The image has more pixels than the portal accepts."),
    "empty": _("The file is empty."),
    "unreadable": _("The image could not be read."),
    "truncated": _("The image is damaged or incomplete."),
    "encrypted": _("The file is encrypted in the archive."),
}


def file_status_message(entry: dict) -> str:
    """What became of a file of an upload, in words of the active language."""
    if entry["status"] == errors.PHOTO_INVALID.code and entry.get("reason") in REASON_MESSAGES:
        return str(REASON_MESSAGES[entry["reason"]])
    return str(FILE_MESSAGES.get(entry["status"], entry["status"]))


# The store job reads, normalises and stores this many photos at a time, each batch in a
# transaction of its own with the upload's record of its files: a 500-photo archive never
# has more than this many images in memory, no lock is held while photos are decoded, and
# a retry goes on where a failed attempt stopped. Also how often the progress bar moves.
STORE_CHUNK = 10


def _entry(member: photo_zip.ZipMember) -> dict:
    return {
        "index": member.index,
        "name": member.name,
        "job_number": "",
        "subject": None,
        "subject_name": "",
        "status": FILE_MATCHED,
        "reason": "",
        "photo": None,
    }


def _refuse(entry: dict, error: KangarooError) -> None:
    entry["status"] = error.code
    entry["reason"] = str(error.extra.get("reason", ""))


def _match_subjects(company: Company, members: list[photo_zip.ZipMember]) -> dict[str, Subject]:
    """The company's subjects any member's name may mean, by job number: exact first, then
    ignoring case (a file system that changed `E-0042` to `e-0042`)."""
    wanted = {candidate for member in members for candidate in photo_zip.job_number_candidates(member.file_name)}
    if not wanted:
        return {}
    subjects = Subject.objects.for_company(company).only("pk", "name", "job_number", "archived")
    found = {subject.job_number: subject for subject in subjects.filter(job_number__in=wanted)}
    missing = {value.upper() for value in wanted - set(found)}
    if missing:
        by_upper: dict[str, list[Subject]] = {}
        for subject in subjects.annotate(upper=Upper("job_number")).filter(upper__in=missing):
            by_upper.setdefault(subject.job_number.upper(), []).append(subject)
        for value in wanted - set(found):
            same = by_upper.get(value.upper(), [])
            if len(same) == 1:  # two job numbers differing only by case: neither is guessed
                found[value] = same[0]
    return found


def photo_upload_preview(*, company: Company, actor: User | None, upload) -> PhotoUpload:
    """Check an uploaded ZIP archive (a file object with `name`) and record its preview;
    stores the archive for the confirmation and nothing else. Raises `zip_*` errors for
    an archive that cannot be used at all."""
    with photo_zip.zip_open(upload) as archive:
        members = photo_zip.zip_members(archive)
        subjects = _match_subjects(company, members)
        photos_now = dict.fromkeys((subject.pk for subject in subjects.values()), 0)
        for subject_id in (
            Photo.objects.for_company(company)
            .filter(subject_id__in=list(photos_now))
            .values_list("subject_id", flat=True)
        ):
            photos_now[subject_id] += 1
        consented = photos_allowed_for(company=company, subject_ids=list(photos_now))
        entries = []
        for member in members:
            entry = _entry(member)
            entries.append(entry)
            subject = next(
                (subjects[c] for c in photo_zip.job_number_candidates(member.file_name) if c in subjects), None
            )
            if subject is None:
                candidates = photo_zip.job_number_candidates(member.file_name)
                entry["job_number"] = candidates[-1] if candidates and member.is_photo else ""
            else:
                entry.update(job_number=subject.job_number, subject=subject.pk, subject_name=subject.name)
            try:
                if not member.is_photo:
                    raise _not_a_photo()
                if subject is None:
                    raise KangarooError(errors.JOB_NUMBER_UNKNOWN)
                if subject.archived:
                    raise KangarooError(errors.SUBJECT_ARCHIVED)
                if subject.pk not in consented:
                    raise KangarooError(errors.CONSENT_REQUIRED)
                photo_probe(photo_zip.zip_read(archive, member.index))
                if photos_now[subject.pk] >= MAX_PHOTOS_PER_SUBJECT:
                    raise KangarooError(errors.SUBJECT_PHOTO_LIMIT)
                photos_now[subject.pk] += 1
            except KangarooError as exc:
                _refuse(entry, exc)
    with transaction.atomic(), media_written() as written:
        name = media_save(kind=MediaKind.UPLOAD, company_id=company.pk, content=upload, written=written)
        upload.seek(0, 2)
        record = PhotoUpload.objects.create(
            company=company,
            created_by=actor,
            file_name=(getattr(upload, "name", "") or "photos.zip")[:255],
            archive=name,
            size=upload.tell(),
            entries=entries,
            expires_at=timezone.now() + timedelta(seconds=settings.PHOTO_ZIP_EXPIRES_AFTER),
        )
        audit_record(
            company=company,
            actor=actor,
            action="photo_upload.preview",
            obj=record,
            changes={"files": len(entries), "matched": record.count(FILE_MATCHED)},
        )
    return record


def _not_a_photo() -> KangarooError:
    return photo_invalid("unsupported_format", REASON_MESSAGES["unsupported_format"])


def photo_upload_confirm(*, company: Company, actor: User | None, upload: PhotoUpload) -> Job:
    """Start storing the matched photos of a previewed upload (a recorded job). Refused
    when it is confirmed already (`photo_upload_confirmed`), expired
    (`photo_upload_expired`) or matched nothing (`photo_upload_nothing_to_store`)."""
    with transaction.atomic():
        upload = PhotoUpload.objects.for_company(company).select_for_update().get(pk=upload.pk)
        if upload.state != PhotoUploadState.PREVIEW:
            raise KangarooError(errors.PHOTO_UPLOAD_CONFIRMED, extra={"job": upload.job_id})
        if upload.expires_at <= timezone.now() or not upload.archive:
            raise KangarooError(errors.PHOTO_UPLOAD_EXPIRED)
        matched = upload.count(FILE_MATCHED)
        if not matched:
            raise KangarooError(errors.PHOTO_UPLOAD_NOTHING_TO_STORE)
        job = job_start(
            company=company,
            actor=actor,
            kind=JOB_KIND,
            key=f"{JOB_KIND}.{upload.pk}",
            func=photo_upload_store_job,
            args=[upload.pk],
            total=matched,
            queue=JOB_QUEUE,
            detach=True,  # hundreds of photos, then their enrolment: not in the request
        )
        upload.state = PhotoUploadState.STORING
        upload.job = job
        upload.save(update_fields=["state", "job"])
        audit_record(company=company, actor=actor, action="photo_upload.confirm", obj=upload)
    return job


def photo_upload_store_job(upload_id: int) -> None:
    """The confirmation's job: takes the upload's id (see `photo_upload_store`)."""
    uploads = PhotoUpload.objects.filter(pk=upload_id)  # tenant: the job's own upload, by the id it was queued with
    upload = uploads.select_related("company", "created_by", "job").first()
    if upload is not None:
        photo_upload_store(upload=upload)


def photo_upload_store(*, upload: PhotoUpload) -> None:
    """Store the matched photos of a confirmed upload (module docstring, step 3). Safe to
    run again: an upload stored already is left alone, and a retry goes on with the files
    a failed attempt did not store."""
    if upload.state != PhotoUploadState.STORING:
        return
    pending = [entry["index"] for entry in upload.entries if entry["status"] == FILE_MATCHED]
    # The files matched at the confirmation; a retry has fewer left to store.
    matched_then = upload.job.total if upload.job is not None else None
    total = max(matched_then or 0, len(pending))
    job_progress(done=total - len(pending), total=total)
    with media_open(upload.archive) as file, photo_zip.zip_open(file) as archive:
        for start in range(0, len(pending), STORE_CHUNK):
            if not _store_chunk(upload, archive, pending[start : start + STORE_CHUNK]):
                return  # deleted or settled meanwhile
            job_progress(done=total - len(pending) + min(start + STORE_CHUNK, len(pending)))
    with transaction.atomic():
        record = PhotoUpload.objects.for_company(upload.company_id).select_for_update().get(pk=upload.pk)
        if record.state != PhotoUploadState.STORING:
            return
        record.state = PhotoUploadState.STORED
        media_delete_on_commit([record.archive])
        record.archive = ""
        record.save(update_fields=["state", "archive"])
        audit_record(
            company=upload.company,
            actor=upload.created_by,
            action="photo_upload.store",
            obj=record,
            changes={"stored": record.count(FILE_STORED)},
        )


def _store_chunk(upload: PhotoUpload, archive, indexes: list[int]) -> bool:
    """Read, normalise and store the members `indexes` of the archive, and record what
    became of each in the upload, in one transaction; False if the upload is no longer
    being stored. The decoding, the slow part, holds no lock."""
    images: dict[int, NormalisedImage | KangarooError] = {}
    for index in indexes:
        try:
            images[index] = normalise_photo(photo_zip.zip_read(archive, index))
        except KangarooError as exc:
            images[index] = exc
    company = upload.company
    with transaction.atomic(), media_written() as written:
        record = PhotoUpload.objects.for_company(company).select_for_update().filter(pk=upload.pk).first()
        if record is None or record.state != PhotoUploadState.STORING:
            return False
        entries = [dict(entry) for entry in record.entries]
        todo = [entry for entry in entries if entry["index"] in images and entry["status"] == FILE_MATCHED]
        readable = []
        for entry in todo:
            image = images[entry["index"]]
            if isinstance(image, KangarooError):
                _refuse(entry, image)
            else:
                readable.append((entry, image))
        results = photos_add_bulk(
            company=company,
            actor=upload.created_by,
            photos=[(entry["subject"], image) for entry, image in readable],
            refuse_archived=True,
            written=written,
        )
        for (entry, _image), result in zip(readable, results, strict=True):
            if isinstance(result, Photo):
                entry.update(status=FILE_STORED, photo=result.pk)
            elif result.error is errors.NOT_FOUND:  # the subject was deleted since the preview
                _refuse(entry, KangarooError(errors.JOB_NUMBER_UNKNOWN))
            else:
                _refuse(entry, result)
        record.entries = entries
        record.save(update_fields=["entries"])
    return True


def photo_upload_delete(*, company: Company, actor: User | None, upload: PhotoUpload) -> None:
    """Drop an upload that is not being stored (a preview abandoned, or an old record) and
    its archive, once that commits."""
    with transaction.atomic():
        upload = PhotoUpload.objects.for_company(company).select_for_update().get(pk=upload.pk)
        if upload.state == PhotoUploadState.STORING:
            raise KangarooError(errors.PHOTO_UPLOAD_CONFIRMED, extra={"job": upload.job_id})
        audit_record(company=company, actor=actor, action="photo_upload.delete", obj=upload)
        media_delete_on_commit([upload.archive])
        upload.delete()


def photo_uploads_expire(*, now=None) -> int:
    """Delete every company's unconfirmed uploads past their expiry with their archives, and
    let go of the archive of an upload whose store job has failed for good (a periodic
    task). Returns how many uploads changed."""
    now = now or timezone.now()
    uploads = PhotoUpload.objects.all()  # tenant: the runner settles every company's uploads
    changed = 0
    for upload in uploads.filter(state=PhotoUploadState.PREVIEW, expires_at__lte=now).order_by("pk"):
        with transaction.atomic():
            if uploads.filter(pk=upload.pk, state=PhotoUploadState.PREVIEW).delete()[0]:
                media_delete_on_commit([upload.archive])
                changed += 1
    failed = uploads.filter(state=PhotoUploadState.STORING, job__state=JobState.FAILED)
    for upload in failed.order_by("pk"):
        with transaction.atomic():
            if uploads.filter(pk=upload.pk, state=PhotoUploadState.STORING).update(
                state=PhotoUploadState.FAILED, archive=""
            ):
                media_delete_on_commit([upload.archive])
                changed += 1
    return changed
