"""Reads on visits."""

from __future__ import annotations

import hmac
import math

from django.db.models import QuerySet

from accounts.models import Company
from subjects.models import Photo, SubjectType
from visits.models import Visit
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
