"""What reception works with: the day's expected visitors with their state, and a visit's
badge with its QR code.

The QR code carries the visit's reference, `KGV:<company>:<visit>:<signature>`: enough for a
reception scanner to find the visit (`visit_for_reference`), signed so that a made-up number
finds nothing, and unrelated to the personal link, whose token only the visitor holds: a
badge left on a desk opens no visitor's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import segno
from django.core import signing
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from accounts.models import Company
from visits.models import ArrivedVia, Visit, VisitStatus
from visits.selectors import VisitState, visit_state, visits_on_day

BADGE_SALT = "visits.badge"
REFERENCE_PREFIX = "KGV"


def id_from_query(text: str | None) -> int | None:
    """An id typed in a query string (`?host=12`), or None for anything that is not one."""
    text = text or ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def visit_reference(visit: Visit) -> str:
    """The badge's reference of `visit` (see the module docstring)."""
    signer = signing.Signer(salt=BADGE_SALT, sep=":")
    return f"{REFERENCE_PREFIX}:" + signer.sign(f"{visit.company_id}:{visit.pk}")


def visit_for_reference(*, company: Company, reference: str) -> Visit | None:
    """The company's visit a badge's reference names; None for anything else (another
    company's, forged, damaged)."""
    prefix, _sep, signed = str(reference).partition(":")
    if prefix != REFERENCE_PREFIX:
        return None
    try:
        company_id, visit_id = signing.Signer(salt=BADGE_SALT, sep=":").unsign(signed).split(":")
    except (signing.BadSignature, ValueError):
        return None
    if company_id != str(company.pk) or not visit_id.isdigit():
        return None
    return Visit.objects.for_company(company).filter(pk=int(visit_id)).first()


def qr_svg(data: str) -> SafeString:
    """`data` as an inline SVG QR code (error correction M: a creased sticker still scans)."""
    code = segno.make(data, error="m", micro=False)
    # segno's own markup: an <svg> of paths, with no text of ours in it.
    return mark_safe(code.svg_inline(scale=4, border=2, omitsize=True))  # noqa: S308


def badge_printable(visit: Visit) -> bool:
    """Whether reception may print the visit's badge: not for a cancelled visit, whose
    visitor the doors no longer expect."""
    return visit.status != VisitStatus.CANCELLED


def state_label(visit: Visit, zone) -> str:
    """The state in words, with the time for an arrival or a departure (company's zone)."""
    state = visit_state(visit)
    if state == VisitState.ARRIVED:
        arrived = {"time": time_format(timezone.localtime(visit.arrived_at, zone), "H:i")}
        if visit.arrived_via == ArrivedVia.RECEPTION:
            return _("Checked in at %(time)s") % arrived
        return _("Arrived at %(time)s") % arrived
    if state == VisitState.LEFT:
        return _("Left at %(time)s") % {"time": time_format(timezone.localtime(visit.left_at, zone), "H:i")}
    return {
        VisitState.INVITED: _("Invited"),
        VisitState.PHOTO_READY: _("Photo ready"),
        VisitState.FACE_DECLINED: _("No photo — reception checks in"),
        VisitState.CANCELLED: _("Cancelled"),
    }[state]


@dataclass(frozen=True)
class ExpectedVisit:
    visit: Visit
    state: str
    state_label: str
    starts: datetime
    ends: datetime
    badge_printable: bool
    may_check_in: bool  # reception may check the visitor in by hand (`visit_check_in`)
    may_mark_left: bool  # reception may mark the departure by hand (`visit_mark_left`)


def expected_on(*, company: Company, day: date | None = None, host_id: int | None = None) -> list[ExpectedVisit]:
    """The visits of `day` (today by default, in the company's time zone), earliest first, each
    with its state; one query."""
    zone = company.zone
    now = timezone.now()
    day = day or timezone.localtime(now, zone).date()
    rows = []
    for visit in visits_on_day(company=company, day=day, host_id=host_id):
        state = visit_state(visit)
        rows.append(
            ExpectedVisit(
                visit=visit,
                state=state,
                state_label=state_label(visit, zone),
                starts=timezone.localtime(visit.starts_at, zone),
                ends=timezone.localtime(visit.ends_at, zone),
                badge_printable=badge_printable(visit),
                # Today's list holds only visits whose day has come: open until the visit ends.
                may_check_in=state not in (VisitState.ARRIVED, VisitState.LEFT, VisitState.CANCELLED)
                and now <= visit.ends_at,
                may_mark_left=state not in (VisitState.LEFT, VisitState.CANCELLED) and visit.arrived_at is not None,
            )
        )
    return rows
