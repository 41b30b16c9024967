"""Import and export of subjects with django-import-export, tenant-safe and fast.

Export: `SubjectResource.export()` reads the already-scoped, already-filtered queryset
with one `values_list` query instead of building a model instance and calling every
field's widget per row, and escapes cells that a spreadsheet would run as a formula.

Import: rows are matched by job number inside the importing company only (the company's
subjects are loaded once), validated with the same rules as the subject services, and
saved in bulk. Any invalid row rolls the whole file back.
"""

from __future__ import annotations

import tablib
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets
from import_export.formats import base_formats

from accounts.models import Company, User
from kangaroo.errors import KangarooError
from subjects.models import Department, Subject, SubjectType
from subjects.services import SubjectBatchCheck

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# (column, how to read it from a values_list row)
EXPORT_COLUMNS = [
    ("job_number", "job_number"),
    ("name", "name"),
    ("subject_type", "subject_type"),
    ("email", "email"),
    ("phone", "phone"),
    ("department", "department__name"),
    ("title", "title"),
    ("start_date", "start_date"),
    ("visit_start", "visit_start"),
    ("visit_end", "visit_end"),
    ("host_job_number", "host__job_number"),
    ("purpose", "purpose"),
    ("remark", "remark"),
    ("archived", "archived"),
]


def escape_formula(value):
    """A text cell that starts like a formula gets a leading apostrophe, which every
    spreadsheet shows as text (OWASP's advice against CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return escape_formula(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


class DepartmentByName(widgets.Widget):
    """A department by its name within the importing company; missing ones are created."""

    def __init__(self, resource: SubjectResource):
        super().__init__()
        self.resource = resource

    def clean(self, value, row=None, **kwargs):
        name = (value or "").strip()
        return self.resource.department_named(name) if name else None

    def render(self, value, obj=None, **kwargs):
        return value.name if value else ""


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


class SubjectResource(resources.ModelResource):
    department = fields.Field(attribute="department", column_name="department")
    host = fields.Field(attribute="host", column_name="host_job_number")

    class Meta:
        model = Subject
        fields = [column for column, _ in EXPORT_COLUMNS if column not in ("department", "host_job_number")]
        fields += ["department", "host"]
        export_order = [column for column, _ in EXPORT_COLUMNS]
        import_id_fields = ["job_number"]
        use_transactions = True
        use_bulk = True
        batch_size = 2000
        skip_html_diff = True
        clean_model_instances = True

    def __init__(self, company: Company | None = None, actor: User | None = None, **kwargs):
        super().__init__(**kwargs)
        self.company = company
        self.actor = actor
        self.fields["department"].widget = DepartmentByName(self)
        self.fields["host"].widget = HostByJobNumber(self)
        self.existing: dict[str, Subject] = {}
        self.departments: dict[str, Department] = {}
        self.check: SubjectBatchCheck | None = None

    # --- export --------------------------------------------------------------------------------
    def get_queryset(self):
        return Subject.objects.for_company(self.company)

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        queryset = self.get_queryset() if queryset is None else queryset
        rows = queryset.order_by().values_list(*[path for _, path in EXPORT_COLUMNS]).iterator(chunk_size=5000)
        dataset = tablib.Dataset(headers=[column for column, _ in EXPORT_COLUMNS])
        dataset.extend(tuple(_cell(value) for value in row) for row in rows)
        return dataset

    # --- import --------------------------------------------------------------------------------
    def before_import(self, dataset, **kwargs):
        missing = {"job_number", "name"} - set(dataset.headers or [])
        if missing:
            raise ValidationError(_("The file needs the columns: %(cols)s.") % {"cols": ", ".join(sorted(missing))})
        self.existing = {s.job_number: s for s in Subject.objects.for_company(self.company)}
        self.departments = {d.name.lower(): d for d in Department.objects.for_company(self.company)}
        self.check = SubjectBatchCheck(company=self.company, subjects=self.existing.values())

    def department_named(self, name: str) -> Department:
        department = self.departments.get(name.lower())
        if department is None:
            department = Department.objects.create(company=self.company, name=name)
            self.departments[name.lower()] = department
        return department

    def get_instance(self, instance_loader, row):
        return self.existing.get((row.get("job_number") or "").strip())

    def init_instance(self, row=None):
        return Subject(company=self.company)

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.attribute == "subject_type" and not (row.get("subject_type") or "").strip():
            return  # keep the model default (employee) for a blank cell
        super().import_field(field, instance, row, is_m2m, **kwargs)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        try:
            instance.full_clean(exclude=[*errors, "company", "job_number"], validate_unique=False,
                                validate_constraints=False)  # fmt: skip
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if not errors:
            try:
                self.check.check_and_claim(instance)
            except KangarooError as exc:
                errors = exc.fields or {"__all__": [str(exc.message)]}
        if errors:
            raise ValidationError(errors)

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None, collect_failed_rows=False,
                    rollback_on_validation_errors=False, **kwargs):  # fmt: skip
        # All or nothing: one invalid row rolls every row back.
        return super().import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=raise_errors,
            use_transactions=True,
            collect_failed_rows=collect_failed_rows,
            rollback_on_validation_errors=True,
            **kwargs,
        )


class SmartCSV(base_formats.CSV):
    """CSV in UTF-8 (with or without BOM) or Big5/CP950, which Excel writes on Traditional
    Chinese Windows. Read as bytes and decoded here, trying UTF-8 first: a CP950 file is
    almost never valid UTF-8, so the order decides correctly."""

    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            in_stream = decode_csv(in_stream)
        return tablib.import_set(in_stream, format="csv", **kwargs)

    def export_data(self, dataset, **kwargs):
        # A BOM so Excel opens UTF-8 (Chinese names) correctly.
        return "\ufeff" + dataset.export("csv", **kwargs)


def decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp950"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError(_("The file is neither UTF-8 nor Big5 text."))
