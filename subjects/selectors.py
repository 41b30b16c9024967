"""Reads on subjects and photos, always inside one company."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Company
from kangaroo import errors
from kangaroo.errors import KangarooError
from subjects.models import (
    FILE_MATCHED,
    FILE_STORED,
    IN_FORCE,
    Consent,
    GalleryChange,
    GalleryCounter,
    GalleryOp,
    Photo,
    PhotoStatus,
    PhotoUpload,
    Subject,
)

VISIT_STATES = ("current", "upcoming", "expired")
PHOTO_STATES = ("ok", "pending", "rejected", "none", "unusable")


def with_first_photo(queryset: QuerySet[Subject]) -> QuerySet[Subject]:
    """Annotate `first_photo_id` (for thumbnails) with one correlated subquery, so a list
    of any length costs the same number of queries."""
    first = (
        Photo.objects.filter(company=OuterRef("company"), subject=OuterRef("pk"))  # tenant: correlated to the row
        .order_by("id")
        .values("id")[:1]
    )
    return queryset.annotate(first_photo_id=Subquery(first))


def with_usable_photo_count(queryset: QuerySet[Subject]) -> QuerySet[Subject]:
    """Annotate `usable_photos`, how many `ok` photos each subject has (one subquery)."""
    row = {"company": OuterRef("company"), "subject": OuterRef("pk")}
    usable = (
        Photo.objects.filter(status=PhotoStatus.OK, **row)  # tenant: correlated to the row
        .order_by()
        .values("subject")
        .annotate(count=Count("id"))
        .values("count")
    )
    return queryset.annotate(usable_photos=Coalesce(Subquery(usable, output_field=IntegerField()), 0))


def filter_visit_state(queryset: QuerySet[Subject], state: str, now: datetime | None = None) -> QuerySet[Subject]:
    now = now or timezone.now()
    if state == "current":
        return queryset.filter(
            Q(visit_start__isnull=False) | Q(visit_end__isnull=False),
            Q(visit_start__isnull=True) | Q(visit_start__lte=now),
            Q(visit_end__isnull=True) | Q(visit_end__gte=now),
        )
    if state == "upcoming":
        return queryset.filter(visit_start__gt=now)
    if state == "expired":
        return queryset.filter(visit_end__lt=now)
    return queryset


def filter_photo_state(queryset: QuerySet[Subject], state: str) -> QuerySet[Subject]:
    photos = Photo.objects.filter(company=OuterRef("company"), subject=OuterRef("pk"))  # tenant: correlated to the row
    if state == "none":
        return queryset.filter(~Exists(photos))
    if state == "unusable":  # no photo the doors can recognise: none at all, or none ok
        return queryset.filter(~Exists(photos.filter(status=PhotoStatus.OK)))
    if state in PhotoStatus.values:
        return queryset.filter(Exists(photos.filter(status=state)))
    return queryset


def subject_search(queryset: QuerySet[Subject], text: str) -> QuerySet[Subject]:
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(
        Q(name__icontains=text) | Q(job_number__icontains=text) | Q(email__icontains=text) | Q(phone__icontains=text)
    )


def photo_list(*, company: Company, subject: Subject | None = None) -> QuerySet[Photo]:
    photos = Photo.objects.for_company(company)
    return photos.filter(subject=subject) if subject is not None else photos


# --- Consent ----------------------------------------------------------------------------------


def subject_by_job_number(*, company: Company, job_number: str) -> Subject:
    """The company's subject with this job number; `not_found` on `job_number` for one the
    company does not have (another company's included)."""
    subject = Subject.objects.for_company(company).filter(job_number=job_number).first()
    if subject is None:
        raise KangarooError(errors.NOT_FOUND, fields={"job_number": [str(errors.NOT_FOUND.message)]})
    return subject


def consent_history(*, company: Company, subject: Subject) -> QuerySet[Consent]:
    """The subject's consents, the latest first, with the policy version each names."""
    return (
        Consent.objects.for_company(company)
        .filter(subject=subject)
        .select_related("policy")
        .order_by("-given_at", "-id")
    )


def consent_in_force(*, company: Company, subject: Subject) -> Consent | None:
    return consent_history(company=company, subject=subject).filter(IN_FORCE).first()


def photos_allowed_for(*, company: Company, subject_ids: list[int]) -> set[int]:
    """Which of these subjects may have photos stored: all of them when the company does not
    require consent, else those with a consent in force (one query)."""
    if not company.consent_required:
        return set(subject_ids)
    consents = Consent.objects.for_company(company).filter(IN_FORCE, subject_id__in=list(subject_ids))
    return set(consents.values_list("subject_id", flat=True))


def with_consent_given_at(queryset: QuerySet[Subject]) -> QuerySet[Subject]:
    """Annotate `consent_given_at`, when the consent in force was given (None: none), with
    one correlated subquery, so a list of any length costs the same number of queries."""
    in_force = (
        Consent.objects.filter(IN_FORCE, company=OuterRef("company"), subject=OuterRef("pk"))  # tenant: correlated
        .order_by()
        .values("given_at")[:1]
    )
    return queryset.annotate(consent_given_at=Subquery(in_force))


# --- The gallery change log -------------------------------------------------------------------


def gallery_sequence(company_id: int) -> int:
    """The company's latest gallery change number (0 before the first change).

    It grows with every change a recognition box must know (see `subjects.gallery`), so it
    also serves as the version of anything built from the company's gallery, such as a
    face index: rebuild when it differs from the number the index was built at.
    """
    sequence = GalleryCounter.objects.for_company(company_id).values_list("sequence", flat=True).first()
    return sequence or 0


def photo_duplicates(*, company: Company) -> QuerySet[Photo]:
    """Photos enrolled with a face that matched another subject of the company."""
    return Photo.objects.for_company(company).filter(duplicate_of__isnull=False)


def usable_photos(company_id: int) -> QuerySet[Photo]:
    """The photos a recognition box (and the portal's face index) may match against:
    enrolled, with an embedding, and not taken before their subject withdrew consent.

    The one place that decides it, so every box hears of a rule through the feed.
    Withdrawing consent deletes the photos in the same transaction; the consent rule holds
    here as well, so a face collected before a withdrawal is never matched, whatever path
    a photo took.
    """
    withdrawn_since = Consent.objects.filter(  # tenant: correlated to the photo's company
        company=OuterRef("company"), subject=OuterRef("subject"), withdrawn_at__gte=OuterRef("created_at")
    )
    photos = Photo.objects.for_company(company_id).filter(status=PhotoStatus.OK, embedding__isnull=False)
    return photos.filter(~Exists(withdrawn_since))


@dataclass(frozen=True)
class GalleryState:
    """The company's log as a box sees it: its latest number, and below which number
    tombstones may have been compacted away (a box under it must start again from 0)."""

    sequence: int
    compacted_through: int


def gallery_state(company_id: int) -> GalleryState:
    row = GalleryCounter.objects.for_company(company_id).values_list("sequence", "compacted_through").first()
    return GalleryState(*(row or (0, 0)))


@dataclass(frozen=True)
class GalleryPage:
    """Changes after a cursor, one per subject (its latest), in order of sequence.

    A subject of `changes` missing from `subjects` is deleted or archived: the box drops
    it. `next` is the cursor to continue from, `more` whether anything may follow it.
    """

    changes: list[tuple[int, int]]  # (sequence, subject id), the page in order
    subjects: dict[int, tuple]  # subject id -> its current GALLERY_SUBJECT_VALUES, for the subjects still known
    faces: dict[int, list[tuple[int, str, bytes]]]  # subject id -> (photo id, model, embedding)
    next: int
    more: bool


def _among(queryset: QuerySet, field: str, ids: list[int]) -> QuerySet:
    """Rows whose `field` is one of `ids` (integers). On PostgreSQL the ids go as one array
    literal (`= ANY(%s::bigint[])`): with thousands of them, the driver's parsing of
    `IN (%s, %s, ...)`, one placeholder at a time, costs more than the query itself, and
    even a list parameter is adapted one element at a time, where joining the text is one
    call."""
    if connection.vendor != "postgresql":
        return queryset.filter(**{f"{field}__in": ids})
    meta = queryset.model._meta
    column = f"{connection.ops.quote_name(meta.db_table)}.{connection.ops.quote_name(meta.get_field(field).column)}"
    array = "{" + ",".join(str(int(value)) for value in ids) + "}"
    return queryset.filter(RawSQL(f"{column} = ANY(%s::bigint[])", (array,), output_field=BooleanField()))  # noqa: S611 (names from the model)


GALLERY_SUBJECT_VALUES = ("id", "name", "subject_type", "job_number", "visit_start", "visit_end")


def gallery_page(*, company_id: int, after: int, limit: int, state: GalleryState) -> GalleryPage:
    """The changes of the company's log after `after`, at most `limit` of them.

    Only each subject's latest row counts (a subject changed ten times is sent once, in its
    current state), so reading from 0 gives the current gallery rather than its history;
    from 0 deletions are left out too, as there is nothing to delete yet. Two queries of
    the log's rows at most, plus one for the subjects and one for their faces.
    """
    rows = GalleryChange.objects.for_company(company_id)
    latest = rows.filter(sequence__gt=after).exclude(
        Exists(rows.filter(subject_ref=OuterRef("subject_ref"), sequence__gt=OuterRef("sequence")))
    )
    if after == 0:
        latest = latest.filter(op=GalleryOp.UPSERT)
    found = list(latest.order_by("sequence").values_list("sequence", "subject_ref")[: limit + 1])
    more = len(found) > limit
    changes = found[:limit]
    ids = [subject for _, subject in changes]
    # Tuples rather than dicts, and no ordering: a full sync reads every subject once.
    known = _among(Subject.objects.for_company(company_id).filter(archived=False), "id", ids).order_by()
    subjects = {values[0]: values for values in known.values_list(*GALLERY_SUBJECT_VALUES)}
    faces: dict[int, list[tuple[int, str, bytes]]] = {}
    photos = _among(usable_photos(company_id), "subject", list(subjects)).order_by("id")
    rows = photos.values_list("subject_id", "id", "embedding_model", "embedding")
    for subject, photo, model, embedding in rows:
        faces.setdefault(subject, []).append((photo, model, bytes(embedding)))
    # Without more, everything up to the latest number is read: rows between the last one
    # sent and it were superseded by rows that were sent.
    last = changes[-1][0] if changes else after
    next_cursor = last if more else max(state.sequence, last)
    if after == 0:  # nothing to delete yet: archived subjects are left out too
        changes = [(sequence, subject) for sequence, subject in changes if subject in subjects]
    return GalleryPage(changes=changes, subjects=subjects, faces=faces, next=next_cursor, more=more)


# --- Bulk photo uploads -----------------------------------------------------------------------


def photo_upload_list(*, company: Company) -> QuerySet[PhotoUpload]:
    return PhotoUpload.objects.for_company(company).select_related("created_by", "job").order_by("-created_at", "-id")


def _stored_photo_ids(uploads) -> list[int]:
    return [entry["photo"] for upload in uploads for entry in upload.entries if entry.get("photo")]


def photo_upload_photo_statuses(*, company: Company, uploads) -> dict[int, str]:
    """The enrolment status of every photo the `uploads` stored, by photo id, in one query
    (for a list of uploads: see `photo_upload_progress`)."""
    photo_ids = _stored_photo_ids(uploads)
    if not photo_ids:
        return {}
    return dict(Photo.objects.for_company(company).filter(pk__in=photo_ids).values_list("pk", "status"))


def photo_upload_progress(upload: PhotoUpload, statuses_by_photo: dict[int, str] | None = None) -> dict[str, int]:
    """How far a bulk upload got: its files by outcome, and its stored photos by enrolment
    status (`pending` until the face engine has seen them, then `ok` or `rejected`), with
    one query, or none given `statuses_by_photo` (`photo_upload_photo_statuses`). `done`
    counts the stored photos enrolment has finished with."""
    entries = upload.entries
    photo_ids = _stored_photo_ids([upload])
    statuses = dict.fromkeys(PhotoStatus.values, 0)
    if statuses_by_photo is not None:
        for photo_id in photo_ids:
            if photo_id in statuses_by_photo:
                statuses[statuses_by_photo[photo_id]] += 1
    elif photo_ids:
        rows = Photo.objects.for_company(upload.company_id).filter(pk__in=photo_ids)
        for status, count in rows.values("status").annotate(count=Count("pk")).values_list("status", "count"):
            statuses[status] = count
    matched = sum(1 for entry in entries if entry["status"] in (FILE_MATCHED, FILE_STORED))
    return {
        "files": len(entries),
        "matched": matched,
        "refused": len(entries) - matched,
        "stored": len(photo_ids),
        **statuses,
        "done": statuses[PhotoStatus.OK] + statuses[PhotoStatus.REJECTED],
    }


def photo_statuses(upload: PhotoUpload) -> dict[int, tuple[str, str]]:
    """The enrolment status and reason of each photo a bulk upload stored, by photo id."""
    photo_ids = [entry["photo"] for entry in upload.entries if entry.get("photo")]
    if not photo_ids:
        return {}
    rows = Photo.objects.for_company(upload.company_id).filter(pk__in=photo_ids)
    return {pk: (status, reason) for pk, status, reason in rows.values_list("pk", "status", "reason")}
