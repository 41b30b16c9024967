"""The admin side of tenancy: every company-owned ModelAdmin mixes in TenantAdminMixin.

A company user sees, picks and filters only their company's rows; the `company` field is
hidden from them and set on save. Platform superusers (no company) see every company and
choose the company of a new row. Another company's object answers 404, like a missing one.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.forms.utils import flatatt
from django.http import Http404, HttpResponseRedirect
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from import_export.forms import SelectableFieldsExportForm

from kangaroo.errors import KangarooError
from kangaroo.tenancy import is_tenant_model


def admin_company(request):
    """The company an admin request is limited to; None for platform staff (all)."""
    return None if request.user.is_platform_staff else request.user.company


def scope_for_admin(queryset, request):
    if request.user.is_platform_staff:
        return queryset
    return queryset.for_company(request.user.company)


def time_zone_label() -> str:
    """The zone times are shown and read in for this request, e.g. "Time zone: Asia/Taipei
    (UTC+08:00)" (the offset as of now, so it follows daylight saving time)."""
    offset = timezone.localtime().strftime("%z")
    return gettext("Time zone: %(zone)s (UTC%(offset)s)") % {
        "zone": timezone.get_current_timezone_name(),
        "offset": f"{offset[:3]}:{offset[3:]}" if offset else "+00:00",
    }


lazy_time_zone_label = lazy(time_zone_label, str)


def zone_note_messages(company_name: str) -> dict[str, str]:
    """The note a date-time field shows when the browser's clock is in another zone than the
    company's, for admin.js to finish with the hour count it measures: ahead or behind,
    each in the plural forms "one" and "other" (the browser's Intl.PluralRules picks one).

    It replaces Django's "You are N hours ahead of server time": the admin runs in the
    company's zone, so the time Django calls the server's is the company's."""
    names = {"company": company_name, "zone": timezone.get_current_timezone_name(), "hours": "%(hours)s"}
    messages = {}
    for form, count in (("one", 1), ("other", 2)):
        messages[f"data-ahead-{form}"] = (
            ngettext(
                "Times are in %(company)s's time zone (%(zone)s); your computer is %(hours)s hour ahead.",
                "Times are in %(company)s's time zone (%(zone)s); your computer is %(hours)s hours ahead.",
                count,
            )
            % names
        )
        messages[f"data-behind-{form}"] = (
            ngettext(
                "Times are in %(company)s's time zone (%(zone)s); your computer is %(hours)s hour behind.",
                "Times are in %(company)s's time zone (%(zone)s); your computer is %(hours)s hours behind.",
                count,
            )
            % names
        )
    return messages


class ZonedSplitDateTime(AdminSplitDateTime):
    """The admin's date and time inputs followed by the zone the typed time means, and, for
    a company's user, the note admin.js shows when their computer's clock is in another zone."""

    def __init__(self, attrs=None, *, company_name: str | None = None, zone_note: bool = True):
        super().__init__(attrs)
        self.company_name = company_name
        # False: another field of the form carries the note (`TenantAdminMixin.zone_note_fields`),
        # and this one shows none, not even Django's own.
        self.zone_note = zone_note

    def render(self, name, value, attrs=None, renderer=None):
        # One block: the inputs with the zone beside them, and the note (when there is one)
        # on its own line below, however narrow the column (a consent's row in a table).
        note = ""
        if not self.zone_note:
            note = mark_safe('<div class="zone-note-elsewhere" hidden></div>')
        elif self.company_name is not None:
            note = format_html('<div class="zone-note" hidden{}></div>', flatatt(zone_note_messages(self.company_name)))
        return format_html(
            '<div class="zoned-datetime">{}<span class="time-zone">{}</span>{}</div>',
            super().render(name, value, attrs, renderer),
            time_zone_label(),
            note,
        )


def zoned_form(form_class, company):
    """`form_class` whose date-time fields declared on the form itself (not made from a
    model field by the admin, which `TenantAdminMixin` already handles) show the zone too.
    The widgets are swapped on each form's own copy of its fields, never on the class's."""

    class ZonedForm(form_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for field in self.fields.values():
                widget = field.widget
                if isinstance(widget, AdminSplitDateTime) and not isinstance(widget, ZonedSplitDateTime):
                    field.widget = ZonedSplitDateTime(
                        attrs=widget.attrs, company_name=company.name if company is not None else None
                    )
                    field.widget.is_required = widget.is_required

    ZonedForm.__name__ = form_class.__name__
    return ZonedForm


class ZonedInlineMixin:
    """An inline whose form declares date-time fields of its own: they name the zone too."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = zoned_form(formset.form, admin_company(request))  # the formset class is new per call
        return formset


class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field filter whose choices come from the requester's company only, and
    only those the relation allows (its `limit_choices_to`, as Django's own filter and the
    form's choices apply it): a visit's host filter lists employees, not visitors."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        if not is_tenant_model(related):
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin) or related._meta.ordering or ["pk"]
        rows = scope_for_admin(related._default_manager.all(), request)
        # A forward relation's own rule; a reverse one (no Field) has none of its own.
        allowed = field.get_limit_choices_to() if isinstance(field, models.Field) else None
        if allowed:
            rows = rows.complex_filter(allowed)
        return [(row.pk, str(row)) for row in rows.order_by(*ordering)]


def add_service_error(form, exc: KangarooError, field: str | None = None) -> None:
    """Show a service's coded error on `form`: each message on the field it names when the
    form has that field, else on `field` (or the whole form). Call it from `clean()`, so
    the form checks what the service would refuse and the admin shows it in place."""
    for name, problems in (exc.fields or {field: [str(exc.message)]}).items():
        target = name if name in form.fields else field
        for problem in problems:
            form.add_error(target, ValidationError(problem, code=exc.code))


class ServiceErrorAdminMixin:
    """A coded error a service raises while saving shows as a message on the same page,
    not a 500. The forms check the same rules first (`add_service_error`); this catches what
    only the service can decide as it writes: two admins taking a box's last place, or the
    same job number, at the same moment."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except KangarooError as exc:
            self.message_user(request, str(exc.message), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def adopt(obj, saved) -> None:
    """Make the admin's unsaved `obj` the row a service saved, so the admin's messages,
    log entry and redirects that follow point at it."""
    obj.__dict__.update({key: value for key, value in saved.__dict__.items() if key != "_state"})
    obj._state.adding = False
    obj._state.db = saved._state.db


def tenant_form(form_class, company):
    """`form_class` with the row's company set before validation.

    The company field is not on the form, so Django would skip every unique constraint
    that starts with it and the database would raise instead; setting it first turns a
    duplicate into an ordinary form error.
    """

    class TenantForm(form_class):
        def _post_clean(self):
            if getattr(self.instance, "company_id", None) is None:
                self.instance.company = company
            super()._post_clean()

        def _get_validation_exclusions(self):
            exclusions = super()._get_validation_exclusions()
            exclusions.discard("company")
            return exclusions

    TenantForm.__name__ = form_class.__name__
    return TenantForm


class NotFoundAdminMixin:
    """An object outside the admin's queryset answers 404 in change, delete and history.

    Django would redirect to the index with "doesn't exist"; a plain 404 is the same
    answer for "missing" and "someone else's".
    """

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj


class TenantAdminMixin(NotFoundAdminMixin):
    """Role-aware, company-scoped admin. Viewers read; admins and owners write."""

    # The date-time fields under which the note of a computer in another zone appears; None:
    # under each. Every field renders its own note, so two fields one above the other (a
    # visit's start and end) would say the same sentence twice: such an admin names the first.
    zone_note_fields: tuple[str, ...] | None = None

    def get_queryset(self, request):
        return scope_for_admin(super().get_queryset(request), request)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(db_field, models.DateTimeField) and isinstance(
            getattr(formfield, "widget", None), AdminSplitDateTime
        ):
            company = admin_company(request)
            formfield.widget = ZonedSplitDateTime(
                attrs=formfield.widget.attrs,
                company_name=company.name if company is not None else None,
                zone_note=self.zone_note_fields is None or db_field.name in self.zone_note_fields,
            )
        return formfield

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        company = admin_company(request)
        if company is not None and is_tenant_model(self.model):
            form = tenant_form(form, company)
        # A read-only date and time (not a form field) names its zone in its help text.
        # The class is new for this request, so changing its options touches no other.
        shown_only = {
            field.name: lazy_time_zone_label()
            for field in self.model._meta.concrete_fields
            if isinstance(field, models.DateTimeField) and field.name not in form.base_fields
        }
        if shown_only:
            form._meta.help_texts = {**(form._meta.help_texts or {}), **shown_only}
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if is_tenant_model(db_field.related_model) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_for_admin(db_field.related_model._default_manager.all(), request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if is_tenant_model(db_field.related_model) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_for_admin(db_field.related_model._default_manager.all(), request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and self._is_relation(entry):
                if entry == "company" and not request.user.is_platform_staff:
                    continue
                entry = (entry, TenantRelatedFieldListFilter)
            filters.append(entry)
        return filters

    def _is_relation(self, name: str) -> bool:
        try:
            field = self.model._meta.get_field(name)
        except Exception:
            return False
        return field.is_relation

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_platform_staff or obj is not None:
            exclude.append("company")  # never moves between companies
        return exclude

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if request.user.is_platform_staff and "company" not in display:
            display.append("company")
        return display

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_platform_staff:
            obj.company = request.user.company
        super().save_model(request, obj, form, change)

    def delete_queryset(self, request, queryset):
        # One by one through delete_model, so bulk deletes go through the same service
        # (audit log, file clean-up) as a single delete.
        for obj in queryset:
            self.delete_model(request, obj)

    # --- permissions by role, not by Django's per-model permission table -------------------
    def _is_member(self, request) -> bool:
        user = request.user
        return user.is_active and user.is_staff and (user.is_superuser or user.company_id is not None)

    def has_module_permission(self, request):
        return self._is_member(request)

    def has_view_permission(self, request, obj=None):
        return self._is_member(request)

    def has_add_permission(self, request):
        return self._is_member(request) and request.user.can_write

    def has_change_permission(self, request, obj=None):
        return self._is_member(request) and request.user.can_write

    def has_delete_permission(self, request, obj=None):
        return self._is_member(request) and request.user.can_write


class AdminsOnlyMixin:
    """Pages for admins and owners only, reads included (before TenantAdminMixin in the bases):
    settings that hold credentials, such as webhook URLs, are not for viewers."""

    def has_module_permission(self, request):
        return super().has_module_permission(request) and request.user.can_write

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and request.user.can_write


class TenantAdmin(TenantAdminMixin, admin.ModelAdmin):
    pass


class ReadOnlyAdminMixin:
    """For records written only by the system (audit log, events): look, never touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReportAdminMixin(ReadOnlyAdminMixin, TenantAdminMixin):
    """The admin of a page that is not a list of rows (a report, an overview): its model
    exists only so the admin index links to it (no table, no objects), so it has none to
    list, add, change or delete. Company users read their own company; platform staff (no
    company) pick one with `?company=<id>`."""

    def get_queryset(self, request):
        return self.model._default_manager.none()

    def report_company(self, request):
        """The requester's company; for platform staff the one picked, or None."""
        company = admin_company(request)
        if company is None and request.user.is_platform_staff:
            picked = request.GET.get("company", "")
            # The company model through the user's field: the base does not import accounts.
            companies = request.user._meta.get_field("company").related_model._default_manager
            company = companies.filter(pk=picked).first() if picked.isdigit() else None
        return company


def column_label(resource, field_name: str) -> str:
    """A file column as a person reads it on the export page: the resource's own label
    (`column_labels`), else its model field's translated name; the file's header stays the
    column's stable name, which imports match."""
    labels = getattr(resource, "column_labels", {})
    if field_name in labels:
        return str(labels[field_name])
    field = resource.fields.get(field_name)
    attribute = (field.attribute if field is not None and field.attribute else field_name).split("__")[0]
    try:
        return str(resource._meta.model._meta.get_field(attribute).verbose_name).capitalize()
    except (FieldDoesNotExist, AttributeError):
        return field_name.replace("_", " ")


class ExportForm(SelectableFieldsExportForm):
    """The export form with CSV picked (the format HR opens everywhere) and columns named in
    the page's language."""

    def __init__(self, formats, resources, **kwargs):
        super().__init__(formats, resources, **kwargs)
        titles = [str(file_format().get_title()).lower() for file_format in formats]
        if "csv" in titles and "format" not in self.initial:
            self.initial["format"] = str(titles.index("csv"))

    def _get_field_label(self, resource, field_name: str) -> str:
        return column_label(resource, field_name)


class TenantImportExportMixin:
    """django-import-export on a TenantAdminMixin admin, scoped to the requester's company.

    Exports start from the admin's own (scoped, filtered, searched) changelist queryset;
    resources receive the company and actor; only writers import, and only inside a
    company (platform staff export, but never import into "no company").
    """

    skip_admin_log = True  # services write the audit log; one LogEntry per row would be slow
    export_form_class = ExportForm

    def init_request_context_data(self, request, form):
        # The export page says whether the changelist's filter applies to the file.
        context = super().init_request_context_data(request, form)
        query = request.GET.copy()
        for ordering_or_page in ("o", "p"):
            query.pop(ordering_or_page, None)
        context["export_filtered"] = bool(query)
        context["export_query"] = request.GET.urlencode()
        return context

    def get_export_resource_kwargs(self, request, **kwargs):
        return {"company": admin_company(request), "actor": request.user}

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"company": admin_company(request), "actor": request.user}

    def has_import_permission(self, request):
        return self._is_member(request) and request.user.can_write and admin_company(request) is not None

    def has_export_permission(self, request):
        return self._is_member(request)

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)


class FacesForBiometricsMixin:
    """Leaves the columns and fields that show a face (`face_fields`) out of the pages of a
    user without "view biometrics" (viewers): they read who is enrolled, not the faces, and
    the picture views would refuse them anyway."""

    face_fields: tuple[str, ...] = ()

    def _without_faces(self, request, names):
        if request.user.can_view_biometrics:
            return names
        return [name for name in names if name not in self.face_fields]

    def get_list_display(self, request):
        return self._without_faces(request, super().get_list_display(request))

    def get_list_display_links(self, request, list_display):
        links = super().get_list_display_links(request, list_display)
        if links is None:
            return links
        kept = [name for name in links if name in list_display]
        return kept or list(list_display[:1])

    def get_fields(self, request, obj=None):
        return self._without_faces(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._without_faces(request, super().get_readonly_fields(request, obj))
