"""A company seeded with every kind of data the retention purge looks at, each kind once
just inside its window and once just outside it (one day either side)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

import faces
from accounts.models import AuditLog, Company
from accounts.services import retention_policy_current
from events.models import Event, EventKind, UnknownPerson, UnknownSnapshot
from kangaroo.media import MediaKind, media_save
from subjects.domain_signals import announce_photos_enrolled
from subjects.models import Consent, Photo, PhotoStatus, Subject, SubjectType
from tests.factories import (
    AuditLogFactory,
    EventFactory,
    PhotoFactory,
    SubjectFactory,
    UnknownPersonFactory,
    UnknownSnapshotFactory,
)
from tests.images import jpeg_bytes

DAY = datetime.timedelta(days=1)


@dataclass
class Seeded:
    """What was seeded, by name; `keep` and `gone` are the files expected to stay and to go."""

    company: Company
    subjects: dict[str, Subject] = field(default_factory=dict)
    photos: dict[str, Photo] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    people: dict[str, UnknownPerson] = field(default_factory=dict)
    audit: dict[str, AuditLog] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)


def _file(company, kind) -> str:
    return media_save(kind=kind, company_id=company.pk, content=jpeg_bytes())


def _subject(seeded, name, *, created, **fields) -> Subject:
    subject = SubjectFactory(company=seeded.company, name=name, job_number=name, **fields)
    Subject.objects.for_company(seeded.company).filter(pk=subject.pk).update(created_at=created)
    seeded.subjects[name] = subject
    return subject


def _photo(seeded, name, subject, *, created, stays: bool) -> Photo:
    company = seeded.company
    photo = PhotoFactory(
        company=company,
        subject=subject,
        image=_file(company, MediaKind.PHOTO),
        thumbnail=_file(company, MediaKind.THUMBNAIL),
        status=PhotoStatus.OK,
        embedding=np.random.default_rng(len(seeded.photos)).random(128, dtype=np.float32).astype("<f4").tobytes(),
        embedding_model=faces.MODEL,
    )
    Photo.objects.for_company(company).filter(pk=photo.pk).update(created_at=created)
    with transaction.atomic():
        announce_photos_enrolled(company=company, photos=[(photo.pk, subject.pk)])
    (seeded.keep if stays else seeded.gone).update({photo.image.name, photo.thumbnail.name})
    seeded.photos[name] = photo
    return photo


def _event(seeded, name, *, at, subject=None, kind=EventKind.RECOGNIZED, snapshot_stays: bool | None = None) -> Event:
    snapshot = _file(seeded.company, MediaKind.SNAPSHOT) if snapshot_stays is not None else ""
    event = EventFactory(company=seeded.company, kind=kind, subject=subject, happened_at=at, snapshot=snapshot)
    if snapshot:
        (seeded.keep if snapshot_stays else seeded.gone).add(snapshot)
    seeded.events[name] = event
    return event


def _person(seeded, name, *, last_seen, stays: bool) -> UnknownPerson:
    person = UnknownPersonFactory(company=seeded.company, first_seen_at=last_seen - DAY, last_seen_at=last_seen)
    copy = UnknownSnapshotFactory(
        company=seeded.company, person=person, image=_file(seeded.company, MediaKind.SNAPSHOT), happened_at=last_seen
    )
    (seeded.keep if stays else seeded.gone).add(copy.image.name)
    seeded.people[name] = person
    return person


def seed_every_age(company: Company, now: datetime.datetime) -> Seeded:
    """Seed `company` relative to `now` and its own windows."""
    seeded = Seeded(company=company)
    long_ago = now - (company.retention_inactive_days + 10) * DAY
    recent = now - DAY

    # Visitors: the window runs from the end of the visit.
    for name, ended, stays in [
        ("visitor-inside", now - (company.retention_visitor_days - 1) * DAY, True),
        ("visitor-outside", now - (company.retention_visitor_days + 1) * DAY, False),
    ]:
        visitor = _subject(
            seeded,
            name,
            created=ended - DAY,
            subject_type=SubjectType.VISITOR,
            visit_start=ended - DAY,
            visit_end=ended,
        )
        _photo(seeded, name, visitor, created=ended - DAY, stays=stays)
        _event(seeded, name, at=ended - DAY / 2, subject=visitor, snapshot_stays=stays)

    # Strangers: their snapshots; unknown people, by their last sighting.
    for name, at, stays in [
        ("stranger-inside", now - (company.retention_stranger_days - 1) * DAY, True),
        ("stranger-outside", now - (company.retention_stranger_days + 1) * DAY, False),
    ]:
        _event(seeded, name, at=at, kind=EventKind.STRANGER, subject=None, snapshot_stays=stays)
        _person(seeded, name, last_seen=at, stays=stays)

    # Employees: one seen yesterday, one never seen since enrolment long ago, one whose last
    # pass is older than the events' window but within the inactivity window.
    active = _subject(seeded, "employee-active", created=long_ago)
    _photo(seeded, "employee-active", active, created=long_ago, stays=True)
    _event(seeded, "employee-active", at=recent, subject=active, snapshot_stays=True)
    unseen = _subject(seeded, "employee-unseen", created=long_ago)
    _photo(seeded, "employee-unseen", unseen, created=long_ago, stays=False)
    # A photo uploaded yesterday is an interaction of its own: it stays.
    _photo(seeded, "employee-unseen-new-photo", unseen, created=recent, stays=True)
    regular = _subject(seeded, "employee-regular", created=long_ago)
    _photo(seeded, "employee-regular", regular, created=long_ago, stays=True)

    # Events: whole local days; the first day kept and the last day purged.
    first_kept = now.astimezone(company.zone).date() - company.retention_event_days * DAY
    noon = datetime.time(12, 0, tzinfo=company.zone)
    _event(seeded, "event-inside", at=datetime.datetime.combine(first_kept, noon), subject=active, snapshot_stays=True)
    for index in range(3):  # the day before: two passes of `regular`, one of `active`
        who = regular if index < 2 else active
        _event(
            seeded,
            f"event-outside-{index}",
            at=datetime.datetime.combine(first_kept - DAY, noon) - index * datetime.timedelta(hours=1),
            subject=who,
            snapshot_stays=False,
        )
    # `regular` was last seen the day before the first kept day (less than 3 years ago).

    # The audit log.
    for name, days in [
        ("audit-inside", company.retention_audit_days - 1),
        ("audit-outside", company.retention_audit_days + 1),
    ]:
        entry = AuditLogFactory(company=company, action=f"test.{name}")
        AuditLog.objects.for_company(company).filter(pk=entry.pk).update(created_at=now - days * DAY)
        seeded.audit[name] = entry

    # Signed consent forms: kept while the consent they prove may still cover something,
    # and for the audit window after the person withdrew.
    audit_days = company.retention_audit_days
    withdrew_long_ago = _subject(seeded, "consent-withdrawn-outside", created=long_ago, consent=False)
    _consent(seeded, "consent-replaced-before-withdrawal", withdrew_long_ago, recorded=long_ago, stays=False,
             replaced=now - (audit_days + 5) * DAY)  # fmt: skip
    _consent(seeded, "consent-withdrawn-outside", withdrew_long_ago, recorded=now - (audit_days + 5) * DAY,
             stays=False, withdrawn=now - (audit_days + 1) * DAY)  # fmt: skip
    # They consented again since: the new form proves the new collection.
    _consent(seeded, "consent-given-again", withdrew_long_ago, recorded=now - audit_days * DAY, stays=True)
    withdrew_lately = _subject(seeded, "consent-withdrawn-inside", created=long_ago, consent=False)
    _consent(seeded, "consent-withdrawn-inside", withdrew_lately, recorded=long_ago, stays=True,
             withdrawn=now - (audit_days - 1) * DAY)  # fmt: skip
    # In force for years: its photos may be years old too.
    signed = _subject(seeded, "consent-in-force", created=long_ago, consent=False)
    _consent(seeded, "consent-in-force", signed, recorded=long_ago, stays=True)
    return seeded


def _consent(seeded, name, subject, *, recorded, stays: bool, withdrawn=None, replaced=None) -> Consent:
    company = seeded.company
    consent = Consent.objects.create(
        company=company,
        subject=subject,
        given_at=recorded,
        method="paper",
        policy=retention_policy_current(company=company),
        evidence=_file(company, MediaKind.CONSENT),
        withdrawn_at=withdrawn,
        replaced_at=replaced,
    )
    Consent.objects.for_company(company).filter(pk=consent.pk).update(created_at=recorded)
    (seeded.keep if stays else seeded.gone).add(consent.evidence.name)
    seeded.consents[name] = consent
    return consent


def remaining(seeded: Seeded) -> dict[str, set]:
    company = seeded.company
    return {
        "photos": set(Photo.objects.for_company(company).values_list("pk", flat=True)),
        "events": set(Event.objects.for_company(company).values_list("pk", flat=True)),
        "snapshots": set(Event.objects.for_company(company).exclude(snapshot="").values_list("pk", flat=True)),
        "people": set(UnknownPerson.objects.for_company(company).values_list("pk", flat=True)),
        "copies": set(UnknownSnapshot.objects.for_company(company).values_list("image", flat=True)),
        "evidence": set(Consent.objects.for_company(company).exclude(evidence="").values_list("evidence", flat=True)),
        "consents": set(Consent.objects.for_company(company).values_list("pk", flat=True)),
        "audit": set(
            AuditLog.objects.for_company(company).filter(action__startswith="test.").values_list("action", flat=True)
        ),
    }
