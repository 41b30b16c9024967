"""Corrections: an admin says who an event was really about.

`event_correct` reassigns a recognition or a stranger event to the right subject, or marks
it a stranger; optionally the event's snapshot becomes a photo of the right subject (through
`subjects.services.photo_add`, so enrolment and the gallery change log follow). The event
row says the new truth, and an `EventCorrection` keeps what it said before (kind, subject,
confidence), who corrected it and when; the audit log records it too.

Attendance is computed from the events themselves (`events.attendance`), so the day of a
corrected event reads right at once, for the wrong subject and the right one. The live
pages are told after commit (`event_corrected`), so a dashboard replaces the card that
greeted the wrong person. A stranger marked from a recognition is clustered like any other.
"""

from __future__ import annotations

import io

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Company, User
from accounts.services import audit_record
from events import live
from events.hooks import send_event_corrected
from events.models import CorrectionKind, Event, EventCorrection, EventKind
from events.unknown_people import queue_unknown_sightings, unknown_person_detach_event
from kangaroo import errors
from kangaroo.errors import KangarooError
from kangaroo.media import media_read
from subjects.models import Photo, Subject
from subjects.services import photo_add

CORRECTABLE = (EventKind.RECOGNIZED, EventKind.STRANGER)


@transaction.atomic
def event_correct(
    *, company: Company, actor: User | None, event: Event, subject: Subject | None, add_photo: bool = False
) -> EventCorrection:
    """Reassign `event` to `subject`, or mark it a stranger (`subject` None), keeping the
    original in the returned correction. `add_photo`: the event's snapshot also becomes a
    photo of `subject`.

    Raises KangarooError: `event_not_correctable` (a device event), `event_correction_unchanged`
    (the event says this already), `event_without_snapshot` (add_photo without a snapshot),
    `validation_error` (add_photo without a subject; a subject of another company, as not found),
    `subject_photo_limit` / `photo_invalid` from the photo.
    """
    event = Event.objects.for_company(company).select_for_update().filter(pk=event.pk).first()
    if event is None:
        raise KangarooError(errors.NOT_FOUND)
    if event.kind not in CORRECTABLE:
        raise KangarooError(errors.EVENT_NOT_CORRECTABLE)
    if subject is not None and subject.company_id != company.pk:
        raise errors.related_not_found("subject")
    if subject is None and add_photo:
        message = _("A photo can only be added to the subject the event is reassigned to.")
        raise KangarooError(errors.VALIDATION_ERROR, message, fields={"add_photo": [message]})
    if add_photo and not event.snapshot:
        raise KangarooError(
            errors.EVENT_WITHOUT_SNAPSHOT, fields={"add_photo": [str(errors.EVENT_WITHOUT_SNAPSHOT.message)]}
        )
    if (subject is None and event.kind == EventKind.STRANGER) or (
        subject is not None and event.kind == EventKind.RECOGNIZED and event.subject_id == subject.pk
    ):
        raise KangarooError(errors.EVENT_CORRECTION_UNCHANGED)

    correction = EventCorrection.objects.create(
        company=company,
        event=event,
        kind=CorrectionKind.REASSIGNED if subject is not None else CorrectionKind.MARKED_STRANGER,
        screen_id=event.screen_id,
        original_kind=event.kind,
        original_subject_id=event.subject_id,
        original_subject_name=event.subject_name,
        original_confidence=event.confidence,
        subject=subject,
        subject_name=subject.name if subject is not None else "",
        actor=actor if actor is not None and actor.pk else None,
        actor_repr=actor.get_username() if actor is not None else "system",
    )
    if event.unknown_person_id:
        unknown_person_detach_event(company=company, event=event)
    if add_photo:
        correction.photo = photo_add(
            company=company, actor=actor, subject=subject, upload=io.BytesIO(media_read(event.snapshot.name))
        )
        correction.save(update_fields=["photo"])

    if subject is not None:
        event.kind = EventKind.RECOGNIZED
        event.subject = subject
        event.subject_name, event.subject_type, event.subject_job_number = (
            subject.name,
            subject.subject_type,
            subject.job_number,
        )
    else:
        event.kind = EventKind.STRANGER
        event.subject = None
        event.subject_name = event.subject_type = event.subject_job_number = ""
    event.corrected_at = timezone.now()
    event.save(
        update_fields=[
            "kind",
            "subject",
            "subject_name",
            "subject_type",
            "subject_job_number",
            "unknown_person",
            "corrected_at",
        ]
    )
    audit_record(
        company=company,
        actor=actor,
        action="event.correct",
        obj=event,
        changes={
            "kind": [correction.original_kind, event.kind],
            "subject": [correction.original_subject_id, event.subject_id],
            "confidence": correction.original_confidence,
            "photo": correction.photo_id,
        },
    )
    event.first_photo_id = (
        Photo.objects.for_company(company).filter(subject=subject).order_by("id").values_list("pk", flat=True).first()
        if subject is not None
        else None
    )
    transaction.on_commit(lambda: live.broadcast_corrected([event]))
    transaction.on_commit(lambda: send_event_corrected(company=company, event=event), robust=True)
    if event.kind == EventKind.STRANGER and event.snapshot:
        queue_unknown_sightings(Event, company=company, events=[event])
    return correction
