import datetime

import tablib
from django import forms
from django.apps import apps as django_apps
from django.apps.registry import Apps
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources
from import_export.admin import ExportActionMixin
from import_export.formats import base_formats

from accounts.models import Company
from events.attendance import (
    AttendanceDays,
    PurgedDay,
    PurgedDayTotal,
    TimesheetRow,
    attendance_days,
    attendance_range,
    attendance_today,
    company_today,
    month_range,
    monthly_timesheet,
    purged_day_totals,
    timesheet_purged,
)
from events.charts import arrival_charts
from events.models import Event
from events.payload import event_snapshot_url
from events.unknown_admin import EventCorrectionAdminMixin
from kangaroo.admin import (
    ReadOnlyAdminMixin,
    ReportAdminMixin,
    TenantAdmin,
    TenantImportExportMixin,
    add_service_error,
)
from kangaroo.errors import KangarooError
from kangaroo.spreadsheets import SmartCSV, TextXLSX, escape_formula
from subjects.models import Department, Subject, SubjectType


class EventResource(resources.ModelResource):
    """Exactly the filtered rows and the ticked columns, read with one query; text cells
    escaped against formulas; times in the company's zone with their offset
    (`2026-04-03T09:00:00+08:00`), as HR saw them in the admin, still naming one instant for
    any program that reads the file."""

    # (column, and the field name of the export form; how to read it from a values_list row)
    COLUMNS = [
        ("id", "id"),
        ("happened_at", "happened_at"),
        ("kind", "kind"),
        ("name", "subject_name"),
        ("subject_type", "subject_type"),
        ("job_number", "subject_job_number"),
        ("department", "subject__department__name"),
        ("device", "device_name"),
        ("screen", "screen__name"),
        ("direction", "direction"),
        ("confidence", "confidence"),
    ]
    # The export form lists these columns by their names in the page's language.
    name = fields.Field(attribute="subject_name", column_name="name")
    job_number = fields.Field(attribute="subject_job_number", column_name="job_number")
    department = fields.Field(attribute="subject__department__name", column_name="department")
    device = fields.Field(attribute="device_name", column_name="device")
    column_labels = {"id": _("Event ID"), "department": _("Department")}

    class Meta:
        model = Event
        fields = ["id", "happened_at", "kind", "name", "subject_type", "job_number", "department", "device",
                  "screen", "direction", "confidence"]  # fmt: skip
        export_order = fields

    def __init__(self, company=None, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.company = company

    def get_queryset(self):
        return Event.objects.for_company(self.company)

    def export(self, queryset=None, **kwargs):
        queryset = self.get_queryset() if queryset is None else queryset
        # Platform staff (no company) export in the zone their request runs in.
        zone = self.company.zone if self.company is not None else timezone.get_current_timezone()
        selected = kwargs.get("export_fields")
        columns = [column for column in self.COLUMNS if not selected or column[0] in selected]
        rows = queryset.order_by("-happened_at", "-id").values_list(*[path for _, path in columns])
        dataset = tablib.Dataset(headers=[column for column, _ in columns])
        for row in rows.iterator(chunk_size=5000):
            dataset.append(tuple(self._cell(value, zone) for value in row))
        return dataset

    @staticmethod
    def _cell(value, zone):
        if isinstance(value, str):
            return escape_formula(value)
        if value is None:
            return ""
        if isinstance(value, datetime.datetime):
            return timezone.localtime(value, zone).isoformat(timespec="seconds")
        return value


class DepartmentFilter(admin.SimpleListFilter):
    title = _("department")
    parameter_name = "department"

    def lookups(self, request, model_admin):
        from subjects.models import Department

        company = request.user.company
        departments = Department.objects.for_company(company) if company else Department.objects.none()
        return [(d.pk, d.name) for d in departments]

    def queryset(self, request, queryset):
        return queryset.filter(subject__department_id=self.value()) if self.value() else queryset


class SubjectTypeFilter(admin.SimpleListFilter):
    """By the type the event recorded, named by its label (the column keeps the code)."""

    title = _("subject type")
    parameter_name = "subject_type"

    def lookups(self, request, model_admin):
        return SubjectType.choices

    def queryset(self, request, queryset):
        return queryset.filter(subject_type=self.value()) if self.value() in SubjectType.values else queryset


@admin.register(Event)
class EventAdmin(
    EventCorrectionAdminMixin, ReadOnlyAdminMixin, TenantImportExportMixin, ExportActionMixin, TenantAdmin
):
    """The event history: read-only; events come from devices, never typed in."""

    resource_classes = [EventResource]
    # Fits 1366 px beside the menu and the filters: the camera and its direction share a
    # column, as on the live pages; the confidence is on the event's page and in the export.
    list_display = ["happened_at", "kind", "who", "subject_job_number", "subject_type_label", "where",
                    "snapshot_link"]  # fmt: skip
    list_filter = ["kind", ("happened_at", admin.DateFieldListFilter), "screen", DepartmentFilter, SubjectTypeFilter]
    search_fields = ["subject_name", "subject_job_number"]
    list_select_related = ["screen"]
    date_hierarchy = "happened_at"
    show_full_result_count = False  # a COUNT(*) over millions of events on every page is wasted work
    # The snapshot is shown through the company-checked view, never as the file's own
    # address: media files are not served directly.
    exclude = ["snapshot", "subject_type"]
    readonly_fields = ["snapshot_link", "subject_type_label", "correction_link"]

    def get_list_display(self, request):
        # A viewer reads who passed, without the link to their face.
        shown = super().get_list_display(request)
        return shown if request.user.can_view_biometrics else [f for f in shown if f != "snapshot_link"]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.can_view_biometrics else [f for f in fields if f != "snapshot_link"]

    def get_export_formats(self):
        return [SmartCSV, base_formats.XLSX]

    @admin.display(description=_("name"), ordering="subject_name")
    def who(self, event):
        # An erased person's events still count, under no name.
        return event.who

    @admin.display(description=_("subject type"), ordering="subject_type")
    def subject_type_label(self, event):
        # The event keeps the type's code; a person reads its label.
        return SubjectType(event.subject_type).label if event.subject_type in SubjectType.values else "—"

    @admin.display(description=_("screen"), ordering="screen__name")
    def where(self, event):
        """The camera and its direction, e.g. "Main entrance · In"."""
        place = event.screen.name if event.screen_id else event.device_name or "—"
        return f"{place} · {event.get_direction_display()}" if event.direction else place

    @admin.display(description=_("snapshot"))
    def snapshot_link(self, event):
        if not event.snapshot:
            return "—"
        return format_html('<a href="{}">{}</a>', event_snapshot_url(event), _("view"))


# --- Attendance --------------------------------------------------------------------------------


class AttendanceDay(models.Model):
    """The admin index lists models only: this entry is how it links to the attendance report.

    It has no table and no objects, and lives in an app registry of its own (`Meta.apps`), so
    it needs no migration and is not a tenant model for the checks that walk every model;
    its admin serves only the report and the report's export.
    """

    class Meta:
        apps = Apps(installed_apps=[])
        app_label = "events"
        managed = False
        default_permissions = ()
        verbose_name = _("attendance")
        verbose_name_plural = _("attendance")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class ReportForm(forms.Form):
    """A report's filters, read from the query string; a platform admin, who sees every
    company's report, picks the company first."""

    def __init__(self, data, *, company: Company | None, pick_company: bool):
        super().__init__(data)
        if pick_company:
            self.fields["company"] = forms.ModelChoiceField(
                Company.objects.order_by("name"), required=False, label=_("company")
            )


class AttendanceFilterForm(ReportForm):
    """The report's filters, read from the query string (`from` and `to` as in the API)."""

    def __init__(self, data, *, company: Company | None, pick_company: bool):
        super().__init__(data, company=company, pick_company=pick_company)
        date_widget = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
        self.fields["from"] = forms.DateField(label=_("from"), required=False, widget=date_widget)
        self.fields["to"] = forms.DateField(label=_("to"), required=False, widget=date_widget)
        self.fields["department"] = forms.ModelChoiceField(
            Department.objects.for_company(company), required=False, label=_("department")
        )
        self.fields["subject_type"] = forms.ChoiceField(
            choices=[("", _("All types")), *SubjectType.choices], required=False, label=_("type")
        )
        self.fields["q"] = forms.CharField(
            required=False, max_length=100, label=_("search"), help_text=_("Name or job number contains.")
        )


def _local_time(value) -> str:
    return value.strftime("%H:%M:%S") if value else ""


def _yes_no(value: bool | None) -> str:
    return "" if value is None else gettext("yes") if value else gettext("no")


ATTENDANCE_EXPORT_HEADERS = [
    _("date"),
    _("name"),
    _("job number"),
    _("type"),
    _("department"),
    _("first in"),
    _("last out"),
    _("passes"),
    _("late"),
    _("left early"),
]


def attendance_dataset(rows: AttendanceDays, purged: list[PurgedDayTotal] = ()) -> tablib.Dataset:
    """Every row of `rows` (read in chunks), times in the company's zone, text escaped against
    spreadsheet formulas; then one row per purged day and subject type, its anonymous total
    marked in the name column (passes in their own)."""
    dataset = tablib.Dataset(headers=[str(header) for header in ATTENDANCE_EXPORT_HEADERS])
    for row in rows:
        dataset.append(
            (
                row.date.isoformat(),
                escape_formula(row.name),
                escape_formula(row.job_number),
                escape_formula(row.subject_type_label),
                escape_formula(row.department),
                _local_time(row.first_in),
                _local_time(row.last_out),
                str(row.passes),
                _yes_no(row.late),
                _yes_no(row.left_early),
            )
        )
    for total in purged:
        marked = gettext("purged (anonymous total): %(people)d person(s) recognised") % {"people": total.people}
        dataset.append((total.day.isoformat(), marked, "", escape_formula(total.subject_type_label), "", "", "",
                        str(total.passes), "", ""))  # fmt: skip
    return dataset


class TimesheetForm(ReportForm):
    """The timesheet's month (YYYY-MM, this month when left out), department and employee."""

    def __init__(self, data, *, company: Company | None, pick_company: bool):
        super().__init__(data, company=company, pick_company=pick_company)
        self.fields["month"] = forms.DateField(
            label=_("month"),
            required=False,
            input_formats=["%Y-%m"],
            widget=forms.DateInput(format="%Y-%m", attrs={"type": "month"}),
        )
        self.fields["department"] = forms.ModelChoiceField(
            Department.objects.for_company(company), required=False, label=_("department")
        )
        self.fields["employee"] = forms.ModelChoiceField(
            Subject.objects.for_company(company)
            .filter(subject_type=SubjectType.EMPLOYEE, archived=False)
            .order_by("name"),
            required=False,
            label=_("employee"),
        )


def _hours(value: float) -> str:
    return f"{value:.1f}"


TIMESHEET_EXPORT_HEADERS = [
    _("name"),
    _("job number"),
    _("department"),
    _("date"),
    _("first in"),
    _("last out"),
    _("hours"),
    _("late"),
    _("left early"),
]


def purged_mark(day: PurgedDay) -> str:
    """How a purged day reads in a timesheet: not a day present, not an absence."""
    return gettext("purged: %(people)d person-days in total") % {"people": day.people}


def timesheet_days(row: TimesheetRow, purged: list[PurgedDay]) -> list[tuple]:
    """(date, AttendanceRow or None, PurgedDay or None) for each present day and each purged day, in order."""
    days = [(day.date, day, None) for day in row.days] + [(day.day, None, day) for day in purged]
    return sorted(days, key=lambda item: item[0])


def timesheet_dataset(sheet: list[TimesheetRow], purged: list[PurgedDay] = ()) -> tablib.Dataset:
    """One row per employee and present day, and per purged day (marked, with the anonymous
    total of all employees), then the employee's month total."""
    dataset = tablib.Dataset(headers=[str(header) for header in TIMESHEET_EXPORT_HEADERS])
    for row in sheet:
        who = (escape_formula(row.name), escape_formula(row.job_number), escape_formula(row.department))
        for date, day, gone in timesheet_days(row, purged):
            if gone is not None:
                dataset.append((*who, date.isoformat(), purged_mark(gone), "", "", "", ""))
                continue
            dataset.append((*who, day.date.isoformat(), _local_time(day.first_in), _local_time(day.last_out),
                            _hours(day.hours) if day.hours is not None else "", _yes_no(day.late),
                            _yes_no(day.left_early)))  # fmt: skip
        total = gettext("month total: %(days)d days present") % {"days": row.days_present}
        if row.purged_days:
            total = gettext("month total: %(days)d days present, %(purged)d days purged (not counted)") % {
                "days": row.days_present,
                "purged": row.purged_days,
            }
        dataset.append((*who, total, "", "", _hours(row.hours), str(row.late_count), str(row.left_early_count)))
    return dataset


class AttendanceDayAdmin(ReportAdminMixin, admin.ModelAdmin):
    """The attendance report of the requester's company: filters, a page of rows, and CSV /
    XLSX export of exactly the filtered rows. Every member may read it; nothing is written."""

    PAGE_SIZE = 100
    EXPORT_FORMATS = {"csv": SmartCSV, "xlsx": TextXLSX}

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("", self.admin_site.admin_view(self.report_view), name="{}_{}_changelist".format(*info)),
            path("export/", self.admin_site.admin_view(self.export_view), name="{}_{}_export".format(*info)),
            path("timesheet/", self.admin_site.admin_view(self.timesheet_view), name="{}_{}_timesheet".format(*info)),
            path(
                "timesheet/export/",
                self.admin_site.admin_view(self.timesheet_export_view),
                name="{}_{}_timesheet_export".format(*info),
            ),
        ]

    def _filtered(self, request):
        """(company, form, rows or None, (from, to) or None) for the request's filters."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        company = self.report_company(request)
        data = request.GET.copy()
        if company is not None and not data.get("from") and not data.get("to"):
            data["from"] = data["to"] = company_today(company).isoformat()  # shown in the form
        form = AttendanceFilterForm(data, company=company, pick_company=request.user.is_platform_staff)
        if company is None or not form.is_valid():
            return company, form, None, None
        filters = form.cleaned_data
        date_from, date_to = attendance_range(company=company, date_from=filters["from"], date_to=filters["to"])
        try:
            rows = attendance_days(
                company=company,
                date_from=date_from,
                date_to=date_to,
                department=filters["department"].pk if filters["department"] else None,
                subject_type=filters["subject_type"] or None,
                q=filters["q"] or None,
            )
        except KangarooError as exc:
            add_service_error(form, exc)
            return company, form, None, None
        return company, form, rows, (date_from, date_to)

    def report_view(self, request):
        company, form, rows, period = self._filtered(request)
        page = Paginator(rows, self.PAGE_SIZE).get_page(request.GET.get("page")) if rows is not None else None
        today = None
        if company is not None and period is not None and period[0] == period[1] == company_today(company):
            department = form.cleaned_data.get("department")
            today = attendance_today(company=company, department=department.pk if department else None)
        charts = (
            arrival_charts(company=company, today_title=gettext("Today"), week_title=gettext("This week"))
            if company is not None
            else []
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_name": django_apps.get_app_config(self.opts.app_label).verbose_name,
            "title": gettext("Attendance"),
            "company": company,
            "form": form,
            "page": page,
            "period": period,
            "export_formats": list(self.EXPORT_FORMATS),
            "today": today,
            "charts": charts,
            "purged": purged_day_totals(
                company=company,
                date_from=period[0],
                date_to=period[1],
                subject_type=form.cleaned_data.get("subject_type") or None,
            )
            if period is not None
            else [],
        }
        return TemplateResponse(request, "events/attendance_report.html", context)

    # --- the monthly timesheet ----------------------------------------------------------------
    def _timesheet(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        company = self.report_company(request)
        data = request.GET.copy()
        if company is not None and not data.get("month"):
            data["month"] = company_today(company).strftime("%Y-%m")  # this month, shown in the form
        form = TimesheetForm(data, company=company, pick_company=request.user.is_platform_staff)
        if company is None or not form.is_valid():
            return company, form, None, None, []
        month = form.cleaned_data["month"]
        department = form.cleaned_data["department"].pk if form.cleaned_data["department"] else None
        subject = form.cleaned_data["employee"].pk if form.cleaned_data["employee"] else None
        sheet = monthly_timesheet(company=company, month=month, department=department, subject=subject)
        return company, form, sheet, month, timesheet_purged(company=company, month=month)

    def timesheet_view(self, request):
        company, form, sheet, month, purged = self._timesheet(request)
        single = sheet[0] if sheet is not None and len(sheet) == 1 and form.cleaned_data.get("employee") else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_name": django_apps.get_app_config(self.opts.app_label).verbose_name,
            "title": gettext("Monthly timesheet"),
            "company": company,
            "form": form,
            "sheet": sheet,
            "month": month,
            "period": month_range(month) if month else None,
            "single": single,
            "single_days": timesheet_days(single, purged) if single is not None else [],
            "purged": purged,
            "purged_people": sum(day.people for day in purged),
            "export_formats": list(self.EXPORT_FORMATS),
        }
        return TemplateResponse(request, "events/timesheet.html", context)

    def timesheet_export_view(self, request):
        file_format = self._export_format(request)
        _company, _form, sheet, month, purged = self._timesheet(request)
        if sheet is None:
            return _back_to_report(request)
        return _attachment(file_format, timesheet_dataset(sheet, purged), f"timesheet-{month:%Y-%m}")

    def export_view(self, request):
        file_format = self._export_format(request)
        company, form, rows, period = self._filtered(request)
        if rows is None:
            return _back_to_report(request)
        purged = purged_day_totals(
            company=company,
            date_from=period[0],
            date_to=period[1],
            subject_type=form.cleaned_data.get("subject_type") or None,
        )
        name = f"attendance-{period[0].isoformat()}-{period[1].isoformat()}"
        return _attachment(file_format, attendance_dataset(rows, purged), name)

    def _export_format(self, request):
        """The file format the request asks for; 404 for one the report does not offer."""
        export_format = self.EXPORT_FORMATS.get(request.GET.get("format", ""))
        if export_format is None:
            raise Http404
        return export_format()


def _back_to_report(request) -> HttpResponseRedirect:
    """The report page with the same filters: it shows what is wrong with them."""
    query = request.GET.copy()
    query.pop("format", None)
    return HttpResponseRedirect(f"../?{query.urlencode()}")


def _attachment(file_format, dataset, name: str) -> HttpResponse:
    """The dataset as a download named `name` with the format's extension."""
    response = HttpResponse(file_format.export_data(dataset), content_type=file_format.get_content_type())
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format.get_extension()}"'
    return response


admin.site.register(AttendanceDay, AttendanceDayAdmin)
