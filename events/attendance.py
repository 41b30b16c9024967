"""Attendance: for each subject and day, first in, last out, passes, late and left early.

A day is a day of the company's time zone, never of UTC or of the server: the range is cut
at the company's local midnights and events are grouped by `TruncDate(..., tzinfo=zone)`,
so a pass at 00:30 in Taipei belongs to that Taipei day, and a DST change moves nothing to
the wrong day. Everything is one aggregate query (SQLite and PostgreSQL alike); lateness is
read from each row's own first in / last out in local wall-clock time.

Days whose events the retention purge deleted (`purged_days`) have no rows per person: only
anonymous totals are left (`EventDailyCount`), which every report shows for them instead,
marked as such, never as days nobody came (`purged_day_summary`, `purged_day_totals`).

Who a row is about comes from the subject itself (joined, in the same query), so a row
reads the subject's current name, job number, type and department, and the filters match
those; the events' snapshot fields keep the history of each single pass.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Company
from devices.models import Direction
from events.models import Event, EventDailyCount, EventKind
from kangaroo import errors
from kangaroo.errors import KangarooError
from subjects.models import Subject, SubjectType

MAX_DAYS = 366
# A screen without a direction is a door both ways: its passes count as in and as out.
IN_DIRECTIONS = (Direction.IN, Direction.BOTH, "")
OUT_DIRECTIONS = (Direction.OUT, Direction.BOTH, "")
# What a report row shows of the person, read with the events it groups.
SUBJECT_COLUMNS = {
    "name": F("subject__name"),
    "job_number": F("subject__job_number"),
    "type": F("subject__subject_type"),
    "department": F("subject__department__name"),
}


@dataclass(frozen=True)
class AttendanceRow:
    """One subject on one local day. Times are aware, in the company's zone; `late` and
    `left_early` are None when the day has no pass in / no pass out, and for visitors and
    VIPs, whom working hours do not bind."""

    subject_id: int
    name: str
    job_number: str
    subject_type: str
    department: str  # "" without a department
    date: datetime.date
    first_in: datetime.datetime | None
    last_out: datetime.datetime | None
    passes: int
    late: bool | None
    left_early: bool | None

    @property
    def hours(self) -> float | None:
        """Hours from first in to last out, when the day has both in that order."""
        if self.first_in is None or self.last_out is None or self.last_out <= self.first_in:
            return None
        return (self.last_out - self.first_in).total_seconds() / 3600

    @property
    def subject_type_label(self) -> str:
        return str(dict(SubjectType.choices).get(self.subject_type, self.subject_type))


class AttendanceDays:
    """The rows of an attendance query, lazily: `count()` and slicing each run one query, so
    Django's and DRF's paginators read only the page they show."""

    def __init__(self, queryset: QuerySet, company: Company):
        self.queryset = queryset
        self.company = company
        self.zone = company.zone

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._row(values) for values in self.queryset[index]]
        return self._row(self.queryset[index])

    def __iter__(self) -> Iterator[AttendanceRow]:
        for values in self.queryset.iterator(chunk_size=2000):
            yield self._row(values)

    def _row(self, values: dict[str, Any]) -> AttendanceRow:
        first_in = values["first_in"].astimezone(self.zone) if values["first_in"] else None
        last_out = values["last_out"].astimezone(self.zone) if values["last_out"] else None
        # Working hours bind employees only: a visitor or a VIP is never late nor early.
        bound = values["type"] == SubjectType.EMPLOYEE
        return AttendanceRow(
            subject_id=values["subject_id"],
            name=values["name"],
            job_number=values["job_number"],
            subject_type=values["type"],
            department=values["department"] or "",
            date=values["day"],
            first_in=first_in,
            last_out=last_out,
            passes=values["passes"],
            late=None if first_in is None or not bound else first_in.time() > self.company.work_start,
            left_early=None if last_out is None or not bound else last_out.time() < self.company.work_end,
        )


def company_today(company: Company) -> datetime.date:
    return timezone.localdate(timezone=company.zone)


def local_midnight(day: datetime.date, zone) -> datetime.datetime:
    """The instant `day` starts in `zone` (where midnight is skipped by a DST change, the
    instant of the change, which is when that day starts)."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone)


def attendance_range(
    *, company: Company, date_from: datetime.date | None, date_to: datetime.date | None
) -> tuple[datetime.date, datetime.date]:
    """The range a report covers when a bound is left out: today in the company's zone for
    both; only `to`: that one day; only `from`: from then until today (or that day, if later).
    """
    if date_from is None and date_to is None:
        date_from = date_to = company_today(company)
    elif date_from is None:
        date_from = date_to
    elif date_to is None:
        date_to = max(date_from, company_today(company))
    return date_from, date_to


def check_range(date_from: datetime.date, date_to: datetime.date) -> None:
    """Errors name the field `to`, as the API's query and the admin's form call it."""
    if date_to < date_from:
        message = _("The end date is before the start date.")
        raise KangarooError(errors.VALIDATION_ERROR, message, fields={"to": [message]})
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise KangarooError(
            errors.ATTENDANCE_RANGE_TOO_LONG,
            fields={"to": [str(errors.ATTENDANCE_RANGE_TOO_LONG.message)]},
            extra={"max_days": MAX_DAYS},
        )


def attendance_days(
    *,
    company: Company,
    date_from: datetime.date,
    date_to: datetime.date,
    department: int | None = None,
    subject_type: str | None = None,
    job_number: str | None = None,
    q: str | None = None,
) -> AttendanceDays:
    """Attendance of `company`'s subjects on the local days `date_from`..`date_to` (both
    included), ordered by day, name and subject. `department` is a department id.

    Counts recognized events of a subject still on file. Raises KangarooError for `date_to`
    before `date_from` (validation_error) or a range over 366 days (attendance_range_too_long).
    """
    check_range(date_from, date_to)
    zone = company.zone
    events = Event.objects.for_company(company).filter(
        kind=EventKind.RECOGNIZED,
        subject__isnull=False,
        happened_at__gte=local_midnight(date_from, zone),
        happened_at__lt=local_midnight(date_to + datetime.timedelta(days=1), zone),
    )
    if company.events_purged_before is not None:
        # A purged day has no rows, even one a stopped run left events of (it is counted whole).
        events = events.filter(happened_at__gte=local_midnight(company.events_purged_before, zone))
    if department:
        events = events.filter(subject__department_id=department)
    if subject_type:
        events = events.filter(subject__subject_type=subject_type)
    if job_number:
        events = events.filter(subject__job_number=job_number)
    if q:
        events = events.filter(Q(subject__name__icontains=q) | Q(subject__job_number__icontains=q))
    rows = (
        events.annotate(day=TruncDate("happened_at", tzinfo=zone))
        # The group: subject and local day; the subject's columns depend on the subject alone.
        .values(
            "subject_id",
            "day",
            **SUBJECT_COLUMNS,
        )
        .annotate(
            first_in=Min("happened_at", filter=Q(direction__in=IN_DIRECTIONS)),
            last_out=Max("happened_at", filter=Q(direction__in=OUT_DIRECTIONS)),
            passes=Count("id"),
        )
        .order_by("day", "name", "subject_id")
    )
    return AttendanceDays(rows, company)


# --- Today: who is in, who has left, who has not arrived ---------------------------------------


@dataclass(frozen=True)
class Presence:
    subject_id: int
    name: str
    job_number: str
    subject_type: str
    department: str
    first_in: datetime.datetime | None
    last_in: datetime.datetime | None
    last_out: datetime.datetime | None
    late: bool | None

    @property
    def subject_type_label(self) -> str:
        return str(dict(SubjectType.choices).get(self.subject_type, self.subject_type))


@dataclass(frozen=True)
class TodayBoard:
    day: datetime.date
    inside: list[Presence]
    left: list[Presence]
    not_arrived: list[Presence]


def attendance_today(*, company: Company, department: int | None = None) -> TodayBoard:
    """Today in the company's zone: who is in (their last pass was in), who left (their last
    pass was out), and which active employees have not been seen at all. Two queries."""
    zone = company.zone
    today = company_today(company)
    events = Event.objects.for_company(company).filter(
        kind=EventKind.RECOGNIZED,
        subject__isnull=False,
        happened_at__gte=local_midnight(today, zone),
        happened_at__lt=local_midnight(today + datetime.timedelta(days=1), zone),
    )
    if department:
        events = events.filter(subject__department_id=department)
    rows = (
        events.values(
            "subject_id",
            **SUBJECT_COLUMNS,
        )
        .annotate(
            first_in=Min("happened_at", filter=Q(direction__in=IN_DIRECTIONS)),
            last_in=Max("happened_at", filter=Q(direction__in=IN_DIRECTIONS)),
            last_out=Max("happened_at", filter=Q(direction=Direction.OUT)),
        )
        .order_by("name", "subject_id")
    )
    inside, left = [], []
    for values in rows:
        local = {
            key: values[key].astimezone(zone) if values[key] else None for key in ("first_in", "last_in", "last_out")
        }
        presence = Presence(
            subject_id=values["subject_id"],
            name=values["name"],
            job_number=values["job_number"],
            subject_type=values["type"],
            department=values["department"] or "",
            late=(
                local["first_in"].time() > company.work_start
                if local["first_in"] is not None and values["type"] == SubjectType.EMPLOYEE
                else None
            ),
            **local,
        )
        # A door both ways counts as in: only a pass through an exit says someone left.
        gone = presence.last_out is not None and (presence.last_in is None or presence.last_out > presence.last_in)
        (left if gone else inside).append(presence)
    employees = Subject.objects.for_company(company).filter(subject_type=SubjectType.EMPLOYEE, archived=False)
    if department:
        employees = employees.filter(department_id=department)
    not_arrived = [
        Presence(
            subject_id=subject.pk,
            name=subject.name,
            job_number=subject.job_number,
            subject_type=subject.subject_type,
            department=subject.department.name if subject.department else "",
            first_in=None,
            last_in=None,
            last_out=None,
            late=None,
        )
        for subject in employees.exclude(pk__in=events.values("subject_id"))
        .select_related("department")
        .order_by("name", "pk")
    ]
    return TodayBoard(day=today, inside=inside, left=left, not_arrived=not_arrived)


# --- The monthly timesheet ---------------------------------------------------------------------


@dataclass
class TimesheetRow:
    """One employee's month: days present, hours (first in to last out, summed), and how many
    days they came late or left early. `days` holds each present day's AttendanceRow.
    `purged_days`: how many days of the month were purged (`purged_days`), known neither as
    present nor as absent, left out of every figure."""

    subject_id: int
    name: str
    job_number: str
    department: str
    days: list[AttendanceRow]
    purged_days: int = 0

    @property
    def days_present(self) -> int:
        return len(self.days)

    @property
    def hours(self) -> float:
        return sum(day.hours or 0 for day in self.days)

    @property
    def late_count(self) -> int:
        return sum(1 for day in self.days if day.late)

    @property
    def left_early_count(self) -> int:
        return sum(1 for day in self.days if day.left_early)


def month_range(month: datetime.date) -> tuple[datetime.date, datetime.date]:
    first = month.replace(day=1)
    following = (first + datetime.timedelta(days=32)).replace(day=1)
    return first, following - datetime.timedelta(days=1)


def timesheet_purged(*, company: Company, month: datetime.date) -> list[PurgedDay]:
    """The purged days of the month with the anonymous totals of employees recognised."""
    date_from, date_to = month_range(month)
    return purged_day_summary(company=company, date_from=date_from, date_to=date_to, subject_type=SubjectType.EMPLOYEE)


def monthly_timesheet(
    *, company: Company, month: datetime.date, department: int | None = None, subject: int | None = None
) -> list[TimesheetRow]:
    """Every active employee of `company` (of `department`, or the one `subject`) for the
    month of `month`, in name order; an employee never seen that month has a row of zeros.
    Queries: the employees, the month's attendance rows, and its purged days."""
    date_from, date_to = month_range(month)
    employees = Subject.objects.for_company(company).filter(subject_type=SubjectType.EMPLOYEE, archived=False)
    if department:
        employees = employees.filter(department_id=department)
    if subject:
        employees = employees.filter(pk=subject)
    sheet = {
        employee.pk: TimesheetRow(
            subject_id=employee.pk,
            name=employee.name,
            job_number=employee.job_number,
            department=employee.department.name if employee.department else "",
            days=[],
        )
        for employee in employees.select_related("department").order_by("name", "pk")
    }
    days = attendance_days(
        company=company, date_from=date_from, date_to=date_to, department=department, subject_type=SubjectType.EMPLOYEE
    )
    for day in days:
        if day.subject_id in sheet:
            sheet[day.subject_id].days.append(day)
    purged = len(purged_days(company=company, date_from=date_from, date_to=date_to))
    for row in sheet.values():
        row.purged_days = purged
    return list(sheet.values())


# --- Days whose events the retention purge deleted ------------------------------------------


@dataclass(frozen=True)
class PurgedDayTotal:
    """A local day past the company's event retention: only anonymous counts are left."""

    day: datetime.date
    subject_type: str
    people: int  # different subjects recognised that day
    passes: int  # recognised passes

    @property
    def subject_type_label(self) -> str:
        return SubjectType(self.subject_type).label if self.subject_type in SubjectType.values else self.subject_type


def purged_day_totals(
    *, company: Company, date_from: datetime.date, date_to: datetime.date, subject_type: str | None = None
) -> list[PurgedDayTotal]:
    """The anonymous totals kept of the recognised passes of `company` on the local days
    `date_from`..`date_to` whose events retention has deleted (`EventDailyCount`), by day
    and subject type; a purged day nobody was recognised on has one row of zeros without a
    type. Attendance rows (per person) exist only for days still kept; these rows are what
    the report shows of the others."""
    counts = EventDailyCount.objects.for_company(company).filter(
        day__gte=date_from, day__lte=date_to, kind=EventKind.RECOGNIZED
    )
    if subject_type:
        counts = counts.filter(subject_type=subject_type)
    totals = [
        PurgedDayTotal(day=row.day, subject_type=row.subject_type, people=row.people, passes=row.events)
        for row in counts.order_by("day", "subject_type")
    ]
    counted = {total.day for total in totals}
    empty = [
        PurgedDayTotal(day=day, subject_type="", people=0, passes=0)
        for day in purged_days(company=company, date_from=date_from, date_to=date_to)
        if day not in counted
    ]
    return sorted(totals + empty, key=lambda total: (total.day, total.subject_type))


def purged_days(*, company: Company, date_from: datetime.date, date_to: datetime.date) -> list[datetime.date]:
    """The local days of `date_from`..`date_to` whose events the retention purge deleted, in
    order: every day, since the company exists, before the day the purge last cut at
    (`Company.events_purged_before`). A day with no event is one too: no one can tell who
    came then. A day past the window whose events the next run has still to delete is not:
    its events still answer per person. No query."""
    if company.events_purged_before is None:
        return []
    first = max(date_from, company.created_at.astimezone(company.zone).date())
    last = min(date_to, company.events_purged_before - datetime.timedelta(days=1))
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class PurgedDay:
    """A purged day (`purged_days`) and what is left of it: how many different people were
    recognised (person-days) and how many recognised passes, of every type or of one."""

    day: datetime.date
    people: int
    passes: int


def purged_day_summary(
    *, company: Company, date_from: datetime.date, date_to: datetime.date, subject_type: str | None = None
) -> list[PurgedDay]:
    """Every purged day of the range, with its totals of recognised passes (0 when nothing
    was counted), of `subject_type` or of all types."""
    days = purged_days(company=company, date_from=date_from, date_to=date_to)
    if not days:
        return []
    counts = EventDailyCount.objects.for_company(company).filter(day__in=days, kind=EventKind.RECOGNIZED)
    if subject_type:
        counts = counts.filter(subject_type=subject_type)
    totals: dict[datetime.date, list[int]] = {day: [0, 0] for day in days}
    for day, people, passes in counts.values_list("day", "people", "events"):
        totals[day][0] += people
        totals[day][1] += passes
    return [PurgedDay(day=day, people=people, passes=passes) for day, (people, passes) in totals.items()]
