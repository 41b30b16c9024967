"""Reads on visits."""

from __future__ import annotations

import hmac
import math
from datetime import date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from accounts.models import Company
from subjects.models import Photo, PhotoStatus, SubjectType
from visits.models import Visit, VisitStatus
from visits.services import TOKEN_BYTES, visit_token_hash

# The length of secrets.token_urlsafe(TOKEN_BYTES) (unpadded base64); any other is not ours.
TOKEN_LENGTH = math.ceil(TOKEN_BYTES * 4 / 3)


def visit_list(*, company: Company) -> QuerySet[Visit]:
    return Visit.objects.for_company(company).select_related("visitor", "host", "invited_by")


def visit_get_by_token(*, token: str) -> Visit | None:
    """The visit whose personal link carries `token`, if the link still works: not revoked,
    the visit not cancelled and not ended. None otherwise, whatever the reason, so a
    caller cannot tell an unknown link from a dead one."""
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH or not token.isascii():
        return None
    wanted = visit_token_hash(token)
    visit = (
        Visit.objects.select_related("company", "visitor", "host")  # tenant: the link names its own visit
        .filter(link_token_hash=wanted)
        .first()
    )
    if visit is None or not hmac.compare_digest(visit.link_token_hash, wanted):
        return None
    if not visit.link_usable() or not visit.company.is_active:
        return None
    if visit.visitor.subject_type != SubjectType.VISITOR or visit.visitor.archived:
        return None
    return visit


def visit_visitor_photo(*, visit: Visit) -> Photo | None:
    """The visitor's newest photo: what their page reports on."""
    return Photo.objects.for_company(visit.company_id).filter(subject_id=visit.visitor_id).order_by("-id").first()


# --- Reception: a visit's state, the day's visits ---------------------------------------------


class VisitState:
    """What reception sees of a visit, in the order it happens."""

    INVITED = "invited"
    PHOTO_READY = "photo_ready"  # the visitor has a photo the doors recognise
    FACE_DECLINED = "face_declined"  # the visitor chose no photo: reception checks them in
    ARRIVED = "arrived"
    LEFT = "left"
    CANCELLED = "cancelled"

    ALL = (INVITED, PHOTO_READY, FACE_DECLINED, ARRIVED, LEFT, CANCELLED)


def with_photo_ready(queryset: QuerySet[Visit]) -> QuerySet[Visit]:
    """Annotate `photo_ready`: whether the visitor has an `ok` photo (one subquery)."""
    ok = Photo.objects.filter(  # tenant: correlated with the visit's own visitor and company
        company_id=OuterRef("company_id"), subject_id=OuterRef("visitor_id"), status=PhotoStatus.OK
    )
    return queryset.annotate(photo_ready=Exists(ok))


def visit_state(visit: Visit) -> str:
    """The visit's state for reception (`VisitState`); `photo_ready` must be annotated
    (`with_photo_ready`), else it is looked up."""
    if visit.status == VisitStatus.CANCELLED:
        return VisitState.CANCELLED
    if visit.left_at is not None:
        return VisitState.LEFT
    if visit.arrived_at is not None:
        return VisitState.ARRIVED
    ready = getattr(visit, "photo_ready", None)
    if ready is None:
        ready = (
            Photo.objects.for_company(visit.company_id)
            .filter(subject_id=visit.visitor_id, status=PhotoStatus.OK)
            .exists()
        )
    if ready:
        return VisitState.PHOTO_READY
    return VisitState.FACE_DECLINED if visit.face_declined_at is not None else VisitState.INVITED


def company_day_bounds(company: Company, day: date) -> tuple[datetime, datetime]:
    """The first instant of `day` in the company's time zone, and of the next day."""
    zone = company.zone
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def company_today(company: Company, now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), company.zone).date()


def visits_on_day(*, company: Company, day: date, host_id: int | None = None) -> QuerySet[Visit]:
    """The visits of `day` (the company's day): those whose window meets it, earliest first,
    with `photo_ready` annotated."""
    start, end = company_day_bounds(company, day)
    queryset = visit_list(company=company).filter(starts_at__lt=end, ends_at__gt=start)
    if host_id is not None:
        queryset = queryset.filter(host_id=host_id)
    return with_photo_ready(queryset).order_by("starts_at", "visitor_name", "id")
