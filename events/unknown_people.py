"""Unknown people: the writes (services) that group stranger events into people and turn
those people into subjects.

Clustering. Every stranger event with a snapshot is embedded by a job
(`events.jobs.unknown_sightings_job`, queued by the `events_recorded` listener below). Its
face is compared with each unknown person of the company: with the person's representative
(the mean of the faces that joined) and with the faces of their best snapshots; the nearest
one within UNKNOWN_CLUSTER_THRESHOLD takes the sighting, otherwise the face starts a new
unknown person. The comparison runs with the company's row locked, so two sightings of a
new face processed at the same moment cannot start two people. The face engine runs before
the lock: it is the slow part.

Files. An unknown person keeps copies of their best snapshots (UNKNOWN_BEST_SNAPSHOTS, by
face quality), written and deleted through `kangaroo.media` like every biometric file: a
snapshot pushed out of the best ones, a merged or deleted person's, all go after commit.

Turning one into a subject (`unknown_person_enrol`, `unknown_person_add_to_subject`) goes
through the subjects services (`subject_create`, `photo_add`), so enrolment jobs and the
gallery change log follow; the person's events are linked to the subject (attendance,
computed from the events, follows) and the person is deleted.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import faces
from accounts.models import Company, User
from accounts.services import audit_record
from events import live
from events.attendance import company_today, local_midnight
from events.models import Event, EventKind, UnknownPerson, UnknownSnapshot
from kangaroo import errors
from kangaroo.errors import KangarooError
from kangaroo.jobs import enqueue
from kangaroo.media import MediaKind, media_copy, media_delete_on_commit, media_read, media_written
from subjects.face_index import face_rules
from subjects.models import Subject
from subjects.services import MAX_PHOTOS_PER_SUBJECT, photo_add, subject_create

logger = logging.getLogger(__name__)


# --- Clustering -------------------------------------------------------------------------------


def queue_unknown_sightings(sender, *, company: Company, events: Sequence[Event], **kwargs) -> None:
    """The `events_recorded` listener: one job per batch for its stranger events with a
    snapshot (connected in `EventsConfig.ready`)."""
    from events.jobs import unknown_sightings_job  # the jobs module imports this one

    ids = [event.pk for event in events if event.kind == EventKind.STRANGER and event.snapshot]
    if ids:
        enqueue(unknown_sightings_job, company.pk, ids)


def unknown_sightings_record(*, company: Company, event_ids: Iterable[int]) -> list[UnknownPerson | None]:
    """Cluster each of the company's stranger events in `event_ids` (see the module doc);
    returns the unknown person each joined (None: no face, not a stranger any more, or
    clustered already, which makes a retried job harmless)."""
    events = Event.objects.for_company(company).filter(
        pk__in=list(event_ids), kind=EventKind.STRANGER, unknown_person__isnull=True
    )
    events = events.exclude(snapshot="").order_by("happened_at", "id")  # in the order they were seen
    return [unknown_sighting_record(company=company, event=event) for event in events]


def unknown_sighting_record(*, company: Company, event: Event) -> UnknownPerson | None:
    """Embed the stranger event's snapshot and put it with its unknown person."""
    try:
        image = faces.load_image(media_read(event.snapshot.name))
    except Exception:  # a snapshot file gone or unreadable: nothing to cluster
        logger.warning("The snapshot of event %s could not be read for clustering", event.pk, exc_info=True)
        return None
    face = faces.snapshot_face(image, face_rules())
    if face is None:
        return None
    with media_written() as written, transaction.atomic():
        _lock(company)
        event = Event.objects.for_company(company).filter(pk=event.pk).first()
        if event is None or event.kind != EventKind.STRANGER or event.unknown_person_id or not event.snapshot:
            return None  # corrected, deleted or clustered meanwhile
        person = _nearest_person(company, face.embedding)
        if person is None:
            person = UnknownPerson.objects.create(
                company=company,
                first_seen_at=event.happened_at,
                last_seen_at=event.happened_at,
                sightings=1,
                embedding=faces.embedding_to_bytes(face.embedding),
                embedding_model=faces.MODEL,
            )
        else:
            mean = faces.embedding_from_bytes(person.embedding)
            mean = (mean * person.sightings + face.embedding) / (person.sightings + 1)
            person.embedding = faces.embedding_to_bytes(mean.astype(np.float32))
            person.sightings += 1
            person.first_seen_at = min(person.first_seen_at, event.happened_at)
            person.last_seen_at = max(person.last_seen_at, event.happened_at)
            person.save(update_fields=["embedding", "sightings", "first_seen_at", "last_seen_at"])
        UnknownSnapshot.objects.create(
            company=company,
            person=person,
            event=event,
            image=media_copy(name=event.snapshot.name, kind=MediaKind.SNAPSHOT, company_id=company.pk, written=written),
            quality=face.quality,
            embedding=faces.embedding_to_bytes(face.embedding),
            happened_at=event.happened_at,
        )
        _keep_best_snapshots(company, person)
        event.unknown_person = person
        event.save(update_fields=["unknown_person"])
        seen_today = unknown_person_seen_today(company=company, person=person)
        transaction.on_commit(lambda: live.broadcast_stranger_seen(event, person, seen_today))
    return person


def _lock(company: Company) -> None:
    """Serialise the changes to a company's unknown people (clustering and HR's actions)."""
    Company.objects.select_for_update().filter(pk=company.pk).first()


def _nearest_person(company: Company, embedding: np.ndarray) -> UnknownPerson | None:
    rows = [
        (0, pk, bytes(data))
        for pk, data in UnknownPerson.objects.for_company(company)
        .filter(embedding_model=faces.MODEL)
        .values_list("pk", "embedding")
    ]
    rows += [
        (pk, person_id, bytes(data))
        for pk, person_id, data in UnknownSnapshot.objects.for_company(company)
        .filter(person__embedding_model=faces.MODEL)
        .values_list("pk", "person_id", "embedding")
    ]
    match = faces.FaceIndex.from_rows(rows).nearest(embedding)
    if match is None or match.distance > settings.UNKNOWN_CLUSTER_THRESHOLD:
        return None
    return UnknownPerson.objects.for_company(company).get(pk=match.subject_id)


def _keep_best_snapshots(company: Company, person: UnknownPerson) -> None:
    extra = list(UnknownSnapshot.objects.for_company(company).filter(person=person)[settings.UNKNOWN_BEST_SNAPSHOTS :])
    if extra:
        media_delete_on_commit(snapshot.image.name for snapshot in extra)
        UnknownSnapshot.objects.for_company(company).filter(pk__in=[s.pk for s in extra]).delete()


def unknown_person_seen_today(*, company: Company, person: UnknownPerson) -> int:
    """Sightings of the person since midnight in the company's time zone."""
    return (
        Event.objects.for_company(company)
        .filter(unknown_person=person, happened_at__gte=local_midnight(company_today(company), company.zone))
        .count()
    )


# --- HR's actions -------------------------------------------------------------------------------


def _locked_person(company: Company, person: UnknownPerson) -> UnknownPerson:
    _lock(company)
    found = UnknownPerson.objects.for_company(company).filter(pk=person.pk).first()
    if found is None:
        raise KangarooError(errors.NOT_FOUND)
    return found


def _chosen_snapshots(company: Company, person: UnknownPerson, snapshot_ids: Sequence[int] | None) -> list:
    snapshots = UnknownSnapshot.objects.for_company(company).filter(person=person)
    if snapshot_ids is None:
        return list(snapshots[:1])  # the best one
    chosen = list(snapshots.filter(pk__in=list(snapshot_ids)))
    if len(chosen) != len(set(snapshot_ids)):
        raise errors.related_not_found("snapshots")
    return chosen


def _photo_uploads(snapshots: Sequence[UnknownSnapshot]) -> list[io.BytesIO]:
    return [io.BytesIO(media_read(snapshot.image.name)) for snapshot in snapshots]


@transaction.atomic
def unknown_person_enrol(
    *,
    company: Company,
    actor: User | None,
    person: UnknownPerson,
    snapshot_ids: Sequence[int] | None = None,
    **subject_data,
) -> Subject:
    """Enrol the unknown person as a new subject (`subject_data`: name, subject_type,
    job_number, ... as `subject_create` takes them) with the chosen snapshots (ids of their
    best snapshots; None: the best one) as photos; their events are linked to the subject
    and the person is deleted. Raises `subject_photo_limit` for more than 5 snapshots."""
    person = _locked_person(company, person)
    chosen = _chosen_snapshots(company, person, snapshot_ids)
    if len(chosen) > MAX_PHOTOS_PER_SUBJECT:
        raise KangarooError(errors.SUBJECT_PHOTO_LIMIT, fields={"snapshots": [str(errors.SUBJECT_PHOTO_LIMIT.message)]})
    subject = subject_create(company=company, actor=actor, photos=_photo_uploads(chosen), **subject_data)
    _hand_over(company, actor, person, subject, photos=len(chosen), action="unknown_person.enrol")
    return subject


@transaction.atomic
def unknown_person_add_to_subject(
    *,
    company: Company,
    actor: User | None,
    person: UnknownPerson,
    subject: Subject,
    snapshot_ids: Sequence[int] | None = None,
) -> Subject:
    """As `unknown_person_enrol`, into an existing subject of the company (the snapshots
    become more photos of theirs, up to the subject's limit of 5)."""
    person = _locked_person(company, person)
    if subject.company_id != company.pk:
        raise errors.related_not_found("subject")
    chosen = _chosen_snapshots(company, person, snapshot_ids)
    for upload in _photo_uploads(chosen):
        photo_add(company=company, actor=actor, subject=subject, upload=upload)
    _hand_over(company, actor, person, subject, photos=len(chosen), action="unknown_person.add_to_subject")
    return subject


def _hand_over(
    company: Company, actor: User | None, person: UnknownPerson, subject: Subject, *, photos: int, action: str
) -> None:
    """The person turned out to be `subject`: their events become the subject's, the hand-over
    is audited (with how many events and photos went over) and the person is deleted."""
    linked = _link_events(company, person, subject)
    audit_record(
        company=company,
        actor=actor,
        action=action,
        obj=subject,
        changes={"unknown_person": person.pk, "events": linked, "photos": photos},
    )
    _delete(company, person)


def _link_events(company: Company, person: UnknownPerson, subject: Subject) -> int:
    """The person's stranger events become recognitions of `subject`; returns how many."""
    events = Event.objects.for_company(company).filter(unknown_person=person, kind=EventKind.STRANGER)
    linked = list(events)
    events.update(
        kind=EventKind.RECOGNIZED,
        subject=subject,
        subject_name=subject.name,
        subject_type=subject.subject_type,
        subject_job_number=subject.job_number,
        unknown_person=None,
        corrected_at=timezone.now(),
    )
    for event in linked:
        event.kind, event.subject, event.subject_name = EventKind.RECOGNIZED, subject, subject.name
        event.subject_type, event.subject_job_number = subject.subject_type, subject.job_number
    today = local_midnight(company_today(company), company.zone)
    recent = [event for event in linked if event.happened_at >= today]
    if recent:  # today's cards on the dashboards now greet the subject
        transaction.on_commit(lambda: live.broadcast_corrected(recent))
    return len(linked)


@transaction.atomic
def unknown_person_merge(
    *, company: Company, actor: User | None, person: UnknownPerson, into: UnknownPerson
) -> UnknownPerson:
    """Merge `person` into `into`: sightings, events and best snapshots; `person` goes."""
    person = _locked_person(company, person)
    into = _locked_person(company, into)
    if person.pk == into.pk:
        raise KangarooError(
            errors.UNKNOWN_PERSON_MERGE_SELF, fields={"into": [str(errors.UNKNOWN_PERSON_MERGE_SELF.message)]}
        )
    total = person.sightings + into.sightings
    if person.embedding_model == into.embedding_model and total:
        mean = (
            faces.embedding_from_bytes(into.embedding) * into.sightings
            + faces.embedding_from_bytes(person.embedding) * person.sightings
        ) / total
        into.embedding = faces.embedding_to_bytes(mean.astype(np.float32))
    into.sightings = total
    into.first_seen_at = min(into.first_seen_at, person.first_seen_at)
    into.last_seen_at = max(into.last_seen_at, person.last_seen_at)
    into.save(update_fields=["embedding", "sightings", "first_seen_at", "last_seen_at"])
    Event.objects.for_company(company).filter(unknown_person=person).update(unknown_person=into)
    UnknownSnapshot.objects.for_company(company).filter(person=person).update(person=into)
    _keep_best_snapshots(company, into)
    audit_record(company=company, actor=actor, action="unknown_person.merge", obj=into, changes={"merged": person.pk})
    person.delete()  # its snapshots are into's now
    return into


@transaction.atomic
def unknown_person_ignore(
    *, company: Company, actor: User | None, person: UnknownPerson, ignored: bool = True
) -> UnknownPerson:
    """Ignored: the person's sightings raise no stranger alert on the dashboards."""
    person = _locked_person(company, person)
    if person.ignored != ignored:
        person.ignored = ignored
        person.save(update_fields=["ignored"])
        audit_record(
            company=company, actor=actor, action="unknown_person.ignore", obj=person, changes={"ignored": ignored}
        )
    return person


@transaction.atomic
def unknown_person_delete(*, company: Company, actor: User | None, person: UnknownPerson) -> None:
    """Delete the person with their snapshots: their best snapshots and the snapshots of
    their stranger events (pictures of their face); the event rows stay, as a subject's do."""
    person = _locked_person(company, person)
    audit_record(company=company, actor=actor, action="unknown_person.delete", obj=person)
    events = Event.objects.for_company(company).filter(unknown_person=person).exclude(snapshot="")
    media_delete_on_commit(list(events.values_list("snapshot", flat=True)))
    events.update(snapshot="")
    _delete(company, person)


def _delete(company: Company, person: UnknownPerson) -> None:
    snapshots = UnknownSnapshot.objects.for_company(company).filter(person=person)
    media_delete_on_commit(list(snapshots.values_list("image", flat=True)))
    snapshots.delete()
    person.delete()


def unknown_person_detach_event(*, company: Company, event: Event) -> None:
    """An event of an unknown person is corrected to someone else: it no longer counts as
    their sighting (its copy among their best snapshots goes too; a person left without
    sightings is deleted)."""
    person = UnknownPerson.objects.for_company(company).filter(pk=event.unknown_person_id).first()
    event.unknown_person = None
    if person is None:
        return
    copies = UnknownSnapshot.objects.for_company(company).filter(person=person, event=event)
    media_delete_on_commit(list(copies.values_list("image", flat=True)))
    copies.delete()
    if person.sightings <= 1:
        _delete(company, person)
        return
    person.sightings -= 1
    person.save(update_fields=["sightings"])
