"""Writes on visits: invite, cancel, re-send, revoke or re-issue the personal link, mark the
arrival (a door's, or reception's check-in by hand) and the departure; and what a visitor
does through their link (consent, selfie, declining the face option), each acting only on
the visit the link names and its visitor.

Who may invite: a company user who may write (owners and admins, `User.can_write`).
Viewers read visits but invite nobody; an invitation sends mail in the company's name and
creates a person the doors will open for, which is a write like adding a subject.

The visitor's window at the doors (`Subject.visit_start` / `visit_end`) follows their
visits: it is the window of their next visit that has not ended (or, with none left, ends
when the last was cancelled), so a visitor invited twice is let in for the earlier visit
first, and a cancelled visit lets nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import Company, User
from accounts.services import audit_record
from events.services import event_record_check_in
from integrations.arrivals import host_tell_checked_in
from kangaroo import errors
from kangaroo.errors import KangarooError
from kangaroo.images import normalise_photo
from kangaroo.jobs import enqueue
from subjects import services as subject_services
from subjects.models import Consent, ConsentMethod, Photo, Subject, SubjectType
from subjects.selectors import consent_in_force
from visits.models import LANGUAGES, ArrivedVia, Visit, VisitStatus
from visits.webhooks import visit_webhooks_queue

# 32 random bytes: 256 bits, far past guessing; URL-safe base64, 43 characters.
TOKEN_BYTES = 32
LANGUAGE_CODES = [code for code, _name in LANGUAGES]


def visit_token_hash(token: str) -> str:
    """What is stored of a link token. A fast hash suffices: the token has 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, visit_token_hash(token)


def _field_error(error: errors.ErrorCode, field: str, message=None) -> KangarooError:
    message = message or error.message
    return KangarooError(error, message, fields={field: [str(message)]})


def visit_may_invite(user) -> bool:
    """Owners and admins invite (see the module's docstring); viewers do not."""
    return isinstance(user, User) and user.can_write


def _check_actor(company: Company, actor) -> None:
    if actor is None:
        return  # the system itself (a command, a job)
    if not visit_may_invite(actor) or (actor.company_id is not None and actor.company_id != company.pk):
        raise KangarooError(errors.PERMISSION_DENIED)


def _check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    for field, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if not isinstance(value, datetime) or timezone.is_naive(value):
            raise _field_error(errors.VALIDATION_ERROR, field, _("Give a date and time with its time zone."))
    if ends_at <= starts_at:
        raise _field_error(errors.VISIT_WINDOW_INVALID, "ends_at")
    if ends_at <= timezone.now():
        raise _field_error(errors.VISIT_IN_PAST, "ends_at")


def _check_host(company: Company, host: Subject | None) -> None:
    if host is None:
        return
    if host.company_id != company.pk:
        raise errors.related_not_found("host")
    if host.subject_type != SubjectType.EMPLOYEE or host.archived:
        raise _field_error(errors.SUBJECT_HOST_INVALID, "host")


def _text(value: Any, limit: int) -> str:
    return str(value or "").strip()[:limit]


def _visitor_for(
    *, company: Company, actor, name: str, email: str, phone: str, host, purpose: str, starts_at, ends_at
) -> Subject:
    """The visitor subject of a new visit: the company's visitor with this e-mail address if
    there is one (a visitor who comes back keeps their face and consent), else a new one.

    Reused, the visitor takes this invitation's name (and phone, when one is given), as the
    latest word of whoever invites them; the e-mail address, photos and consent stay. An
    address that an employee or VIP of the company holds is `visit_email_not_visitor`: an
    invitation never turns one of the company's own people into a visitor. Only this
    company's subjects are looked at (the address is unique per company, not across them)."""
    existing = _visitor_with_email(company, email)
    if existing is None:
        try:
            return subject_services.subject_create(
                company=company,
                actor=actor,
                subject_type=SubjectType.VISITOR,
                name=name,
                email=email,
                phone=phone,
                host=host,
                purpose=purpose,
                visit_start=starts_at,
                visit_end=ends_at,
            )
        except KangarooError as exc:
            # Another request gave the address to a new subject between our look and our
            # write (two hosts inviting one new guest at once): the create was a savepoint,
            # undone, and a new statement sees the committed winner (READ COMMITTED), so this
            # invitation goes on as if it had come second.
            if exc.error != errors.SUBJECT_EMAIL_TAKEN:
                raise
            existing = _visitor_with_email(company, email)
            if existing is None:
                raise
    changes: dict[str, Any] = {"name": name, "host": host, "purpose": purpose, "archived": False}
    if phone:
        changes["phone"] = phone
    return subject_services.subject_update(company=company, actor=actor, subject=existing, **changes)


def _visitor_with_email(company: Company, email: str) -> Subject | None:
    """The company's visitor with `email` (case aside), locked; None without one or without
    an address. `visit_email_not_visitor` if an employee or VIP of the company holds it."""
    if not email:
        return None
    existing = Subject.objects.for_company(company).select_for_update().filter(email__iexact=email).first()
    if existing is not None and existing.subject_type != SubjectType.VISITOR:
        raise _field_error(errors.VISIT_EMAIL_NOT_VISITOR, "visitor_email")
    return existing


def _visitor_window_sync(*, company: Company, actor, visitor: Subject, now: datetime | None = None) -> None:
    """Set the visitor's window at the doors from their visits (see the module docstring)."""
    now = now or timezone.now()
    visits = Visit.objects.for_company(company).filter(visitor=visitor, status=VisitStatus.INVITED)
    following = visits.filter(ends_at__gt=now).order_by("starts_at", "id").first()
    expected = following or visits.order_by("-ends_at").first()
    changes: dict[str, Any] = {}
    if expected is not None:
        start, end = expected.starts_at, expected.ends_at
        # The host and purpose at the doors are the expected visit's too: the host told of the
        # arrival (`integrations.arrivals`, from the subject) is that visit's host.
        if (visitor.host_id, visitor.purpose) != (expected.host_id, expected.purpose):
            changes.update(host=expected.host, purpose=expected.purpose)
    else:  # every visit cancelled: the window closes now
        end = now
        start = min(visitor.visit_start or now, now)
    if (visitor.visit_start, visitor.visit_end) != (start, end):
        changes.update(visit_start=start, visit_end=end)
    if changes:
        subject_services.subject_update(company=company, actor=actor, subject=visitor, **changes)


VISIT_INPUT_FIELDS = (
    "visitor_name", "visitor_email", "visitor_phone", "visitor_company", "purpose", "host", "language",
    "starts_at", "ends_at",
)  # fmt: skip


def visit_check(*, company: Company, data: dict[str, Any]) -> dict[str, Any]:
    """Validate a new visit's fields (`VISIT_INPUT_FIELDS`); returns them normalised (text
    trimmed). Raises KangarooError naming the field: `validation_error`,
    `visit_window_invalid`, `visit_in_past`, `visit_contact_required`,
    `subject_host_invalid`, `visit_email_not_visitor`. Reads only."""
    checked = {
        "visitor_name": _text(data.get("visitor_name"), 100),
        "visitor_email": _text(data.get("visitor_email"), 254),
        "visitor_phone": _text(data.get("visitor_phone"), 40),
        "visitor_company": _text(data.get("visitor_company"), 200),
        "purpose": _text(data.get("purpose"), 200),
        "host": data.get("host"),
        "language": data.get("language") or "en",
        "starts_at": data.get("starts_at"),
        "ends_at": data.get("ends_at"),
    }
    if not checked["visitor_name"]:
        raise _field_error(errors.VALIDATION_ERROR, "visitor_name", _("A name is required."))
    email = checked["visitor_email"]
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise _field_error(errors.VALIDATION_ERROR, "visitor_email", _("Enter a valid e-mail address.")) from None
        holder = Subject.objects.for_company(company).filter(email__iexact=email).values_list("subject_type", flat=True)
        if any(kind != SubjectType.VISITOR for kind in holder):
            raise _field_error(errors.VISIT_EMAIL_NOT_VISITOR, "visitor_email")
    if not email and not checked["visitor_phone"]:
        raise _field_error(errors.VISIT_CONTACT_REQUIRED, "visitor_email")
    if checked["language"] not in LANGUAGE_CODES:
        raise _field_error(errors.VALIDATION_ERROR, "language", _("Unknown language."))
    _check_window(checked["starts_at"], checked["ends_at"])
    _check_host(company, checked["host"])
    return checked


@transaction.atomic
def visit_create(
    *,
    company: Company,
    actor: User | None,
    visitor_name: str,
    starts_at: datetime,
    ends_at: datetime,
    visitor_email: str = "",
    visitor_phone: str = "",
    visitor_company: str = "",
    purpose: str = "",
    host: Subject | None = None,
    language: str = "en",
    send_invitation: bool = True,
) -> Visit:
    """Invite a visitor: the visit, and the visitor subject (created, or the company's
    visitor with this e-mail address reused, also when another invitation creates them at
    the same moment) whose window at the doors follows it.

    With an e-mail address the invitation, with its personal link, goes out after commit
    (a job: `visit_invitation_deliver`); without one, `visit_link_issue` gives a link to
    hand over. Raises what `visit_check` raises, and `permission_denied` for a viewer;
    nothing is written then.
    """
    _check_actor(company, actor)
    given = {
        "visitor_name": visitor_name, "visitor_email": visitor_email, "visitor_phone": visitor_phone,
        "visitor_company": visitor_company, "purpose": purpose, "host": host, "language": language,
        "starts_at": starts_at, "ends_at": ends_at,
    }  # fmt: skip
    data = visit_check(company=company, data=given)
    visitor = _visitor_for(
        company=company,
        actor=actor,
        name=data["visitor_name"],
        email=data["visitor_email"],
        phone=data["visitor_phone"],
        host=host,
        purpose=data["purpose"],
        starts_at=starts_at,
        ends_at=ends_at,
    )
    _token, token_hash = _new_token()  # replaced by the invitation's own; no link works before it
    visit = Visit.objects.create(
        company=company,
        visitor=visitor,
        invited_by=actor if isinstance(actor, User) else None,
        link_token_hash=token_hash,
        **data,
    )
    _visitor_window_sync(company=company, actor=actor, visitor=visitor)
    audit_record(
        company=company,
        actor=actor,
        action="visit.create",
        obj=visit,
        changes={"visitor": visitor.pk, "host": host.pk if host else None, "starts_at": starts_at, "ends_at": ends_at},
    )
    visit_webhooks_queue(company=company, kind="invited", visits=[visit])
    if data["visitor_email"] and send_invitation:
        _invitation_queue(visit)
    return visit


def _invitation_queue(visit: Visit) -> None:
    from visits import jobs

    enqueue(jobs.visit_invitation_send, visit.company_id, visit.pk)


def _locked(company: Company, visit: Visit) -> Visit:
    return Visit.objects.for_company(company).select_for_update().get(pk=visit.pk)


def _check_open(visit: Visit) -> None:
    if visit.status == VisitStatus.CANCELLED:
        raise KangarooError(errors.VISIT_CANCELLED)
    if visit.ends_at <= timezone.now():
        raise KangarooError(errors.VISIT_ENDED)


@transaction.atomic
def visit_cancel(*, company: Company, actor: User | None, visit: Visit) -> Visit:
    """Cancel the visit: its link stops working at once and the visitor's window at the
    doors no longer covers it. Cancelling a cancelled visit changes nothing; an ended one
    answers `visit_ended`."""
    _check_actor(company, actor)
    visit = _locked(company, visit)
    if visit.status == VisitStatus.CANCELLED:
        return visit
    if visit.ends_at <= timezone.now():
        raise KangarooError(errors.VISIT_ENDED)
    visit.status = VisitStatus.CANCELLED
    visit.save(update_fields=["status", "updated_at"])
    _visitor_window_sync(company=company, actor=actor, visitor=visit.visitor)
    audit_record(company=company, actor=actor, action="visit.cancel", obj=visit)
    return visit


@transaction.atomic
def visit_invitation_resend(*, company: Company, actor: User | None, visit: Visit) -> Visit:
    """Send the invitation again, with a new link: the old link is dead from this moment
    (also when it was revoked: the new one works). `visit_cancelled`, `visit_ended`,
    `visit_no_email` when there is nobody to send it to."""
    _check_actor(company, actor)
    visit = _locked(company, visit)
    _check_open(visit)
    if not visit.visitor_email:
        raise KangarooError(errors.VISIT_NO_EMAIL)
    _token, visit.link_token_hash = _new_token()  # the job issues the one that is mailed
    visit.link_revoked_at = None
    visit.save(update_fields=["link_token_hash", "link_revoked_at", "updated_at"])
    audit_record(company=company, actor=actor, action="visit.invitation_resend", obj=visit)
    _invitation_queue(visit)
    return visit


@transaction.atomic
def visit_link_issue(*, company: Company, actor: User | None, visit: Visit) -> str:
    """A new personal link's token, returned once and never stored (for a visitor without
    e-mail, to hand over by phone or message); the previous link is dead."""
    _check_actor(company, actor)
    visit = _locked(company, visit)
    _check_open(visit)
    token, visit.link_token_hash = _new_token()
    visit.link_revoked_at = None
    visit.save(update_fields=["link_token_hash", "link_revoked_at", "updated_at"])
    audit_record(company=company, actor=actor, action="visit.link_issue", obj=visit)
    return token


@transaction.atomic
def visit_link_revoke(*, company: Company, actor: User | None, visit: Visit) -> Visit:
    """Kill the visit's personal link (the visit itself stays). Idempotent."""
    _check_actor(company, actor)
    visit = _locked(company, visit)
    if visit.link_revoked_at is None:
        visit.link_revoked_at = timezone.now()
        visit.save(update_fields=["link_revoked_at", "updated_at"])
        audit_record(company=company, actor=actor, action="visit.link_revoke", obj=visit)
    return visit


def visit_mark_arrived(*, visit: Visit, at: datetime, via: str = ArrivedVia.DOOR) -> bool:
    """Record that the visitor arrived at `at` (`via` a door, or reception); True only for the
    call that recorded it (one conditional UPDATE: a retried event, a second door, reception's
    click or two workers at once record it once, and the first arrival stays). That call, and
    only it, announces `visit.arrived` to the webhooks, in the same transaction."""
    with transaction.atomic():
        marked = (
            Visit.objects.for_company(visit.company_id)
            .filter(pk=visit.pk, arrived_at__isnull=True)
            .update(arrived_at=at, arrived_via=via, updated_at=timezone.now())
        )
        if marked:
            visit.arrived_at, visit.arrived_via = at, via
            visit_webhooks_queue(company=visit.company, kind="arrived", visits=[visit])
    return bool(marked)


@transaction.atomic
def visit_check_in(*, company: Company, actor: User | None, visit: Visit) -> bool:
    """Reception checks the visitor in by hand, now: a visitor who declined the face option,
    or one no door recognised. True only for the call that recorded the arrival; a visit
    already arrived (by a door, or a second click) answers False and nothing is marked,
    audited, announced or e-mailed again. The arrival is the one a door would record
    (`arrived_via` "reception", `visit.arrived` to the webhooks once), audited with who did it
    (`visit.check_in`), the host is e-mailed once per visit, as for a door's recognition
    (`integrations.arrivals`, after commit), and the live dashboards and welcome TVs greet the
    visitor (an event `checked_in`, `events.services.event_record_check_in`).

    Reception may check a visitor in from the start of the visit's day in the company's time
    zone (someone early at the desk) until the visit ends. Refused, nothing written:
    `permission_denied` (a viewer, another company's user), `not_found` (another company's
    visit), `visit_cancelled`, `visit_not_started` (the visit's day has not come), `visit_ended`."""
    _check_actor(company, actor)
    current = Visit.objects.for_company(company).select_for_update().filter(pk=visit.pk).first()
    if current is None:
        raise KangarooError(errors.NOT_FOUND)  # another company's visit: as if there were none
    if current.status == VisitStatus.CANCELLED:
        raise KangarooError(errors.VISIT_CANCELLED)
    if current.arrived_at is not None:
        visit.arrived_at, visit.arrived_via = current.arrived_at, current.arrived_via
        return False
    now = timezone.now()
    day_begins = datetime.combine(timezone.localtime(current.starts_at, company.zone).date(), time.min, company.zone)
    if now < day_begins:
        raise KangarooError(errors.VISIT_NOT_STARTED)
    if now > current.ends_at:  # the door's bounds: the end itself is still within the visit
        raise KangarooError(errors.VISIT_ENDED)
    current.company = company
    if not visit_mark_arrived(visit=current, at=now, via=ArrivedVia.RECEPTION):
        return False
    visit.arrived_at, visit.arrived_via = current.arrived_at, current.arrived_via
    audit_record(company=company, actor=actor, action="visit.check_in", obj=current, changes={"arrived_at": now})
    # The live dashboards and welcome TVs greet the visitor as they greet a door's recognition.
    event_record_check_in(company=company, subject=current.visitor, at=now)
    from visits import jobs

    enqueue(jobs.visit_check_in_notify, company.pk, current.pk)
    return True


def visit_check_in_host_tell(*, company: Company, visit_id: int) -> int:
    """E-mail the host of a visit reception checked in (the job `visit_check_in_notify`);
    returns how many e-mails were sent: 0 or 1. Once per visit, shared with the doors'
    e-mail (`integrations.arrivals`); a visit no longer checked in by reception sends nothing."""
    visit = (
        Visit.objects.for_company(company)
        .select_related("visitor", "host")
        .filter(pk=visit_id, status=VisitStatus.INVITED, arrived_via=ArrivedVia.RECEPTION)
        .first()
    )
    if visit is None or visit.arrived_at is None:
        return 0
    return host_tell_checked_in(
        company=company,
        visitor=visit.visitor,
        host=visit.host,
        window=(visit.starts_at, visit.ends_at),
        at=visit.arrived_at,
        purpose=visit.purpose,
    )


def visit_mark_left(*, company: Company, actor: User | None, visit: Visit, at: datetime | None = None) -> bool:
    """Record that the visitor left at `at` (now by default); True only for the call that
    recorded it (one conditional UPDATE, as for the arrival: a retried event, a second exit
    or reception's click after the door's record it once, and the first departure stays).

    From the doors (`arrivals`, no actor): a recognition at an exit after the arrival, so
    `at` must come after `arrived_at`; like the arrival, the door's event is its record.
    By reception (a user who may write): a visitor who arrived, by a door or checked in at the
    desk (`visit_check_in`); audited with who did it. Reception is told why nothing happened:
    `visit_cancelled`, `visit_not_arrived` (nobody arrived to leave: a visitor who never came
    is no departure), `visit_left_before_arrival` (`at` is not after `arrived_at`: a stay
    cannot end before it began), `permission_denied` for a viewer; a door's event just marks
    nothing."""
    _check_actor(company, actor)
    at = at or timezone.now()
    due = Visit.objects.for_company(company).filter(pk=visit.pk, status=VisitStatus.INVITED, left_at__isnull=True)
    with transaction.atomic():
        if actor is None:
            due = due.filter(arrived_at__lt=at)  # a door's event only ends a stay it saw begin
        else:
            current = _locked(company, visit)
            if current.status == VisitStatus.CANCELLED:
                raise KangarooError(errors.VISIT_CANCELLED)
            if current.arrived_at is None:
                raise KangarooError(errors.VISIT_NOT_ARRIVED)
            if at <= current.arrived_at:  # a door's clock ahead of ours, or a time given by hand
                arrived = date_format(timezone.localtime(current.arrived_at, company.zone), "Y-m-d H:i")
                message = _("The visitor arrived at %(arrived)s: the departure must come after it.") % {
                    "arrived": arrived
                }
                raise KangarooError(errors.VISIT_LEFT_BEFORE_ARRIVAL, message)
        marked = due.update(left_at=at, updated_at=timezone.now())
        if marked:
            visit.left_at = at
            if actor is not None:
                audit_record(company=company, actor=actor, action="visit.mark_left", obj=visit, changes={"left_at": at})
            visit_webhooks_queue(company=company, kind="left", visits=[visit])
    return bool(marked)


# --- The invitation ---------------------------------------------------------------------------


def visit_invitation_deliver(*, company: Company, visit_id: int) -> bool:
    """Issue the visit's personal link and e-mail the invitation with it; returns whether
    it was sent. The token exists only in this call and in the mail: the job that runs it
    carries the visit's id, not the token. Mail and new hash commit together, so a failed
    send (the job retries) leaves the link as it was. A visit cancelled, ended or without
    an e-mail address meanwhile is skipped."""
    from visits.emails import invitation_send

    with transaction.atomic():
        visit = Visit.objects.for_company(company).select_for_update().filter(pk=visit_id).first()
        if visit is None or not visit.visitor_email or not visit.link_usable():
            return False  # gone, cancelled, ended or revoked meanwhile: nothing to send
        token, visit.link_token_hash = _new_token()
        visit.invitation_sent_at = timezone.now()
        visit.save(update_fields=["link_token_hash", "invitation_sent_at", "updated_at"])
        invitation_send(visit=visit, token=token)
        audit_record(company=company, actor=None, action="visit.invitation_send", obj=visit)
    return True


# --- The visitor, through their link ----------------------------------------------------------


@dataclass(frozen=True)
class VisitorThroughLink:
    """Who acts when a visitor uses their link: recorded in the consent and the audit log by
    name (no user, no device)."""

    visit_id: int
    pk = None

    def get_username(self) -> str:
        return f"visitor link (visit {self.visit_id})"


def _own_visitor(visit: Visit, *, lock: bool = False) -> Subject:
    """The one subject a link may touch: its visit's visitor, reached through the visit."""
    visitors = Subject.objects.for_company(visit.company_id).filter(subject_type=SubjectType.VISITOR)
    if lock:
        visitors = visitors.select_for_update()
    return visitors.get(pk=visit.visitor_id)


def visit_consent_give(*, visit: Visit, policy_version: int, policy_language: str | None = None) -> Consent:
    """The visitor agrees, on their page, to the version of the policy they were shown, in
    the language of the text shown: a consent "on the web" (`consent_policy_outdated` if
    the policy changed meanwhile)."""
    with transaction.atomic():
        consent = subject_services.consent_record(
            company=visit.company,
            actor=VisitorThroughLink(visit.pk),
            subject=_own_visitor(visit),
            method=ConsentMethod.WEB,
            policy_version=policy_version,
            policy_language=policy_language,
        )
        # They changed their mind: reception waits for their photo again.
        Visit.objects.for_company(visit.company_id).filter(pk=visit.pk, face_declined_at__isnull=False).update(
            face_declined_at=None, updated_at=timezone.now()
        )
        visit.face_declined_at = None
    return consent


def visit_photo_submit(*, visit: Visit, upload) -> Photo:
    """The visitor's selfie, normalised and enrolled like any photo (the enrolment job runs
    after commit); it replaces the photos they sent before, so their page reports on the
    newest. Raises `photo_invalid` (nothing changes then) or `consent_required`."""
    image = normalise_photo(upload)  # before any lock or write: a bad file costs nothing
    company, actor = visit.company, VisitorThroughLink(visit.pk)
    with transaction.atomic():
        visitor = _own_visitor(visit, lock=True)
        for photo in Photo.objects.for_company(company).filter(subject=visitor):
            subject_services.photo_delete(company=company, actor=actor, photo=photo)
        [result] = subject_services.photos_add_bulk(company=company, actor=actor, photos=[(visitor.pk, image)])
        if isinstance(result, KangarooError):
            raise result
    return result


@transaction.atomic
def visit_face_decline(*, visit: Visit) -> None:
    """The visitor declines the face option: their consent, if they gave one, is withdrawn,
    which deletes their photos and tells the boxes to forget their face; reception checks
    them in, and sees so in their list (`VisitState.FACE_DECLINED`)."""
    visitor = _own_visitor(visit, lock=True)
    if consent_in_force(company=visit.company, subject=visitor) is not None:
        subject_services.consent_withdraw(company=visit.company, actor=VisitorThroughLink(visit.pk), subject=visitor)
    # The first refusal is the one kept (a second click changes nothing reception sees).
    now = timezone.now()
    Visit.objects.for_company(visit.company_id).filter(pk=visit.pk, face_declined_at__isnull=True).update(
        face_declined_at=now, updated_at=now
    )
    visit.face_declined_at = visit.face_declined_at or now
    audit_record(company=visit.company, actor=VisitorThroughLink(visit.pk), action="visit.face_decline", obj=visit)


# --- Windows that move on -----------------------------------------------------------------------


def visits_windows_follow(*, now: datetime | None = None) -> int:
    """Periodic (`visits.windows`): a visitor whose window at the doors has ended while
    another of their visits is still to come gets that visit's window (and host), as
    `_visitor_window_sync` would give it; returns how many visitors moved on. Without it a
    visitor invited twice would be `visitor_outside_window` at their second visit."""
    now = now or timezone.now()
    due = (
        Visit.objects.filter(  # tenant: the sweep serves every company, each visitor in its own
            status=VisitStatus.INVITED, ends_at__gt=now, visitor__visit_end__lt=now
        )
        .values_list("company_id", "visitor_id")
        .distinct()
    )
    moved = 0
    for company_id, visitor_id in sorted(set(due)):
        company = Company.objects.get(pk=company_id)  # tenant: the company of the visit above
        with transaction.atomic():
            visitor = Subject.objects.for_company(company).select_for_update().filter(pk=visitor_id).first()
            if visitor is None:
                continue
            _visitor_window_sync(company=company, actor=None, visitor=visitor, now=now)
        moved += 1
    return moved
