from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportActionMixin, ImportExportMixin
from import_export.formats import base_formats

from kangaroo.admin import TenantAdmin, TenantImportExportMixin, add_service_error, adopt
from kangaroo.errors import IMPORT_INVALID, KangarooError, reason_message
from kangaroo.images import normalise_photo
from kangaroo.spreadsheets import SmartCSV, TextXLSX
from subjects import selectors, services
from subjects.models import MAX_PHOTOS_PER_SUBJECT, Department, Photo, Subject
from subjects.resources import SubjectResource


@admin.register(Department)
class DepartmentAdmin(TenantAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        if change:
            services.department_update(company=obj.company, actor=request.user, department=obj, name=obj.name)
        else:
            adopt(obj, services.department_create(company=obj.company, actor=request.user, name=obj.name))

    def delete_model(self, request, obj):
        services.department_delete(company=obj.company, actor=request.user, department=obj)


# --- Subjects ----------------------------------------------------------------------------------


class PhotoStatusFilter(admin.SimpleListFilter):
    title = _("photos")
    parameter_name = "photos"

    def lookups(self, request, model_admin):
        return [
            ("ok", _("Has a usable photo")),
            ("pending", _("Has a photo waiting for checks")),
            ("rejected", _("Has a rejected photo")),
            ("none", _("No photo")),
        ]

    def queryset(self, request, queryset):
        return selectors.filter_photo_state(queryset, self.value()) if self.value() else queryset


class VisitWindowFilter(admin.SimpleListFilter):
    title = _("visit")
    parameter_name = "visit"

    def lookups(self, request, model_admin):
        return [("current", _("Visiting now")), ("upcoming", _("Upcoming")), ("expired", _("Expired"))]

    def queryset(self, request, queryset):
        return selectors.filter_visit_state(queryset, self.value()) if self.value() else queryset


class PhotoInlineForm(forms.ModelForm):
    upload = forms.FileField(label=_("new photo"), required=False)

    class Meta:
        model = Photo
        fields = []

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("upload")
        if upload is not None:
            try:
                normalise_photo(upload)  # refuse a bad file here, as a form error
            except KangarooError as exc:
                add_service_error(self, exc, "upload")
        return cleaned

    def has_changed(self):
        return bool(self.files) and super().has_changed()


class PhotoInline(admin.TabularInline):
    model = Photo
    form = PhotoInlineForm
    extra = 1
    max_num = MAX_PHOTOS_PER_SUBJECT
    fields = ["preview", "status_text", "reason_text", "uploaded", "upload"]
    readonly_fields = ["preview", "status_text", "reason_text", "uploaded"]

    @admin.display(description=_("status"))
    def status_text(self, photo):
        return photo.get_status_display() if photo.pk else ""

    @admin.display(description=_("reason"))
    def reason_text(self, photo):
        # Reason codes read through the error registry, so a new face-engine code is shown
        # in words (and translated) as soon as it is declared.
        return reason_message(photo.reason, prefixes=("photo_", "")) if photo.reason else "—"

    @admin.display(description=_("new photo"))
    def upload(self, photo):
        # A stored photo's row is read-only (photos are replaced, not edited): its "new
        # photo" cell stays empty instead of reading "None".
        return ""

    @admin.display(description=_("uploaded at"))
    def uploaded(self, photo):
        if not photo.pk:
            return ""
        return date_format(timezone.localtime(photo.created_at, photo.company.zone), "Y-m-d H:i")

    @admin.display(description=_("photo"))
    def preview(self, photo):
        if not photo.pk:
            return ""
        url = reverse("photo-thumbnail", args=[photo.pk])
        full = reverse("photo-image", args=[photo.pk])
        return format_html('<a href="{}"><img src="{}" alt="" class="photo-preview"></a>', full, url)

    def has_change_permission(self, request, obj=None):
        return False  # photos are replaced, not edited

    def has_add_permission(self, request, obj=None):
        return request.user.can_write

    def has_delete_permission(self, request, obj=None):
        return request.user.can_write

    def has_view_permission(self, request, obj=None):
        return True


class SubjectAdminForm(forms.ModelForm):
    """Checks the same rules as the API and the import, through the subject services."""

    class Meta:
        model = Subject
        fields = services.SUBJECT_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "job_number" in self.fields:
            self.fields["job_number"].required = False
            self.fields["job_number"].help_text = _("Leave empty for a visitor or VIP to get one generated.")

    def clean(self):
        cleaned = super().clean()
        company = getattr(self.instance, "company", None) if self.instance.company_id else None
        if company is None or self.errors:
            return cleaned
        current = {f: getattr(self.instance, f) for f in services.SUBJECT_FIELDS} if self.instance.pk else {}
        data = current | {f: cleaned[f] for f in services.SUBJECT_FIELDS if f in cleaned}
        try:
            checked = services.subject_check(
                company=company, data=data, instance=self.instance if self.instance.pk else None
            )
        except KangarooError as exc:
            add_service_error(self, exc)
            return cleaned
        cleaned["job_number"] = checked["job_number"]
        return cleaned


@admin.register(Subject)
class SubjectAdmin(TenantImportExportMixin, ImportExportMixin, ExportActionMixin, TenantAdmin):
    form = SubjectAdminForm
    inlines = [PhotoInline]
    resource_classes = [SubjectResource]
    list_display = ["thumbnail", "name", "job_number", "subject_type", "department", "email", "phone", "archived"]
    list_display_links = ["thumbnail", "name"]
    list_filter = ["subject_type", "department", "archived", PhotoStatusFilter, VisitWindowFilter]
    search_fields = ["name", "job_number", "email", "phone"]
    list_select_related = ["department"]
    list_per_page = 50
    autocomplete_fields = ["host"]
    fieldsets = [
        (None, {"fields": ["subject_type", "name", "job_number", "department", "title"]}),
        (_("Contact"), {"fields": ["email", "phone"]}),
        (_("Visit"), {"fields": ["visit_start", "visit_end", "host", "purpose"], "classes": ["collapse"]}),
        (_("Other"), {"fields": ["start_date", "remark", "archived"]}),
    ]
    actions = ["archive_selected", "unarchive_selected"]

    def get_export_formats(self):
        return [SmartCSV, TextXLSX, base_formats.JSON]

    def get_import_formats(self):
        return [SmartCSV, base_formats.XLSX]

    # The uploaded file waits for the confirm step in the cache, not in a temp folder: it holds
    # personal data and must not outlive an abandoned preview.
    tmp_storage_class = "kangaroo.spreadsheets.ImportUploadStorage"

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, ValidationError):  # our own reading errors say what is wrong
            for message in e.messages:
                form.add_error("import_file", message)
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def process_result(self, result, request):
        # The confirm step imports again; if the company's data changed since the preview
        # (someone took an e-mail of the file), SubjectResource rolled everything back, and
        # the admin must say so instead of "Import finished".
        if result.has_errors() or result.has_validation_errors():
            messages.error(request, str(IMPORT_INVALID.message))
            return HttpResponseRedirect(reverse("admin:subjects_subject_import", current_app=self.admin_site.name))
        return super().process_result(result, request)

    def get_queryset(self, request):
        return selectors.with_first_photo(super().get_queryset(request))

    @admin.display(description=_("photo"))
    def thumbnail(self, subject):
        if not subject.first_photo_id:
            return "—"
        url = reverse("photo-thumbnail", args=[subject.first_photo_id])
        return format_html('<img src="{}" alt="" loading="lazy" class="photo-thumbnail">', url)

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in services.SUBJECT_FIELDS if f in form.cleaned_data}
        if change:
            changed = {f: v for f, v in data.items() if f in form.changed_data or f == "job_number"}
            adopt(obj, services.subject_update(company=obj.company, actor=request.user, subject=obj, **changed))
        else:
            adopt(obj, services.subject_create(company=obj.company, actor=request.user, **data))

    def save_formset(self, request, form, formset, change):
        if formset.model is not Photo:
            return super().save_formset(request, form, formset, change)
        subject = form.instance
        # What formset.save() would record, for the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.deleted_forms:
            if inline_form.instance.pk:
                services.photo_delete(company=subject.company, actor=request.user, photo=inline_form.instance)
                formset.deleted_objects.append(inline_form.instance)
        for inline_form in formset.forms:
            upload = inline_form.cleaned_data.get("upload") if hasattr(inline_form, "cleaned_data") else None
            if upload and inline_form not in formset.deleted_forms:
                try:
                    photo = services.photo_add(
                        company=subject.company, actor=request.user, subject=subject, upload=upload
                    )
                except KangarooError as exc:  # e.g. the 5-photo limit reached meanwhile
                    messages.error(request, str(exc.message))
                else:
                    formset.new_objects.append(photo)

    def delete_model(self, request, obj):
        services.subject_delete(company=obj.company, actor=request.user, subject=obj)

    @admin.action(description=_("Archive selected subjects"))
    def archive_selected(self, request, queryset):
        for subject in queryset:
            services.subject_archive(company=subject.company, actor=request.user, subject=subject, archived=True)

    @admin.action(description=_("Restore selected subjects from the archive"))
    def unarchive_selected(self, request, queryset):
        for subject in queryset:
            services.subject_archive(company=subject.company, actor=request.user, subject=subject, archived=False)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.can_write:
            actions.pop("archive_selected", None)
            actions.pop("unarchive_selected", None)
        return actions

    def get_search_results(self, request, queryset, search_term):
        # The host autocomplete only offers employees.
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        if request.GET.get("field_name") == "host":
            queryset = queryset.filter(subject_type="employee")
        return queryset, distinct
