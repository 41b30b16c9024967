"""Reads on subjects and photos, always inside one company."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Company
from subjects.models import GalleryCounter, Photo, PhotoStatus, Subject

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
