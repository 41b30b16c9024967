"""Writes on departments, subjects and photos. Admin, API, import, jobs and commands all
come here, so the rules (uniqueness per company, generated job numbers, photo limits), the
audit log and the announcements of `subjects.domain_signals` live in one place: every
service announces what it changed, inside its transaction."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

import faces
from accounts.jobs import job_start
from accounts.models import Company, Job, User, job_kind_register
from accounts.services import (
    audit_record,
    audit_record_many,
    retention_policy_current,
    retention_policy_language_check,
)
from kangaroo import errors, metrics
from kangaroo.errors import KangarooError
from kangaroo.images import NormalisedImage, jpeg_of, normalise_photo, open_photo, photo_invalid
from kangaroo.jobs import DEFAULT_TIMEOUT
from kangaroo.media import MediaKind, media_read, media_save, media_written
from subjects import face_index, gallery
from subjects.domain_signals import (
    CREATED,
    DELETED,
    UPDATED,
    announce_consent_withdrawn,
    announce_departments,
    announce_photos_added,
    announce_photos_enrolled,
    announce_photos_removed,
    announce_subjects,
)
from subjects.gallery import gallery_append
from subjects.models import (
    IN_FORCE,
    MAX_PHOTOS_PER_SUBJECT,
    Consent,
    ConsentMethod,
    Department,
    GalleryOp,
    Photo,
    PhotoStatus,
    Subject,
    SubjectType,
)
from subjects.selectors import photos_allowed_for

# --- Departments ------------------------------------------------------------------------------


def _check_department_name(*, company: Company, name: str, exclude_pk=None) -> str:
    name = name.strip()
    taken = Department.objects.for_company(company).filter(name__iexact=name).exclude(pk=exclude_pk)
    if taken.exists():
        raise _field_error(errors.DEPARTMENT_NAME_TAKEN, "name")
    return name


@transaction.atomic
def department_create(*, company: Company, actor: User | None, name: str) -> Department:
    name = _check_department_name(company=company, name=name)
    department = Department(company=company, name=name)
    with _keys_written(company=company, departments=[department]):
        department.save(force_insert=True)
    audit_record(company=company, actor=actor, action="department.create", obj=department)
    announce_departments(company=company, action=CREATED, ids=[department.pk])
    return department


@transaction.atomic
def department_update(*, company: Company, actor: User | None, department: Department, name: str) -> Department:
    department = Department.objects.for_company(company).select_for_update().get(pk=department.pk)
    name = _check_department_name(company=company, name=name, exclude_pk=department.pk)
    if name != department.name:
        changes = {"name": [department.name, name]}
        department.name = name
        with _keys_written(company=company, departments=[department]):
            department.save(update_fields=["name"])
        audit_record(company=company, actor=actor, action="department.update", obj=department, changes=changes)
        announce_departments(company=company, action=UPDATED, ids=[department.pk])
    return department


@transaction.atomic
def department_delete(*, company: Company, actor: User | None, department: Department) -> None:
    department = Department.objects.for_company(company).get(pk=department.pk)
    members = list(Subject.objects.for_company(company).filter(department=department).values_list("pk", flat=True))
    audit_record(company=company, actor=actor, action="department.delete", obj=department)
    pk = department.pk
    department.delete()  # its subjects keep their place, without a department
    announce_departments(company=company, action=DELETED, ids=[pk])
    announce_subjects(company=company, action=UPDATED, ids=members, fields=["department"])


# --- Subjects ---------------------------------------------------------------------------------

SUBJECT_FIELDS = (
    "subject_type", "name", "english_name", "job_number", "email", "phone", "department", "title", "remark",
    "start_date", "visit_start", "visit_end", "host", "purpose", "archived",
)  # fmt: skip
JOB_NUMBER_PREFIX = {SubjectType.VISITOR: "V", SubjectType.VIP: "VIP"}


def _field_error(error: errors.ErrorCode, field: str, message=None) -> KangarooError:
    message = message or error.message
    return KangarooError(error, message, fields={field: [str(message)]})


class DatabaseClaims:
    """Who holds a job number or an e-mail in the company, asked of the database."""

    def __init__(self, company: Company):
        self.subjects = Subject.objects.for_company(company)

    def job_number_owner(self, job_number: str):
        return self.subjects.filter(job_number=job_number).values_list("pk", flat=True).first()

    def email_owner(self, email: str):
        return self.subjects.filter(email__iexact=email).values_list("pk", flat=True).first()


class SubjectBatchCheck:
    """The rules of `subject_check` for thousands of rows at once (imports): the company's
    job numbers and e-mails are loaded once, and each checked row claims its own, so a
    duplicate inside the file is caught like one against the database."""

    def __init__(self, *, company: Company, subjects: Iterable[Subject]):
        self.company = company
        self.jobs: dict[str, object] = {}
        self.emails: dict[str, object] = {}
        for subject in subjects:
            self.jobs[subject.job_number] = subject.pk
            if subject.email:
                self.emails[subject.email.lower()] = subject.pk
        self.seen_in_file: set[str] = set()

    def job_number_owner(self, job_number: str):
        return self.jobs.get(job_number)

    def email_owner(self, email: str):
        return self.emails.get(email.lower())

    def check_and_claim(self, subject: Subject) -> None:
        """Validate `subject` (unsaved changes included), normalise it in place, claim its keys."""
        key = subject.pk or ("row", id(subject))
        job_number = (subject.job_number or "").strip()
        if job_number in self.seen_in_file:
            raise _field_error(
                errors.SUBJECT_JOB_NUMBER_TAKEN, "job_number", _("This job number appears twice in the file.")
            )
        data = {field: getattr(subject, field) for field in SUBJECT_FIELDS}
        data = subject_check(company=self.company, data=data, instance=subject if subject.pk else None, claims=self)
        for field, value in data.items():
            setattr(subject, field, value)
        self.seen_in_file.add(subject.job_number)
        self.jobs[subject.job_number] = key
        if subject.email:
            self.emails[subject.email.lower()] = key


def generate_job_number(*, subject_type: str, is_taken) -> str:
    """A job number for a visitor or VIP who has none, unique within the company."""
    prefix = JOB_NUMBER_PREFIX.get(subject_type, "S")
    while True:
        candidate = f"{prefix}-{secrets.token_hex(4).upper()}"
        if is_taken(candidate) is None:
            return candidate


def subject_normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Trim the text fields the way every entry path (form, API, import) must."""
    for field in ("name", "job_number", "email", "phone", "title", "purpose"):
        if isinstance(data.get(field), str):
            data[field] = data[field].strip()
    return data


def subject_check(
    *, company: Company, data: dict[str, Any], instance: Subject | None = None, claims=None
) -> dict[str, Any]:
    """Validate a subject's fields against the company's rules; returns them normalised.

    `data` holds the final values of every field (for an update: current values overlaid
    with the changes). `claims` answers who holds a job number or e-mail (the database by
    default). Raises KangarooError naming the field that is wrong.
    """
    claims = claims or DatabaseClaims(company)
    me = instance.pk if instance is not None else None
    data = subject_normalise(dict(data))
    if not data.get("name"):
        raise _field_error(errors.VALIDATION_ERROR, "name", _("A name is required."))
    if data.get("subject_type") not in SubjectType.values:
        raise _field_error(errors.VALIDATION_ERROR, "subject_type", _("Unknown type."))
    if data.get("email"):
        try:
            validate_email(data["email"])
        except ValidationError:
            raise _field_error(errors.VALIDATION_ERROR, "email", _("Enter a valid e-mail address.")) from None
    if not data.get("job_number"):
        if data["subject_type"] == SubjectType.EMPLOYEE:
            raise _field_error(errors.SUBJECT_JOB_NUMBER_REQUIRED, "job_number")
        data["job_number"] = generate_job_number(subject_type=data["subject_type"], is_taken=claims.job_number_owner)
    elif claims.job_number_owner(data["job_number"]) not in (None, me):
        raise _field_error(errors.SUBJECT_JOB_NUMBER_TAKEN, "job_number")
    if data.get("email") and claims.email_owner(data["email"]) not in (None, me):
        raise _field_error(errors.SUBJECT_EMAIL_TAKEN, "email")
    start, end = data.get("visit_start"), data.get("visit_end")
    if start and end and end < start:
        raise _field_error(errors.SUBJECT_VISIT_WINDOW_INVALID, "visit_end")
    host = data.get("host")
    if host is not None and host.company_id != company.pk:
        raise errors.related_not_found("host")
    if host is not None and (host.subject_type != SubjectType.EMPLOYEE or (me is not None and host.pk == me)):
        raise _field_error(errors.SUBJECT_HOST_INVALID, "host")
    department = data.get("department")
    if department is not None and department.company_id != company.pk:
        raise errors.related_not_found("department")
    return data


# What `subject_check` answers for a job number or e-mail another subject holds: the unique
# indexes decide the same, for the writes that race past the check (as they do for a
# department name, which `_check_department_name` answers with `department_name_taken`).
KEYS_TAKEN = (errors.SUBJECT_JOB_NUMBER_TAKEN, errors.SUBJECT_EMAIL_TAKEN)
KEY_LOOKUP_CHUNK = 500  # keys per query when a refused write is explained (SQLite caps parameters)


@contextmanager
def _keys_written(
    *, company: Company, subjects: Sequence[Subject] = (), departments: Sequence[Department] = ()
) -> Iterator[None]:
    """Write `subjects` (new or changed, checked by `subject_check`) and `departments` (new
    or renamed, checked by `_check_department_name`) inside this block.

    The check reads who holds a job number, e-mail or department name before the write, so
    a concurrent request can take one in between: the unique index then refuses the write (the second
    INSERT waits for the first to commit, then fails). The block is a savepoint, so the
    caller's transaction goes on, and nothing written in it stays (rows, audit entries,
    announcements: Django drops the `on_commit` callbacks of a rolled-back savepoint). A key
    that a subject not among `subjects` (a name that a department not among `departments`)
    holds now answers the coded error the check gives; any other IntegrityError is raised
    as it is.
    """
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        taken = _department_name_taken(company=company, departments=departments) or _key_taken(
            company=company, subjects=subjects
        )
        if taken is None:
            raise
        raise taken from None


def _key_taken(*, company: Company, subjects: Sequence[Subject]) -> KangarooError | None:
    """`subject_check`'s error for the first kind of key of `subjects` that another subject
    of the company holds, as committed now (READ COMMITTED: a new statement sees the row
    that won the race); None if none is."""
    ours = {subject.pk for subject in subjects if subject.pk is not None}
    rows = Subject.objects.for_company(company)
    if _held_by_others(rows, "job_number", [subject.job_number for subject in subjects], ours):
        return _field_error(errors.SUBJECT_JOB_NUMBER_TAKEN, "job_number")
    by_email = rows.exclude(email="").annotate(email_lower=Lower("email"))  # as the unique index has them
    if _held_by_others(by_email, "email_lower", [s.email.lower() for s in subjects if s.email], ours):
        return _field_error(errors.SUBJECT_EMAIL_TAKEN, "email")
    return None


def _department_name_taken(*, company: Company, departments: Sequence[Department]) -> KangarooError | None:
    """`_check_department_name`'s error if another department of the company holds the name
    of one of `departments` (case aside, as the unique constraint has them), as committed now."""
    ours = {department.pk for department in departments if department.pk is not None}
    rows = Department.objects.for_company(company).annotate(name_lower=Lower("name"))
    if _held_by_others(rows, "name_lower", [department.name.lower() for department in departments], ours):
        return _field_error(errors.DEPARTMENT_NAME_TAKEN, "name")
    return None


def _held_by_others(rows, field: str, values: Iterable[str], ours: set[int]) -> bool:
    """Whether a row of `rows` that is not one of `ours` has one of `values` in `field`,
    asked KEY_LOOKUP_CHUNK values at a time."""
    values = sorted(set(values))
    for start in range(0, len(values), KEY_LOOKUP_CHUNK):
        holders = rows.filter(**{f"{field}__in": values[start : start + KEY_LOOKUP_CHUNK]}).values_list("pk", flat=True)
        if not ours.issuperset(holders):
            return True
    return False


# Two transactions that each write several rows wait on each other's rows (an update) and
# on each other's uncommitted keys (an insert whose job number, e-mail or department name
# the other has just written): if each wrote them in its own order, each could hold a row
# the other waits for, and PostgreSQL would end that deadlock by failing one of them (a 503
# for a batch that is merely second). So every write of several subjects goes in one order:
# the existing rows are locked first, by id (as `subjects_upsert` reads them and
# `photos_add_bulk` locks them); then come new departments by name, the changed subjects,
# the new subjects, each by job number, e-mail and id. The later of two batches then waits
# for the first to commit, and its write is refused by the unique index or goes ahead, as
# if it had come after. (Two batches giving one e-mail to different subjects, one as a
# change and the other to a new subject, may still meet in opposite orders; one of them
# is refused either way.)
SUBJECT_LOCK_CHUNK = 5000  # ids per locking query (PostgreSQL takes up to 65,535 parameters)


def _in_write_order(subjects: Iterable[Subject]) -> list[Subject]:
    return sorted(subjects, key=lambda subject: (subject.job_number, subject.email.lower(), subject.pk or 0))


def _departments_in_write_order(departments: Iterable[Department]) -> list[Department]:
    return sorted(departments, key=lambda department: (department.name.lower(), department.pk or 0))


def _lock_in_id_order(*, company: Company, subjects: Iterable[Subject]) -> None:
    """Lock the rows of `subjects` (saved, of `company`), by id. Where writes take the whole
    database (SQLite) there is no row lock to take, nor an order to keep."""
    if not connection.features.has_select_for_update:
        return
    ids = sorted({subject.pk for subject in subjects})
    rows = Subject.objects.for_company(company).select_for_update().order_by("pk")
    for start in range(0, len(ids), SUBJECT_LOCK_CHUNK):
        list(rows.filter(pk__in=ids[start : start + SUBJECT_LOCK_CHUNK]).values_list("pk", flat=True))


@dataclass(frozen=True)
class ConsentGiven:
    """A consent recorded together with a new subject (see `consent_record`)."""

    method: str
    policy_version: int
    given_at: datetime | None = None
    evidence: Any = None
    policy_language: str | None = None


@transaction.atomic
def subject_create(
    *, company: Company, actor: User | None, photos: Iterable = (), consent: ConsentGiven | None = None, **data: Any
) -> Subject:
    """Create a subject, with up to 5 photos uploaded in the same request, and the consent
    that lets them be stored (required with photos when the company requires consent:
    `consent_required` otherwise).

    The photos are validated before anything is written, so a bad photo leaves neither a
    subject nor a file behind. A job number or e-mail another request takes at the same
    moment answers `subject_job_number_taken` or `subject_email_taken`, as the check does.
    """
    unknown = set(data) - set(SUBJECT_FIELDS)
    if unknown:
        raise TypeError(f"subject_create does not take {sorted(unknown)}")
    data.setdefault("subject_type", SubjectType.EMPLOYEE)
    data = subject_check(company=company, data=data)
    normalised = [normalise_photo(upload) for upload in photos]
    if len(normalised) > MAX_PHOTOS_PER_SUBJECT:
        raise _field_error(errors.SUBJECT_PHOTO_LIMIT, "photos")
    if len({image.sha256 for image in normalised}) < len(normalised):
        raise _field_error(errors.PHOTO_DUPLICATE, "photos")
    if normalised and consent is None and company.consent_required:
        raise _field_error(errors.CONSENT_REQUIRED, "photos")
    subject = Subject(company=company, **data)
    with _keys_written(company=company, subjects=[subject]):
        subject.save(force_insert=True)
    with media_written() as written:
        if consent is not None:
            consent_record(
                company=company,
                actor=actor,
                subject=subject,
                method=consent.method,
                policy_version=consent.policy_version,
                policy_language=consent.policy_language,
                given_at=consent.given_at,
                evidence=consent.evidence,
                written=written,
            )
        photos = [_photo_store(company=company, subject=subject, image=image, written=written) for image in normalised]
        audit_record(company=company, actor=actor, action="subject.create", obj=subject, changes=_audit_values(data))
        announce_subjects(company=company, action=CREATED, ids=[subject.pk])
        announce_photos_added(company=company, photos=[(photo.pk, subject.pk) for photo in photos])
    return subject


def _audit_values(data: dict[str, Any]) -> dict[str, Any]:
    return {key: (str(value) if value is not None else None) for key, value in data.items()}


def _audit_changes(changed: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """{field: [old, new]} as the audit log keeps it."""
    return {field: list(_audit_values({"old": old, "new": new}).values()) for field, (old, new) in changed.items()}


@transaction.atomic
def subject_update(*, company: Company, actor: User | None, subject: Subject, **changes: Any) -> Subject:
    unknown = set(changes) - set(SUBJECT_FIELDS)
    if unknown:
        raise TypeError(f"subject_update does not take {sorted(unknown)}")
    subject = Subject.objects.for_company(company).select_for_update().get(pk=subject.pk)
    current = {field: getattr(subject, field) for field in SUBJECT_FIELDS}
    data = subject_check(company=company, data=current | changes, instance=subject)
    changed = {field: [current[field], data[field]] for field in SUBJECT_FIELDS if current[field] != data[field]}
    if not changed:
        return subject
    for field in changed:
        setattr(subject, field, data[field])
    # Only a new job number or e-mail can meet another subject's in the unique indexes.
    keys_changed = {"job_number", "email"}.intersection(changed)
    with _keys_written(company=company, subjects=[subject]) if keys_changed else nullcontext():
        subject.save(update_fields=[*changed, "updated_at"])
    audit_record(company=company, actor=actor, action="subject.update", obj=subject, changes=_audit_changes(changed))
    announce_subjects(company=company, action=UPDATED, ids=[subject.pk], fields=list(changed))
    return subject


def subject_archive(*, company: Company, actor: User | None, subject: Subject, archived: bool = True) -> Subject:
    return subject_update(company=company, actor=actor, subject=subject, archived=archived)


@transaction.atomic
def subject_delete(*, company: Company, actor: User | None, subject: Subject) -> None:
    """Delete a subject with their photos and their events' snapshots (the events stay, without
    the snapshot); the files go once the deletion is committed."""
    subject = Subject.objects.for_company(company).get(pk=subject.pk)
    photos = list(Photo.objects.for_company(company).filter(subject=subject).values_list("pk", "subject_id"))
    guests = list(Subject.objects.for_company(company).filter(host=subject).values_list("pk", flat=True))
    audit_record(company=company, actor=actor, action="subject.delete", obj=subject)
    pk = subject.pk
    subject.delete()  # photos cascade; signal handlers schedule the photo and snapshot files
    announce_photos_removed(company=company, photos=photos)
    announce_subjects(company=company, action=DELETED, ids=[pk])
    announce_subjects(company=company, action=UPDATED, ids=guests, fields=["host"])  # host set to NULL


# --- Import -----------------------------------------------------------------------------------


@transaction.atomic
def subject_import_apply(
    *,
    company: Company,
    actor: User | None,
    departments: Iterable[Department] = (),
    creates: Iterable[Subject] = (),
    updates: Iterable[tuple[Subject, dict[str, Sequence[Any]]]] = (),
    skipped: int = 0,
    file_name: str = "",
) -> None:
    """Write an import file's rows, already parsed and checked (`SubjectResource` runs
    `SubjectBatchCheck` on every row), in bulk, audited and announced like single changes.

    `departments` are new, unsaved departments the rows name; `creates` new, unsaved
    subjects; `updates` pairs of a subject of this company, loaded through `for_company`
    and holding its new values, with its changes as {field: (old, new)}. Every row is
    audited as `department.create`, `subject.create` or `subject.update`, and the file as
    one `subject.import`; each kind of change is announced once with all its ids.
    """
    departments, creates, updates = list(departments), list(creates), list(updates)
    changed = [subject for subject, _ in updates]
    if any(row.company_id != company.pk for row in (*departments, *creates, *changed)):
        raise ValueError("subject_import_apply writes rows of `company` only")
    # Read before the rows are linked to their new departments: setting `department_id`
    # drops the department a row holds, and reading it again would cost a query per row.
    created_values = [_audit_values({f: getattr(subject, f) for f in SUBJECT_FIELDS}) for subject in creates]
    now = timezone.now()
    by_changes: dict[tuple[str, ...], list[Subject]] = defaultdict(list)
    for subject, changes in updates:
        subject.updated_at = now
        by_changes[tuple(changes)].append(subject)
    # The file was checked against the subjects and departments as they were when it was read:
    # a job number, e-mail or new department's name taken since then answers its coded error,
    # and nothing is imported.
    # In the one order of every batch write (see `_in_write_order`): the rows to change are
    # locked before anything is written, as their changes go out grouped by changed fields.
    _lock_in_id_order(company=company, subjects=changed)
    new_departments, new_subjects = _departments_in_write_order(departments), _in_write_order(creates)
    with _keys_written(company=company, subjects=[*creates, *changed], departments=departments):
        Department.objects.bulk_create(new_departments, batch_size=2000)  # tenant: checked to be `company`'s above
        _link_new_departments([*creates, *changed])
        _update_in_place(by_changes)
        Subject.objects.bulk_create(new_subjects, batch_size=2000)  # tenant: checked to be `company`'s above
    audit_record_many(
        company=company,
        actor=actor,
        entries=[
            *(("department.create", department, None) for department in departments),
            *(("subject.create", subject, values) for subject, values in zip(creates, created_values, strict=True)),
            *(("subject.update", subject, _audit_changes(changes)) for subject, changes in updates),
        ],
    )
    audit_record(
        company=company,
        actor=actor,
        action="subject.import",
        changes={"new": len(creates), "update": len(updates), "skip": skipped, "file": file_name},
    )
    announce_departments(company=company, action=CREATED, ids=[department.pk for department in departments])
    announce_subjects(company=company, action=CREATED, ids=[subject.pk for subject in creates])
    for names, subjects in by_changes.items():
        announce_subjects(company=company, action=UPDATED, ids=[subject.pk for subject in subjects], fields=names)


def _link_new_departments(subjects: list[Subject]) -> None:
    """Point rows at the departments created a moment ago: a row took its new department
    before it had a primary key (the raw UPDATE below reads `department_id`)."""
    field = Subject._meta.get_field("department")
    for subject in subjects:
        if subject.department_id is None and field.is_cached(subject):
            department = field.get_cached_value(subject)
            if department is not None:
                subject.department_id = department.pk


def _update_in_place(by_changes: dict[tuple[str, ...], list[Subject]]) -> None:
    """Save changed subjects (loaded through `for_company`, locked by the caller): one
    parametrised UPDATE per set of changed fields, by primary key, sent with executemany,
    each in the order of `_in_write_order`.

    Django's bulk_update builds a CASE with one WHEN per row for every field: 11 s for 10,000
    changed rows on the benchmark machine, against under 2 s for this. The WHERE names only
    the primary key: with `company_id` in it too, PostgreSQL may pick the company index on
    the statistics of a company imported a minute ago and scan all its rows per update."""
    quote = connection.ops.quote_name
    meta = Subject._meta
    with connection.cursor() as cursor:
        for names, subjects in sorted(by_changes.items()):
            columns = [meta.get_field(name) for name in (*names, "updated_at")]
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
            statement = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 (names from the model)
            cursor.executemany(
                statement,
                [
                    [field.get_db_prep_save(getattr(subject, field.attname), connection) for field in columns]
                    + [subject.pk]
                    for subject in _in_write_order(subjects)
                ],
            )


# --- Photos -----------------------------------------------------------------------------------


def _photo_store(*, company: Company, subject: Subject, image: NormalisedImage, written: list[str]) -> Photo:
    photo = _photo_row(company=company, subject=subject, image=image, written=written)
    photo.save(force_insert=True)
    return photo


def _photo_row(*, company: Company, subject: Subject, image: NormalisedImage, written: list[str]) -> Photo:
    """An unsaved photo row whose files are stored already (named in `written`)."""
    return Photo(
        company=company,
        subject=subject,
        image=media_save(kind=MediaKind.PHOTO, company_id=company.pk, content=image.image, written=written),
        thumbnail=media_save(kind=MediaKind.THUMBNAIL, company_id=company.pk, content=image.thumbnail, written=written),
        width=image.width,
        height=image.height,
        sha256=image.sha256,
    )


def photo_add(*, company: Company, actor: User | None, subject: Subject, upload) -> Photo:
    """Add one uploaded photo to `subject`: `photos_add_bulk` with one photo, its refusal
    raised (so one photo and a bulk upload follow the same rules)."""
    if upload is None:
        raise photo_invalid("missing", _("Choose a photo to upload."))
    image = normalise_photo(upload)  # before any lock or write: a bad file costs nothing
    [result] = photos_add_bulk(company=company, actor=actor, photos=[(subject.pk, image)])
    if isinstance(result, KangarooError):
        raise result
    return result


@transaction.atomic
def photos_add_bulk(
    *,
    company: Company,
    actor: User | None,
    photos: Sequence[tuple[int, NormalisedImage]],
    refuse_archived: bool = False,
    written: list[str] | None = None,
) -> list[Photo | KangarooError]:
    """Store photos: (subject id, normalised image) pairs in, each one's stored photo or the
    coded error that kept it out, in order. `photo_add` is this with one photo.

    The rules, checked together: a subject of another company or one gone meanwhile is
    `not_found`; with `refuse_archived` (a bulk upload), an archived subject
    `subject_archived`; a subject without a consent in force, when the company requires
    consent, `consent_required` (see `consent_check`); a picture the subject already has (or had earlier in `photos`)
    `photo_duplicate`; the sixth photo of a subject `subject_photo_limit`. The subjects are
    locked, the rows and files written, audited and announced at once (one `photo_added` for
    all), in one transaction: if anything fails, no row and no file is left. A caller whose
    own transaction goes on after this passes its `media_written` list as `written`, so the
    files go if the caller fails later.
    """
    ids = sorted({subject_id for subject_id, _ in photos})
    subjects = {
        subject.pk: subject
        for subject in Subject.objects.for_company(company).select_for_update().filter(pk__in=ids).order_by("pk")
    }
    existing = Photo.objects.for_company(company).filter(subject_id__in=list(subjects))
    counts: dict[int, int] = defaultdict(int)
    seen: set[tuple[int, str]] = set()
    for subject_id, sha256 in existing.values_list("subject_id", "sha256"):
        counts[subject_id] += 1
        seen.add((subject_id, sha256))
    # Without a consent in force, no photo of a subject is stored (when the company requires it).
    consented = photos_allowed_for(company=company, subject_ids=list(subjects))
    results: list[Photo | KangarooError] = []
    rows: list[Photo] = []
    with media_written() as files:
        for subject_id, image in photos:
            subject = subjects.get(subject_id)
            if subject is None:
                results.append(KangarooError(errors.NOT_FOUND))
            elif refuse_archived and subject.archived:
                results.append(KangarooError(errors.SUBJECT_ARCHIVED))
            elif subject_id not in consented:
                results.append(_field_error(errors.CONSENT_REQUIRED, "image"))
            # The same picture twice adds nothing to recognition and hides that a second one is missing.
            elif (subject_id, image.sha256) in seen:
                results.append(_field_error(errors.PHOTO_DUPLICATE, "image"))
            elif counts[subject_id] >= MAX_PHOTOS_PER_SUBJECT:
                results.append(_field_error(errors.SUBJECT_PHOTO_LIMIT, "image"))
            else:
                counts[subject_id] += 1
                seen.add((subject_id, image.sha256))
                row = _photo_row(company=company, subject=subject, image=image, written=files)
                rows.append(row)
                results.append(row)
        Photo.objects.bulk_create(rows, batch_size=500)  # tenant: rows of `company`'s subjects, built above
        audit_record_many(
            company=company,
            actor=actor,
            entries=[("photo.add", photo, {"subject": photo.subject_id}) for photo in rows],
        )
        announce_photos_added(company=company, photos=[(photo.pk, photo.subject_id) for photo in rows])
    if written is not None:
        written.extend(files)
    return results


@transaction.atomic
def photo_delete(*, company: Company, actor: User | None, photo: Photo) -> None:
    photo = Photo.objects.for_company(company).get(pk=photo.pk)
    audit_record(company=company, actor=actor, action="photo.delete", obj=photo, changes={"subject": photo.subject_id})
    removed = (photo.pk, photo.subject_id)
    photo.delete()  # the post_delete handler removes the files after commit
    announce_photos_removed(company=company, photos=[removed])


# --- Enrolment (the face engine) --------------------------------------------------------------

ENROLMENT_FIELDS = [
    "status", "reason", "face_box", "quality", "embedding", "embedding_model", "enrolled_at",
    "duplicate_of", "duplicate_distance",
]  # fmt: skip


def photo_enrol(*, company: Company, photo_id: int) -> Photo | None:
    """Run the face engine on a stored photo and record the outcome: `ok` with the face box,
    quality and embedding (flagged when the face matches another subject of the company),
    or `rejected` with the reason; announced with `photo_enrolled`.

    The engine runs outside any transaction (it takes a tenth of a second or more); the
    outcome is written only if the photo is still there, so a photo deleted meanwhile is
    left alone. Returns the photo, or None if it is gone. A file the storage cannot give
    raises (OSError), so the job retries.
    """
    photo = Photo.objects.for_company(company).filter(pk=photo_id).first()
    if photo is None:
        return None
    try:
        image = faces.load_image(media_read(photo.image.name))
    except ValueError:  # stored photos are normalised JPEGs: only a damaged file lands here
        image = None
    enrolment = faces.enrol_face(image, face_index.face_rules()) if image is not None else None
    duplicate = None
    if enrolment is not None and enrolment.ok:
        duplicate = face_index.possible_duplicate(company, photo.subject_id, enrolment.face.embedding)
    with transaction.atomic():
        photo = Photo.objects.for_company(company).select_for_update().filter(pk=photo_id).first()
        if photo is None:
            return None
        _record_enrolment(photo, enrolment, duplicate)
        photo.save(update_fields=ENROLMENT_FIELDS)
        announce_photos_enrolled(company=company, photos=[(photo.pk, photo.subject_id)])
        outcome = metrics.ENROLMENTS.labels(outcome=photo.status, reason=photo.reason)
        transaction.on_commit(outcome.inc, robust=True)
    return photo


def _record_enrolment(photo: Photo, enrolment, duplicate) -> None:
    face = enrolment.face if enrolment is not None else None
    photo.enrolled_at = timezone.now()
    photo.face_box = face.box_dict() if face is not None else None
    photo.quality = face.quality if face is not None else None
    photo.duplicate_of_id = duplicate.subject_id if duplicate is not None else None
    photo.duplicate_distance = round(duplicate.distance, 4) if duplicate is not None else None
    if enrolment is not None and enrolment.ok:
        photo.status, photo.reason = PhotoStatus.OK, ""
        photo.embedding = faces.embedding_to_bytes(face.embedding)
        photo.embedding_model = faces.MODEL
    else:
        photo.status = PhotoStatus.REJECTED
        photo.reason = enrolment.reason if enrolment is not None else errors.PHOTO_INVALID.code
        photo.embedding, photo.embedding_model = None, ""


REENROL_KIND = job_kind_register("photos.reenrol", gettext_lazy("Re-enrolment of every photo"))


def photos_reenrol_start(*, company: Company, actor: User | None) -> Job:
    """Queue the re-enrolment of every photo of the company (after a threshold or model
    change), recorded as a job with progress. One at a time per company: while one is
    unfinished, another raises JobAlreadyQueued (409 `job_already_queued`)."""
    total = Photo.objects.for_company(company).count()
    return job_start(
        company=company,
        actor=actor,
        kind=REENROL_KIND,
        key=REENROL_KIND,
        func="subjects.jobs.photos_reenrol",
        args=[company.pk],
        total=total,
        # A photo takes about a fifth of a second on one core; leave ample room.
        timeout=max(DEFAULT_TIMEOUT, 2 * total),
    )


# --- Sync from an HR system -------------------------------------------------------------------


@dataclass(frozen=True)
class Upserted:
    """What became of one item of `subjects_upsert`."""

    status: str  # "created", "updated", "unchanged" or "error"
    subject: Subject | None = None
    error: KangarooError | None = None


class _UpsertClaims:
    """Who holds a job number or an e-mail while an upsert batch is applied in memory: the
    batch's subjects and every holder of an e-mail it names are read in one query each, and
    each applied item moves its subject's claims, so the items see one another as if they
    were written one by one. `me` is the subject being checked (a new one has no id yet)."""

    def __init__(self, *, company: Company, numbers: Iterable[str], subjects: Iterable[Subject], emails: Iterable[str]):
        self.database = DatabaseClaims(company)
        self.jobs: dict[str, Subject] = {}
        self.jobs_read = set(numbers)
        self.emails: dict[str, Subject | int] = {}
        self.emails_read = {email.lower() for email in emails if email}
        holders = (
            Subject.objects.for_company(company)
            .exclude(email="")  # the unique index's condition, so the lookup fits it
            .annotate(email_lower=Lower("email"))
            .filter(email_lower__in=self.emails_read)
            .values_list("email_lower", "pk")
        )
        self.emails.update(holders)
        for subject in subjects:
            self.claim(subject)
        self.me: Subject | None = None

    def claim(self, subject: Subject, *, released_email: str = "") -> None:
        self.jobs[subject.job_number] = subject
        if released_email and self._is_me(self.emails.get(released_email.lower()), subject):
            del self.emails[released_email.lower()]
        if subject.email:
            self.emails[subject.email.lower()] = subject
            self.emails_read.add(subject.email.lower())

    @staticmethod
    def _is_me(holder, subject: Subject) -> bool:
        return holder is subject or (subject.pk is not None and holder == subject.pk)

    def _answer(self, holder):
        if holder is None or (self.me is not None and self._is_me(holder, self.me)):
            return None
        return (holder.pk or "new") if isinstance(holder, Subject) else holder

    def job_number_owner(self, job_number: str):
        if job_number in self.jobs_read or job_number in self.jobs:
            return self._answer(self.jobs.get(job_number))
        return self.database.job_number_owner(job_number)  # a generated one, for a visitor without

    def email_owner(self, email: str):
        if email.lower() in self.emails_read:
            return self._answer(self.emails.get(email.lower()))
        return self.database.email_owner(email)


@transaction.atomic
def subjects_upsert(*, company: Company, actor: User | None, items: Sequence[dict[str, Any]]) -> list[Upserted]:
    """Create the subject with each item's `job_number`, or change the one that has it; one
    `Upserted` per item, in order. A subject listed again is restored if it was archived
    (unless `archived` is given), so an employee who comes back is back at the doors.

    Each item is checked by `subject_check` as if the items before it were written; one that
    fails is answered with its error and changes nothing, the others are written. The batch
    costs the same few queries however many items it has: the subjects are read (and locked)
    at once, created and updated in bulk, audited in bulk (`subject.create`,
    `subject.update` per item, as single changes are), and each kind of change announced once.

    Two batches at once that create the same job number (or give out the same e-mail) are
    answered as if one came after the other: the later one's write is refused by the unique
    index once the first commits, its attempt is rolled back whole, and it is worked out
    once more against the subjects as they are now (`updated` or `unchanged`, or the item's
    coded error such as `subject_email_taken`).
    """
    for item in items:
        unknown = set(item) - set(SUBJECT_FIELDS)
        if unknown:
            raise TypeError(f"subjects_upsert does not take {sorted(unknown)}")
    try:
        return _upsert_batch(company=company, actor=actor, items=items)
    except KangarooError as error:
        if error.error not in KEYS_TAKEN:
            raise
    # Another batch created a job number (or took an e-mail) of this one after it was read,
    # and has committed: read again, this batch sees that subject and answers as if it had
    # come after. A third request taking a key in between again answers its coded error.
    return _upsert_batch(company=company, actor=actor, items=items)


def _upsert_batch(*, company: Company, actor: User | None, items: Sequence[dict[str, Any]]) -> list[Upserted]:
    """One attempt at `subjects_upsert`: its writes, audit entries and announcements all
    happen in one savepoint, so an attempt refused by the unique indexes leaves nothing."""
    numbers = [(item.get("job_number") or "").strip() for item in items]
    # In id order, so two batches naming the same subjects lock them in the same order
    # (`_in_write_order` tells the order of what comes after).
    found = (
        Subject.objects.for_company(company)
        .select_for_update(of=("self",))
        .select_related("department", "host")
        .filter(job_number__in=set(numbers))
        .order_by("pk")
    )
    by_number = {subject.job_number: subject for subject in found}
    emails = [subject_normalise({"email": item.get("email")})["email"] for item in items]
    claims = _UpsertClaims(
        company=company, numbers=numbers, subjects=by_number.values(), emails=[email for email in emails if email]
    )
    results: list[Upserted] = []
    created: list[Subject] = []
    changed: dict[int, tuple[Subject, set[str]]] = {}  # by id(): a new subject has no pk to hash
    audit: list[tuple[str, Subject, dict[str, Any]]] = []
    for number, item in zip(numbers, items, strict=True):
        data = {key: value for key, value in item.items() if key != "job_number"}
        data.setdefault("archived", False)
        subject = by_number.get(number) if number else None
        try:
            if subject is None:
                subject, values = _upsert_new(company=company, claims=claims, job_number=number, data=data)
                created.append(subject)
                audit.append(("subject.create", subject, _audit_values(values)))
                results.append(Upserted("created", subject))
            else:
                changes = _upsert_changes(company=company, claims=claims, subject=subject, data=data)
                if changes:
                    changed.setdefault(id(subject), (subject, set()))[1].update(changes)
                    audit.append(("subject.update", subject, _audit_changes(changes)))
                results.append(Upserted("updated" if changes else "unchanged", subject))
            by_number[subject.job_number] = subject
        except KangarooError as error:
            results.append(Upserted("error", error=error))
    now = timezone.now()
    new = {id(subject) for subject in created}
    by_changes: dict[tuple[str, ...], list[Subject]] = defaultdict(list)
    for subject, names in changed.values():
        subject.updated_at = now
        by_changes[tuple(field for field in SUBJECT_FIELDS if field in names)].append(subject)
    # The items were checked one after the other but are written at once: an e-mail a subject
    # gives up may be another's now, so the subjects changing theirs let go of them first and
    # the new subjects come last. A subject created by an earlier item is inserted as it ends.
    moving = [subject.pk for subject, names in changed.values() if "email" in names and id(subject) not in new]
    saved = {names: [s for s in subjects if id(s) not in new] for names, subjects in by_changes.items()}
    written = [*created, *(subject for subject, _ in changed.values() if id(subject) not in new)]
    with _keys_written(company=company, subjects=written):
        if moving:
            Subject.objects.for_company(company).filter(pk__in=moving).update(email="")
        _update_in_place({names: subjects for names, subjects in saved.items() if subjects})
        Subject.objects.bulk_create(_in_write_order(created))  # tenant: each built with `company`
        audit_record_many(company=company, actor=actor, entries=audit)
        announce_subjects(company=company, action=CREATED, ids=[subject.pk for subject in created])
        for names, subjects in by_changes.items():
            announce_subjects(company=company, action=UPDATED, ids=[subject.pk for subject in subjects], fields=names)
    return results


def _upsert_new(
    *, company: Company, claims: _UpsertClaims, job_number: str, data: dict[str, Any]
) -> tuple[Subject, dict[str, Any]]:
    """A new, unsaved subject of an upsert item, with the values its audit entry records."""
    data = {"subject_type": SubjectType.EMPLOYEE, **data, "job_number": job_number}
    claims.me = None
    values = subject_check(company=company, data=data, claims=claims)
    subject = Subject(company=company, **values)
    claims.claim(subject)
    return subject, values


def _upsert_changes(
    *, company: Company, claims: _UpsertClaims, subject: Subject, data: dict[str, Any]
) -> dict[str, list[Any]]:
    """Apply an upsert item to `subject` in memory; returns its changes as {field: [old, new]}."""
    current = {field: getattr(subject, field) for field in SUBJECT_FIELDS}
    claims.me = subject
    checked = subject_check(company=company, data=current | data, instance=subject, claims=claims)
    changes = {field: [current[field], checked[field]] for field in SUBJECT_FIELDS if current[field] != checked[field]}
    for field in changes:
        setattr(subject, field, checked[field])
    claims.claim(subject, released_email=current["email"] or "")
    return changes


@transaction.atomic
def subjects_archive_missing(
    *, company: Company, actor: User | None, job_numbers: Iterable[str], subject_type: str = SubjectType.EMPLOYEE
) -> list[int]:
    """Archive the company's active subjects of `subject_type` whose job number is not among
    `job_numbers` (the HR system's full list); returns their ids. Each is archived through
    `subject_archive`, so the doors, the gallery and the audit log follow as for any archive."""
    if subject_type not in SubjectType.values:
        raise _field_error(errors.VALIDATION_ERROR, "subject_type", _("Unknown type."))
    listed = {number.strip() for number in job_numbers}
    gone = [
        subject
        for subject in Subject.objects.for_company(company)
        .filter(subject_type=subject_type, archived=False)
        .order_by("id")
        .only("pk", "job_number")
        if subject.job_number not in listed
    ]
    for subject in gone:
        subject_archive(company=company, actor=actor, subject=subject)
    return [subject.pk for subject in gone]


# --- Consent ----------------------------------------------------------------------------------


def _actor_fields(actor) -> dict[str, Any]:
    """Who did it, as a consent keeps it: the user's row, or the device's id (a pad's
    principal), and the name either way, which outlives both."""
    device = getattr(actor, "device", None)
    return {
        "user": actor if isinstance(actor, User) and actor.pk else None,
        "device": device.pk if device is not None else None,
        "repr": actor.get_username() if actor is not None else "system",
    }


def _consent_in_force(company: Company, subject: Subject) -> Consent | None:
    return Consent.objects.for_company(company).filter(subject=subject).filter(IN_FORCE).first()


def consent_check(*, company: Company, subject: Subject) -> None:
    """Raise `consent_required` unless a photo of `subject` may be stored: the company does
    not require consent, or the subject has a consent in force. Every path that stores a
    photo calls it, with the subject locked."""
    if company.consent_required and _consent_in_force(company, subject) is None:
        raise _field_error(errors.CONSENT_REQUIRED, "image")


# Consents given "now" by a device whose clock runs a little ahead are not in the future.
CONSENT_CLOCK_SKEW = timedelta(minutes=5)


@transaction.atomic
def consent_record(
    *,
    company: Company,
    actor,
    subject: Subject,
    method: str,
    policy_version: int,
    policy_language: str | None = None,
    given_at: datetime | None = None,
    evidence=None,
    written: list[str] | None = None,
) -> Consent:
    """Record the subject's consent to the company's current retention policy.

    `policy_version` is the version the person was shown: another than the current one
    answers `consent_policy_outdated` (with `current_version`), since they agreed to words
    that are no longer the policy. `policy_language` is the language they read it in (the
    main language when left out; `retention_policy_language_unknown` for one the product
    does not have): the consent records the language of the text they were shown, the
    main one when the version has no text in theirs. `actor` is a user or a pad's principal. `evidence`, an
    uploaded image of the signed form, is normalised and stored like a photo. A consent in
    force is replaced (it stays in the history). Audited. `written`: the list of the
    caller's `media_written` block, when the consent is part of a larger write.
    """
    if method not in ConsentMethod.values:
        raise _field_error(errors.VALIDATION_ERROR, "method", _("Unknown way of giving consent."))
    if policy_language is not None:
        policy_language = retention_policy_language_check(policy_language, field="policy_language")
    now = timezone.now()
    given_at = given_at or now
    if given_at > now + CONSENT_CLOCK_SKEW:
        raise _field_error(errors.VALIDATION_ERROR, "given_at", _("Consent cannot be given in the future."))
    evidence_jpeg = jpeg_of(open_photo(evidence)) if evidence is not None else None  # before any lock or write
    subject = Subject.objects.for_company(company).select_for_update().get(pk=subject.pk)
    policy = retention_policy_current(company=company)
    if policy_version != policy.version:
        raise KangarooError(
            errors.CONSENT_POLICY_OUTDATED,
            fields={"policy_version": [str(errors.CONSENT_POLICY_OUTDATED.message)]},
            extra={"current_version": policy.version},
        )
    replaced = _consent_in_force(company, subject)
    if replaced is not None:
        replaced.replaced_at = now
        replaced.save(update_fields=["replaced_at"])
    by = _actor_fields(actor)
    with media_written() as own:
        written = written if written is not None else own
        consent = Consent.objects.create(
            company=company,
            subject=subject,
            given_at=given_at,
            method=method,
            policy=policy,
            policy_language=policy.text_for(policy_language or policy.language).language,
            recorded_by=by["user"],
            recorded_by_device=by["device"],
            recorded_by_repr=by["repr"],
            evidence=(
                media_save(kind=MediaKind.CONSENT, company_id=company.pk, content=evidence_jpeg, written=written)
                if evidence_jpeg is not None
                else ""
            ),
        )
        audit_record(
            company=company,
            actor=actor,
            action="consent.create",
            obj=consent,
            changes={
                "subject": subject.pk,
                "method": method,
                "policy_version": policy.version,
                "policy_language": consent.policy_language,
                "given_at": given_at,
                "evidence": bool(consent.evidence),
                "replaces": replaced.pk if replaced is not None else None,
            },
        )
    return consent


@transaction.atomic
def consent_withdraw(*, company: Company, actor, subject: Subject) -> Consent:
    """The subject withdraws their consent: at once, their photos (with their embeddings)
    are deleted, their files after commit; higher apps delete the rest of their biometric
    data (`consent_withdrawn`: event snapshots, unknown-person links); and a tombstone in
    the gallery change log tells the boxes to forget their faces, all in this transaction.
    Raises `consent_not_in_force` when there is nothing to withdraw. Audited."""
    subject = Subject.objects.for_company(company).select_for_update().get(pk=subject.pk)
    consent = _consent_in_force(company, subject)
    if consent is None:
        raise KangarooError(errors.CONSENT_NOT_IN_FORCE)
    by = _actor_fields(actor)
    consent.withdrawn_at = timezone.now()
    consent.withdrawn_by = by["user"]
    consent.withdrawn_by_repr = by["repr"]
    consent.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawn_by_repr"])
    photos = Photo.objects.for_company(company).filter(subject=subject)
    removed = list(photos.values_list("pk", "subject_id"))
    photos.delete()  # the post_delete handler removes each photo's files after commit
    audit_record(
        company=company,
        actor=actor,
        action="consent.withdraw",
        obj=consent,
        changes={"subject": subject.pk, "photos_deleted": len(removed)},
    )
    announce_photos_removed(company=company, photos=removed)
    announce_consent_withdrawn(company=company, ids=[subject.pk])
    gallery_append(
        company_id=company.pk, subject_ids=[subject.pk], reason=gallery.CONSENT_WITHDRAWN, op=GalleryOp.DELETE
    )
    return consent
