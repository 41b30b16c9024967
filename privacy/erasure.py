"""A person's right to erasure: their subject goes with every piece of their biometric data,
while the company keeps an anonymous record of the passes for its attendance totals.

Erasure is `subjects.services.subject_delete` (the one way a subject is deleted: photos with
their embeddings, consents with their signed forms, their events' snapshots and the copies
unknown people kept, every file after commit, and a tombstone in the gallery change log
that tells the boxes, all in one transaction) plus what only erasure does: the events lose
the name and job number they copied, the audit log's entries about the subject (and about
corrections of their events) lose the name they kept, the bulk photo uploads' records of
files matched to them lose their name and job number, higher apps scrub their copies
(`subject_erased`: the webhook delivery log), and the erasure itself is audited with who
asked for it and why. All in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import AuditLog, Company, User
from accounts.services import audit_record
from events.models import ERASED_PERSON, Event, EventCorrection
from events.services import event_anonymise_subjects
from kangaroo import errors
from kangaroo.errors import KangarooError
from subjects.domain_signals import announce_subject_erased
from subjects.models import Consent, Photo, PhotoUpload, Subject
from subjects.services import subject_delete

REASON_MAX_LENGTH = 500
# Fields of a subject that identify the person, as the audit log may have copied them.
# Fields whose values name the person wherever they were copied (webhook bodies, answers).
NAMING_FIELDS = ("name", "english_name", "job_number", "email", "phone")
IDENTIFYING_FIELDS = ("name", "english_name", "job_number", "email", "phone", "remark", "title", "start_date")


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed (counts only: what they were is gone)."""

    subject_id: int
    photos: int
    consents: int
    events_anonymised: int


def erasure_reason_check(reason: str | None) -> str:
    """The reason, trimmed; `validation_error` on `reason` when it is empty or too long."""
    reason = (reason or "").strip()
    if not reason:
        message = _("Say why this person is erased (their request, say); the audit log keeps it.")
    elif len(reason) > REASON_MAX_LENGTH:
        message = _("At most %(max)s characters.") % {"max": REASON_MAX_LENGTH}
    else:
        return reason
    raise KangarooError(errors.VALIDATION_ERROR, message, fields={"reason": [message]})


@transaction.atomic
def subject_erase(*, company: Company, actor: User | None, subject: Subject, reason: str) -> Erasure:
    """Erase the subject: delete them with all their biometric data and make their events
    anonymous, audited with `actor` and `reason` (required). A subject of another company
    raises Subject.DoesNotExist, like a missing one."""
    reason = erasure_reason_check(reason)
    subject = Subject.objects.for_company(company).select_for_update().get(pk=subject.pk)
    pk = subject.pk
    photos = Photo.objects.for_company(company).filter(subject=subject).count()
    consents = Consent.objects.for_company(company).filter(subject=subject).count()
    # What names them now, and what named them before (a renamed person is the same person).
    former = _former_values(company, pk)
    identifiers = [getattr(subject, field) for field in NAMING_FIELDS] + sorted(
        {value for values in former.values() for value in values}
    )
    corrected = _corrected_event_ids(company, pk)
    anonymised = event_anonymise_subjects(company=company, subject_ids=[pk])
    subject_delete(company=company, actor=actor, subject=subject)
    for name in {subject.name, *former["name"]}:
        _scrub_correction_entries(company, corrected, name, erased_repr(pk))
    _scrub_photo_uploads(company, pk, erased_repr(pk))
    announce_subject_erased(company=company, identifiers={pk: [str(text) for text in identifiers if text]})
    # The log keeps that someone was created, changed and deleted, but no longer who.
    entries = AuditLog.objects.for_company(company).filter(
        object_type=ContentType.objects.get_for_model(Subject), object_id=str(pk)
    )
    for entry in entries.only("pk", "changes"):
        scrubbed = {key: value for key, value in entry.changes.items() if key not in IDENTIFYING_FIELDS}
        if scrubbed != entry.changes:
            entry.changes = scrubbed
            entry.save(update_fields=["changes"])
    entries.update(object_repr=erased_repr(pk))
    # The admin's own history ("Recent actions") named them too. Its rows carry no company;
    # a subject's id is unique across companies.
    LogEntry.objects.filter(  # tenant: this subject's rows, by its global id
        content_type=ContentType.objects.get_for_model(Subject), object_id=str(pk)
    ).update(object_repr=erased_repr(pk))
    entry = audit_record(
        company=company,
        actor=actor,
        action="subject.erase",
        changes={
            "subject": pk,
            "reason": reason,
            "photos_deleted": photos,
            "consents_deleted": consents,
            "events_anonymised": anonymised,
        },
    )
    entry.object_type = ContentType.objects.get_for_model(Subject)
    entry.object_id, entry.object_repr = str(pk), erased_repr(pk)
    entry.save(update_fields=["object_type", "object_id", "object_repr"])
    return Erasure(subject_id=pk, photos=photos, consents=consents, events_anonymised=anonymised)


def erased_repr(pk: int) -> str:
    """How the logs name an erased person once they are gone."""
    # In the server's language: the log keeps text, which is not translated when read.
    with translation.override(None):
        return f"{ERASED_PERSON} #{pk}"


def _corrected_event_ids(company: Company, pk: int) -> list[str]:
    """The events a correction made about the subject or took away from them: the audit
    entries of those corrections name the event, and an event is named by its person."""
    corrections = EventCorrection.objects.for_company(company)
    ids = set(corrections.filter(subject_id=pk).values_list("event_id", flat=True))
    ids |= set(corrections.filter(original_subject_id=pk).values_list("event_id", flat=True))
    ids |= set(
        Event.objects.for_company(company)
        .filter(subject_id=pk, corrected_at__isnull=False)
        .values_list("pk", flat=True)
    )
    return [str(event_id) for event_id in ids]


def _former_values(company: Company, pk: int) -> dict[str, set[str]]:
    """Per naming field, every value the audit log saw the subject have (created with, or
    changed from and to)."""
    found: dict[str, set[str]] = {field: set() for field in NAMING_FIELDS}
    entries = AuditLog.objects.for_company(company).filter(
        object_type=ContentType.objects.get_for_model(Subject), object_id=str(pk)
    )
    for changes in entries.values_list("changes", flat=True):
        for field in NAMING_FIELDS:
            value = (changes or {}).get(field)
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and text:
                    found[field].add(text)
    return found


def _scrub_correction_entries(company: Company, event_ids: list[str], name: str, erased: str) -> None:
    if not event_ids or not name:
        return
    entries = AuditLog.objects.for_company(company).filter(
        object_type=ContentType.objects.get_for_model(Event), object_id__in=event_ids, object_repr__contains=name
    )
    for entry in entries.only("pk", "object_repr"):
        entry.object_repr = entry.object_repr.replace(name, erased)
        entry.save(update_fields=["object_repr"])


def _scrub_photo_uploads(company: Company, pk: int, erased: str) -> None:
    """A bulk upload's record names each file (by job number) and the subject it matched."""
    for upload in PhotoUpload.objects.for_company(company).only("pk", "entries"):
        if not any(entry.get("subject") == pk for entry in upload.entries):
            continue
        upload.entries = [
            {**entry, "name": erased, "job_number": "", "subject_name": ""} if entry.get("subject") == pk else entry
            for entry in upload.entries
        ]
        upload.save(update_fields=["entries"])
