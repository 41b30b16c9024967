"""A person's right of access: everything the company holds about one subject, as one ZIP.

The archive holds JSON files a person (or their lawyer) can read and the pictures
themselves:

- `subject.json`: the record, with each photo's details and the consent history;
- `photos/<id>.jpg`: the face photos as stored;
- `consents/<id>.jpg`: the signed forms;
- `events.json`: every event about them, each naming its snapshot;
- `snapshots/<event id>.jpg`: what the cameras saw;
- `attendance.json`: their attendance per day;
- `README.txt`: what each file is.

Times are ISO 8601 in the company's time zone, with the offset, so they read as the
company's local time and still name one instant. The archive is written into a file given
by the caller (a temporary file, for the views), event by event and picture by picture:
a person with thousands of events never needs them all in memory. Pictures are read
through the media owner. Each export is audited (who, which subject, when).
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.db.models import Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Company, User
from accounts.services import audit_record
from events.attendance import MAX_DAYS, attendance_days
from events.models import Event, EventKind
from kangaroo.media import media_open
from subjects.models import Consent, Photo, Subject

EVENTS_CHUNK = 500
README = _(
    """\
Everything {company} holds about {name} (job number {job_number}), exported {when}.

subject.json      the record: name, type, contact details, department, visit, photos, consents
photos/           the face photos, as stored (photos/<photo id>.jpg)
consents/         the signed consent forms (consents/<consent id>.jpg)
events.json       every pass and sighting recorded about this person; "snapshot" names the
                  picture in snapshots/ when one was kept
snapshots/        what the cameras saw (snapshots/<event id>.jpg)
attendance.json   attendance per day: first pass in, last pass out, passes

Times are in the company's time zone ({zone}), with their offset from UTC.
"""
)


@dataclass(frozen=True)
class AccessExport:
    """What an export held (counts, as the audit log keeps them)."""

    photos: int
    consents: int
    events: int
    snapshots: int
    attendance_days: int


def export_file_name(subject: Subject) -> str:
    return f"access-export-{subject.job_number or subject.pk}.zip".replace("/", "-").replace("\\", "-")


def subject_access_export(*, company: Company, actor: User | None, subject: Subject, out: IO[bytes]) -> AccessExport:
    """Write the subject's access export as a ZIP into `out` (a binary file open for writing)
    and audit it. A subject of another company raises Subject.DoesNotExist, like a missing
    one. A picture the storage cannot give is left out (and named in the JSON as missing)
    rather than failing the whole export."""
    subject = Subject.objects.for_company(company).select_related("department", "host").get(pk=subject.pk)
    zone = company.zone
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "README.txt",
            str(README).format(
                company=company.name,
                name=subject.name,
                job_number=subject.job_number,
                when=_time(timezone.now(), zone),
                zone=company.time_zone,
            ),
        )
        photos = list(Photo.objects.for_company(company).filter(subject=subject).order_by("id"))
        consents = list(
            Consent.objects.for_company(company).filter(subject=subject).select_related("policy").order_by("given_at")
        )
        photo_rows = [_photo(archive, photo, zone) for photo in photos]
        consent_rows = [_consent(archive, consent, zone) for consent in consents]
        record = _subject(subject, zone) | {"photos": photo_rows, "consents": consent_rows}
        archive.writestr("subject.json", _json(record))
        events, snapshots = _events(archive, company, subject, zone)
        days = _attendance(archive, company, subject)
    result = AccessExport(
        photos=len(photos), consents=len(consents), events=events, snapshots=snapshots, attendance_days=days
    )
    audit_record(
        company=company,
        actor=actor,
        action="subject.access_export",
        obj=subject,
        changes={
            "photos": result.photos,
            "consents": result.consents,
            "events": result.events,
            "snapshots": result.snapshots,
            "attendance_days": result.attendance_days,
        },
    )
    return result


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _time(value: datetime.datetime | None, zone) -> str | None:
    return value.astimezone(zone).isoformat() if value is not None else None


def _copy_file(archive: zipfile.ZipFile, name: str, path: str) -> bool:
    """Copy a stored picture into the archive in chunks; False if the storage cannot give it."""
    try:
        source = media_open(name)
    except OSError:
        return False
    with source, archive.open(path, "w") as target:
        shutil.copyfileobj(source, target, 64 * 1024)
    return True


def _subject(subject: Subject, zone) -> dict[str, Any]:
    return {
        "id": subject.pk,
        "type": subject.subject_type,
        "name": subject.name,
        "english_name": subject.english_name,
        "job_number": subject.job_number,
        "email": subject.email,
        "phone": subject.phone,
        "department": subject.department.name if subject.department else None,
        "title": subject.title,
        "remark": subject.remark,
        "start_date": subject.start_date.isoformat() if subject.start_date else None,
        "visit_start": _time(subject.visit_start, zone),
        "visit_end": _time(subject.visit_end, zone),
        "host": str(subject.host) if subject.host else None,
        "purpose": subject.purpose,
        "archived": subject.archived,
        "created_at": _time(subject.created_at, zone),
        "updated_at": _time(subject.updated_at, zone),
    }


def _photo(archive: zipfile.ZipFile, photo: Photo, zone) -> dict[str, Any]:
    path = f"photos/{photo.pk}.jpg"
    stored = _copy_file(archive, photo.image.name, path)
    return {
        "id": photo.pk,
        "file": path if stored else None,
        "uploaded_at": _time(photo.created_at, zone),
        "status": photo.status,
        "reason": photo.reason,
        "width": photo.width,
        "height": photo.height,
        "face_box": photo.face_box,
        "quality": photo.quality,
        # The face data derived from the photo: that it is held and by which model.
        "face_data_held": photo.embedding is not None,
        "face_model": photo.embedding_model,
        "enrolled_at": _time(photo.enrolled_at, zone),
    }


def _consent(archive: zipfile.ZipFile, consent: Consent, zone) -> dict[str, Any]:
    path = f"consents/{consent.pk}.jpg"
    stored = bool(consent.evidence) and _copy_file(archive, consent.evidence.name, path)
    return {
        "id": consent.pk,
        "given_at": _time(consent.given_at, zone),
        "method": consent.method,
        "policy_version": consent.policy.version,
        # The words the person agreed to: the version's text in the language they were shown.
        "policy_language": consent.policy_language,
        "policy_text": consent.policy.text_for(consent.policy_language).text,
        "recorded_by": consent.recorded_by_repr,
        "recorded_at": _time(consent.created_at, zone),
        "evidence": path if stored else None,
        "withdrawn_at": _time(consent.withdrawn_at, zone),
        "withdrawn_by": consent.withdrawn_by_repr,
        "replaced_at": _time(consent.replaced_at, zone),
    }


def _events(archive: zipfile.ZipFile, company: Company, subject: Subject, zone) -> tuple[int, int]:
    """The snapshots, and events.json: a JSON array written one event at a time into a
    temporary file (a ZIP member cannot be written while the snapshots go in), then copied
    into the archive."""
    count = snapshots = 0
    events = Event.objects.for_company(company).filter(subject=subject).order_by("happened_at", "id")
    with tempfile.TemporaryFile() as rows:
        rows.write(b"[")
        for event in _chunked(events):
            path = f"snapshots/{event.pk}.jpg"
            stored = bool(event.snapshot) and _copy_file(archive, event.snapshot.name, path)
            snapshots += stored
            row = {
                "id": event.pk,
                "kind": event.kind,
                "happened_at": _time(event.happened_at, zone),
                "name": event.subject_name,
                "job_number": event.subject_job_number,
                "device": event.device_name,
                "direction": event.direction,
                "confidence": event.confidence,
                "snapshot": path if stored else None,
                "corrected_at": _time(event.corrected_at, zone),
            }
            rows.write((b"," if count else b"") + b"\n" + json.dumps(row, ensure_ascii=False).encode())
            count += 1
        rows.write(b"\n]\n")
        rows.seek(0)
        with archive.open("events.json", "w") as target:
            shutil.copyfileobj(rows, target, 64 * 1024)
    return count, snapshots


def _chunked(events) -> Iterator[Event]:
    """The events in pages of EVENTS_CHUNK, each read after the last one's snapshots are
    copied: memory holds one page, and no database cursor stays open during file reads."""
    last = None
    while True:
        page = (
            events
            if last is None
            else events.filter(Q(happened_at__gt=last.happened_at) | Q(happened_at=last.happened_at, id__gt=last.pk))
        )
        batch = list(page[:EVENTS_CHUNK])
        if not batch:
            return
        yield from batch
        last = batch[-1]


def _attendance(archive: zipfile.ZipFile, company: Company, subject: Subject) -> int:
    """Their attendance per local day, in ranges of at most a year (the report's limit)."""
    zone = company.zone
    span = (
        Event.objects.for_company(company)
        .filter(subject=subject, kind=EventKind.RECOGNIZED)
        .aggregate(first=Min("happened_at"), last=Max("happened_at"))
    )
    rows = []
    if span["first"] is not None:
        start, end = span["first"].astimezone(zone).date(), span["last"].astimezone(zone).date()
        while start <= end:
            stop = min(end, start + datetime.timedelta(days=MAX_DAYS - 1))
            for day in attendance_days(company=company, date_from=start, date_to=stop, job_number=subject.job_number):
                rows.append(
                    {
                        "date": day.date.isoformat(),
                        "first_in": _time(day.first_in, zone),
                        "last_out": _time(day.last_out, zone),
                        "passes": day.passes,
                        "late": day.late,
                        "left_early": day.left_early,
                    }
                )
            start = stop + datetime.timedelta(days=1)
    archive.writestr("attendance.json", _json(rows))
    return len(rows)
