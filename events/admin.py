from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export import resources
from import_export.admin import ExportActionMixin
from import_export.formats import base_formats

from events.models import Event
from kangaroo.admin import TenantAdmin, TenantImportExportMixin
from subjects.resources import SmartCSV, escape_formula


class EventResource(resources.ModelResource):
    """Exactly the filtered rows, read with one query; text cells escaped against formulas."""

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

    class Meta:
        model = Event
        fields = ["id"]

    def __init__(self, company=None, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.company = company

    def get_queryset(self):
        return Event.objects.for_company(self.company)

    def export(self, queryset=None, **kwargs):
        import tablib

        queryset = self.get_queryset() if queryset is None else queryset
        rows = queryset.order_by("-happened_at", "-id").values_list(*[path for _, path in self.COLUMNS])
        dataset = tablib.Dataset(headers=[column for column, _ in self.COLUMNS])
        for row in rows.iterator(chunk_size=5000):
            dataset.append(
                tuple(
                    "" if value is None else value.isoformat() if hasattr(value, "isoformat") else escape_formula(value)
                    for value in row
                )
            )
        return dataset


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


@admin.register(Event)
class EventAdmin(TenantImportExportMixin, ExportActionMixin, TenantAdmin):
    """The event history: read-only; events come from devices, never typed in."""

    resource_classes = [EventResource]
    list_display = ["happened_at", "kind", "subject_name", "subject_job_number", "subject_type", "screen",
                    "direction", "confidence_percent", "snapshot_link"]  # fmt: skip
    list_filter = ["kind", ("happened_at", admin.DateFieldListFilter), "screen", DepartmentFilter, "subject_type"]
    search_fields = ["subject_name", "subject_job_number"]
    list_select_related = ["screen"]
    date_hierarchy = "happened_at"
    show_full_result_count = False  # a COUNT(*) over millions of events on every page is wasted work

    def get_export_formats(self):
        return [SmartCSV, base_formats.XLSX]

    @admin.display(description=_("confidence"), ordering="confidence")
    def confidence_percent(self, event):
        return f"{event.confidence:.0%}" if event.confidence is not None else "—"

    @admin.display(description=_("snapshot"))
    def snapshot_link(self, event):
        if not event.snapshot:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("event-snapshot", args=[event.pk]), _("view"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
