"""Import and export of subjects with django-import-export, tenant-safe and fast.

Export: `SubjectResource.export()` reads the already-scoped, already-filtered queryset
with one `values_list` query instead of building a model instance and calling every
field's widget per row, writes each column whole (escaping cells that a spreadsheet would
run as a formula) and hands the columns over as `TextColumns`, which `SmartCSV` and
`TextXLSX` (kangaroo/spreadsheets.py) write row by row without tablib's per-row objects or
per-cell formatting.

Import: the resource parses and checks, and never writes. Rows are matched by job number
inside the importing company only (the company's subjects are loaded once) and validated
with the same rules as the subject services; departments named in the file that do not
exist yet are built unsaved. When every row is valid and it is not a dry run, the new,
changed and new-department rows go to `services.subject_import_apply`, which writes them
in bulk (unchanged rows not at all) and audits and announces them like single changes.
Any invalid row leaves everything unwritten. bench/subjects_bench.py measures all of it at
100,000 subjects.
"""

from __future__ import annotations

import datetime
from operator import itemgetter

import tablib
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, resources, widgets
from import_export.results import RowResult

from accounts.models import Company, User
from kangaroo.errors import KangarooError
from kangaroo.spreadsheets import (
    ImportReport,
    ReportRow,
    TextColumns,
    escape_formula_column,
    read_date,
    read_datetime,
)
from subjects.models import Department, Subject, SubjectType
from subjects.services import SUBJECT_FIELDS, SubjectBatchCheck, subject_import_apply


def _iso(value) -> str:
    return "" if value is None else value.isoformat()


def _local_iso(value) -> str:
    """A date and time in the current (the company's) zone, with its offset: HR reads the
    wall-clock time they typed, and the file still names one instant when imported back."""
    return "" if value is None else timezone.localtime(value).isoformat()


YES, NO = gettext_lazy("Yes"), gettext_lazy("No")


def _flag(value: bool) -> str:
    return "1" if value else "0"


# Each export column is written whole, one list comprehension (or one scan) per column
# rather than one function call per cell: for 100,000 subjects the calls per cell cost as
# much CPU as the rest of the CSV export.
def _iso_column(values) -> list[str]:
    try:
        return list(map(datetime.date.isoformat, values))
    except TypeError:  # a date left blank
        return ["" if value is None else value.isoformat() for value in values]


def _local_iso_column(values) -> list[str]:
    """`_local_iso` for a whole column, the company's zone looked up once."""
    zone = timezone.get_current_timezone()
    return ["" if value is None else value.astimezone(zone).isoformat() for value in values]


def _flag_column(values) -> list[str]:
    return ["1" if value else "0" for value in values]


# (column, how to read it from a values_list row, how to write the whole column); the
# resource's field of each column has the column's name except for the host (field `host`,
# column `host_job_number`).
EXPORT_COLUMNS = [
    ("job_number", "job_number", escape_formula_column),
    ("name", "name", escape_formula_column),
    ("english_name", "english_name", escape_formula_column),
    ("subject_type", "subject_type", escape_formula_column),
    ("email", "email", escape_formula_column),
    ("phone", "phone", escape_formula_column),
    ("department", "department__name", escape_formula_column),
    ("title", "title", escape_formula_column),
    ("start_date", "start_date", _iso_column),
    ("visit_start", "visit_start", _local_iso_column),
    ("visit_end", "visit_end", _local_iso_column),
    ("host_job_number", "host__job_number", escape_formula_column),
    ("purpose", "purpose", escape_formula_column),
    ("remark", "remark", escape_formula_column),
    ("archived", "archived", _flag_column),
]
FIELD_OF_COLUMN = {column: column for column, _, _ in EXPORT_COLUMNS} | {"host_job_number": "host"}
COLUMN_OF_FIELD = {field: column for column, field in FIELD_OF_COLUMN.items()}
# A job reports its progress every this many rows (one UPDATE each).
PROGRESS_EVERY = 500
# Columns read as text. Excel stores a typed-in job number or phone as a number, an empty
# XLSX cell reads None (a NOT NULL column would fail the whole file at the bulk insert), and
# cells often carry stray spaces: all are evened out before any widget or validator runs.
TEXT_COLUMNS = [column for column, _, write in EXPORT_COLUMNS if write is escape_formula_column]
# What an update may change, as (field, attribute holding its value).
UPDATABLE = [(f.name, f.attname) for f in Subject._meta.concrete_fields if f.name in SUBJECT_FIELDS]
DEPARTMENT_FIELD = Subject._meta.get_field("department")


def cell_text(value):
    """A spreadsheet cell of a text column as trimmed text (1001 and 1001.0 read "1001")."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


class DepartmentByName(widgets.Widget):
    """A department by its name within the importing company; a missing one is built
    (unsaved, once per name) for the import service to create."""

    def __init__(self, resource: SubjectResource):
        super().__init__()
        self.resource = resource

    def clean(self, value, row=None, **kwargs):
        name = (value or "").strip()
        return self.resource.department_named(name) if name else None

    def render(self, value, obj=None, **kwargs):
        return value.name if value else ""


class CellDate(widgets.Widget):
    """A date as ISO (the export's form) or YYYY/M/D; D/M/YYYY or M/D/YYYY as the company's
    date order says (`kangaroo.spreadsheets.read_date`)."""

    def __init__(self, order: str = ""):
        super().__init__()
        self.order = order

    def clean(self, value, row=None, **kwargs):
        return read_date(value, order=self.order)

    def render(self, value, obj=None, **kwargs):
        return _iso(value)


class CellDateTime(widgets.Widget):
    """A date and time; one without an offset is the company's wall-clock time."""

    def __init__(self, zone=None, order: str = ""):
        super().__init__()
        self.zone = zone
        self.order = order

    def clean(self, value, row=None, **kwargs):
        return read_datetime(value, zone=self.zone or timezone.get_current_timezone(), order=self.order)

    def render(self, value, obj=None, **kwargs):
        return _local_iso(value)


TRUE_CELLS = {"1", "true", "yes", "y", "是"}
FALSE_CELLS = {"0", "false", "no", "n", "否", ""}


class CellFlag(widgets.Widget):
    """A yes/no column: 1 or 0 (as the export writes), also true/false, yes/no, 是/否. Anything
    else is an error rather than a silent "no"."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool):
            return value
        text = str(cell_text(value)).strip().lower()
        if text in TRUE_CELLS:
            return True
        if text in FALSE_CELLS:
            return False
        raise ValueError(_("“%(value)s” is not yes or no: use 1 or 0.") % {"value": value})

    def render(self, value, obj=None, **kwargs):
        return _flag(value)


class HostByJobNumber(widgets.Widget):
    def __init__(self, resource: SubjectResource):
        super().__init__()
        self.resource = resource

    def clean(self, value, row=None, **kwargs):
        job_number = (value or "").strip()
        if not job_number:
            return None
        host = self.resource.existing.get(job_number)
        if host is None or host.subject_type != SubjectType.EMPLOYEE:
            raise ValueError(_("No employee has job number %(job)s.") % {"job": job_number})
        return host

    def render(self, value, obj=None, **kwargs):
        return value.job_number if value else ""


def _current(subject: Subject, attname: str):
    """A field's value on a row being imported, to compare with the value as loaded. A
    department the file names but that does not exist yet has no primary key: the row's
    `department_id` stays None although its department changes."""
    value = getattr(subject, attname)
    if attname == "department_id" and value is None:
        department = DEPARTMENT_FIELD.get_cached_value(subject, None)
        if department is not None:
            return department
    return value


class SubjectResource(resources.ModelResource):
    department = fields.Field(attribute="department", column_name="department")
    host = fields.Field(attribute="host", column_name="host_job_number")

    class Meta:
        model = Subject
        fields = list(FIELD_OF_COLUMN.values())
        export_order = fields
        import_id_fields = ["job_number"]
        use_transactions = True
        use_bulk = True
        batch_size = 2000
        # The preview lists rows by import type without a diff (skip_html_diff), so the
        # per-row deep copy and field reads that build one would be work for nothing.
        skip_diff = True
        skip_html_diff = True
        clean_model_instances = True

    def __init__(self, company: Company | None = None, actor: User | None = None, progress=None, **kwargs):
        super().__init__(**kwargs)
        self.company = company
        self.actor = actor
        self.progress = progress  # progress(rows done, rows in all), called every PROGRESS_EVERY rows
        self.total_rows = 0
        self.zone = company.zone if company is not None else None
        self.report = ImportReport(columns=[])
        self.headers: list[str] = []
        # The spreadsheet row that first claimed a job number or e-mail, to name it in a duplicate's error.
        self.job_rows: dict[str, int] = {}
        self.email_rows: dict[str, int] = {}
        self.row_number = 0
        self.row_instance: Subject | None = None
        self.row_changes: dict[str, tuple] = {}
        self.fields["department"].widget = DepartmentByName(self)
        self.fields["host"].widget = HostByJobNumber(self)
        zone = company.zone if company is not None else None
        order = company.date_order if company is not None else ""
        self.fields["start_date"].widget = CellDate(order)
        self.fields["visit_start"].widget = CellDateTime(zone, order)
        self.fields["visit_end"].widget = CellDateTime(zone, order)
        self.fields["archived"].widget = CellFlag()
        self.existing: dict[str, Subject] = {}
        self.departments: dict[str, Department] = {}
        self.check: SubjectBatchCheck | None = None
        self.loaded: dict[int, tuple] = {}  # pk -> values as loaded, to find what a row changes
        self.row_unchanged = False
        # What the file would write, handed to services.subject_import_apply when all is valid.
        self.new_departments: list[Department] = []
        self.creates: list[Subject] = []
        self.updates: list[tuple[Subject, dict[str, tuple]]] = []
        self.department_by_pk: dict[int, Department] = {}
        self.subject_by_pk: dict[int, Subject] = {}

    # --- export --------------------------------------------------------------------------------
    def get_queryset(self):
        return Subject.objects.for_company(self.company)

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        """Every column, or those ticked in the admin's export form (`export_fields`)."""
        queryset = self.get_queryset() if queryset is None else queryset
        selected = kwargs.get("export_fields")
        columns = [column for column in EXPORT_COLUMNS if not selected or FIELD_OF_COLUMN[column[0]] in selected]
        # Not .iterator(): the dataset holds every row anyway, and a server-side cursor only
        # adds round trips.
        rows = list(queryset.order_by().values_list(*[path for _, path, _ in columns]))
        # Written column by column, each column read out of the rows in C; the file's
        # writers read rows again.
        written = [write(list(map(itemgetter(i), rows))) for i, (_, _, write) in enumerate(columns)]
        return TextColumns(written, headers=[column for column, _, _ in columns])

    # --- import --------------------------------------------------------------------------------
    def before_import(self, dataset, **kwargs):
        self.headers = list(dataset.headers or [])
        self.total_rows = len(dataset)
        self.report = ImportReport(
            columns=[
                (header, Subject._meta.get_field(FIELD_OF_COLUMN[header]).verbose_name)
                for header in self.headers
                if header in FIELD_OF_COLUMN
            ],
            ignored=[str(header) for header in self.headers if header not in FIELD_OF_COLUMN and header],
        )
        self.job_rows, self.email_rows = {}, {}
        missing = {"job_number", "name"} - set(dataset.headers or [])
        if missing:
            raise ValidationError(_("The file needs the columns: %(cols)s.") % {"cols": ", ".join(sorted(missing))})
        self.existing = {s.job_number: s for s in Subject.objects.for_company(self.company)}
        self.departments = {d.name.lower(): d for d in Department.objects.for_company(self.company)}
        self.check = SubjectBatchCheck(company=self.company, subjects=self.existing.values())
        self.department_by_pk = {d.pk: d for d in self.departments.values()}
        self.subject_by_pk = {s.pk: s for s in self.existing.values()}
        self.new_departments, self.creates, self.updates = [], [], []

    def before_import_row(self, row, **kwargs):
        for column in TEXT_COLUMNS:
            if column in row:
                row[column] = cell_text(row[column])

    def department_named(self, name: str) -> Department:
        department = self.departments.get(name.lower())
        if department is None:
            department = Department(company=self.company, name=name)
            self.departments[name.lower()] = department
            self.new_departments.append(department)
        return department

    def get_instance(self, instance_loader, row):
        instance = self.existing.get(row.get("job_number") or "")
        if instance is not None and instance.pk not in self.loaded:
            self.loaded[instance.pk] = tuple(getattr(instance, attname) for _, attname in UPDATABLE)
        return instance

    def init_instance(self, row=None):
        return Subject(company=self.company)

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.attribute == "subject_type" and not (row.get("subject_type") or "").strip():
            return  # keep the model default (employee) for a blank cell
        super().import_field(field, instance, row, is_m2m, **kwargs)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        self.row_instance = instance
        errors = dict(import_validation_errors or {})
        # The department and host come from this company's rows loaded in before_import, and
        # subject_check checks their company again: no query per row to prove they exist.
        try:
            instance.full_clean(exclude=[*errors, "company", "job_number", "department", "host"],
                                validate_unique=False, validate_constraints=False)  # fmt: skip
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "subject_type" in errors and instance.subject_type not in SubjectType.values:
            errors["subject_type"] = [ValidationError(self._type_choices_message(instance.subject_type))]
        # A job number or e-mail of an earlier row is named even when this row has other
        # errors (an unreadable date, say): HR corrects every problem of a row in one go.
        for name, message in self._duplicate_in_file(instance).items():
            errors.setdefault(name, []).append(ValidationError(message))
        if not errors:
            try:
                self.check.check_and_claim(instance)
            except KangarooError as exc:
                errors = exc.fields or {"__all__": [str(exc.message)]}
        # The first row with a job number or e-mail holds it, valid or not, so a later
        # duplicate names that row.
        job_number = (instance.job_number or "").strip()
        if job_number:
            self.job_rows.setdefault(job_number, self.row_number)
        email = (instance.email or "").strip().lower()
        if email:
            self.email_rows.setdefault(email, self.row_number)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _type_choices_message(value) -> str:
        choices = get_text_list([f"{code} ({label})" for code, label in SubjectType.choices], _("or"))
        return _("“%(value)s” is not a type: use %(choices)s.") % {"value": value, "choices": choices}

    def _duplicate_in_file(self, instance: Subject) -> dict[str, str]:
        """{field: message} for a job number or e-mail that an earlier row of the file has."""
        found = {}
        row = self.job_rows.get((instance.job_number or "").strip())
        if row is not None:
            found["job_number"] = _("Row %(row)s of the file has the same job number.") % {"row": row}
        row = self.email_rows.get((instance.email or "").strip().lower())
        if row is not None:
            found["email"] = _("Row %(row)s of the file has the same e-mail address.") % {"row": row}
        return found

    def save_instance(self, instance, is_create, row, **kwargs):
        """Keep the checked row for the import service; nothing is written here."""
        self.row_unchanged = False
        if is_create:
            self.creates.append(instance)
            return
        loaded = self.loaded[instance.pk]
        changes = {
            name: (self._loaded_value(name, was), getattr(instance, name))
            for (name, attname), was in zip(UPDATABLE, loaded, strict=True)
            if _current(instance, attname) != was
        }
        if not changes:
            self.row_unchanged = True  # reported as skipped, not written
            return
        self.row_changes = changes
        self.updates.append((instance, changes))

    def _loaded_value(self, name: str, value):
        """A field's value as loaded, for the audit log (a related row for a foreign key)."""
        if name == "department":
            return self.department_by_pk.get(value)
        if name == "host":
            return self.subject_by_pk.get(value)
        return value

    def after_import_row(self, row, row_result, **kwargs):
        if self.row_unchanged and row_result.import_type == RowResult.IMPORT_TYPE_UPDATE:
            row_result.import_type = RowResult.IMPORT_TYPE_SKIP

    def import_row(self, row, instance_loader, **kwargs):
        index = kwargs.get("row_number", 0)
        self.row_number = index + 1  # as the spreadsheet numbers it: the header is row 1
        self.row_instance, self.row_changes = None, {}
        result = super().import_row(row, instance_loader, **kwargs)
        self.report.rows.append(self._report_row(row, result))
        if self.progress is not None and index % PROGRESS_EVERY == 0:
            self.progress(index, self.total_rows)
        return result

    def _report_row(self, row, result) -> ReportRow:
        headers = [header for header, _label in self.report.columns]
        index_of = {FIELD_OF_COLUMN[header]: index for index, header in enumerate(headers)}
        instance = self.row_instance
        kind = result.import_type
        if kind in (RowResult.IMPORT_TYPE_INVALID, RowResult.IMPORT_TYPE_ERROR) or instance is None:
            cells = ["" if row.get(header) is None else str(row.get(header)) for header in headers]
        else:
            cells = [self.shown(FIELD_OF_COLUMN[header], self._value_of(instance, FIELD_OF_COLUMN[header]))
                     for header in headers]  # fmt: skip
        old = {
            index_of[name]: self.shown(name, was) for name, (was, _now) in self.row_changes.items() if name in index_of
        }
        errors: dict[int | None, list[str]] = {}
        if result.validation_error is not None:
            for name, messages in result.validation_error.message_dict.items():
                errors.setdefault(index_of.get(name), []).extend(messages)
        for error in result.errors:
            errors.setdefault(None, []).append(_("This row could not be read: %(error)s") % {"error": error.error})
        return ReportRow(number=self.row_number, kind=kind, cells=cells, old=old, errors=errors)

    @staticmethod
    def _value_of(instance: Subject, name: str):
        if name in ("department", "host"):
            return instance._meta.get_field(name).get_cached_value(instance, None)
        return getattr(instance, name)

    def shown(self, name: str, value) -> str:
        """A field's value as the preview shows it."""
        if value is None or value == "":
            return ""
        if name == "department":
            return value.name
        if name == "host":
            return value.job_number
        if name == "subject_type":
            return str(SubjectType(value).label) if value in SubjectType.values else str(value)
        if isinstance(value, bool):
            return str(YES if value else NO)
        if isinstance(value, datetime.datetime):
            return timezone.localtime(value, self.zone).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, datetime.date):
            return value.isoformat()
        return str(value)

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None, collect_failed_rows=False,
                    rollback_on_validation_errors=False, **kwargs):  # fmt: skip
        # All or nothing: the rows are written only when every row is valid.
        result = super().import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=raise_errors,
            use_transactions=True,
            collect_failed_rows=collect_failed_rows,
            rollback_on_validation_errors=True,
            **kwargs,
        )
        if not dry_run and not result.has_errors() and not result.has_validation_errors():
            try:
                subject_import_apply(
                    company=self.company,
                    actor=self.actor,
                    departments=self.new_departments,
                    creates=self.creates,
                    updates=self.updates,
                    skipped=result.totals.get(RowResult.IMPORT_TYPE_SKIP, 0),
                    file_name=kwargs.get("file_name") or "",
                )
            except Exception as exc:  # e.g. a job number taken meanwhile: nothing was written
                self.handle_import_error(result, exc, raise_errors)
        self.new_departments, self.creates, self.updates = [], [], []
        for error in result.base_errors:
            problem = error.error
            self.report.file_errors.extend(problem.messages if isinstance(problem, ValidationError) else [str(problem)])
        return result
