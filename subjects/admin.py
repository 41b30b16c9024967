from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportActionMixin, ImportExportMixin
from import_export.formats import base_formats
from import_export.forms import ConfirmImportForm

import faces
from accounts.audit_words import actor_label
from accounts.jobs import job_start
from accounts.models import Job, JobState
from accounts.services import retention_policy_current
from kangaroo.admin import (
    FacesForBiometricsMixin,
    ServiceErrorAdminMixin,
    TenantAdmin,
    TenantImportExportMixin,
    ZonedInlineMixin,
    add_service_error,
    admin_company,
    adopt,
)
from kangaroo.errors import (
    CONSENT_NOT_IN_FORCE,
    CONSENT_REQUIRED,
    IMPORT_INVALID,
    PHOTO_INVALID,
    REGISTRY,
    KangarooError,
    reason_message,
)
from kangaroo.images import normalise_photo, open_photo
from kangaroo.jobs import JobAlreadyQueued, Retry
from kangaroo.spreadsheets import ROW_KINDS, SmartCSV, TextXLSX, date_format_hint, datetime_format_hint
from subjects import admin_uploads, imports, selectors, services
from subjects.models import MAX_PHOTOS_PER_SUBJECT, Consent, ConsentMethod, Department, Photo, Subject
from subjects.resources import SubjectResource


@admin.register(Department)
class DepartmentAdmin(ServiceErrorAdminMixin, TenantAdmin):
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
            ("unusable", _("No usable photo")),
            ("pending", _("Has a photo waiting for checks")),
            ("rejected", _("Has a rejected photo")),
            ("none", _("No photo")),
        ]

    def queryset(self, request, queryset):
        return selectors.filter_photo_state(queryset, self.value()) if self.value() else queryset


class ArchivedFilter(admin.SimpleListFilter):
    """Archived people are hidden until asked for: the list is of who is around now."""

    title = _("archived")
    parameter_name = "archived__exact"  # as Django's own boolean filter named it: old links still work

    def lookups(self, request, model_admin):
        return [("0", _("Current (not archived)")), ("1", _("Archived only")), ("all", _("Everyone"))]

    def queryset(self, request, queryset):
        value = self.value() or "0"
        if value == "all":
            return queryset
        return queryset.filter(archived=value == "1")

    def choices(self, changelist):
        current = self.value() or "0"
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }


class VisitWindowFilter(admin.SimpleListFilter):
    title = _("visit")
    parameter_name = "visit"

    def lookups(self, request, model_admin):
        return [("current", _("Visiting now")), ("upcoming", _("Upcoming")), ("expired", _("Expired"))]

    def queryset(self, request, queryset):
        return selectors.filter_visit_state(queryset, self.value()) if self.value() else queryset


def duplicate_link(photo) -> str:
    if photo.duplicate_of_id is None:
        return "—"
    url = reverse("admin:subjects_subject_change", args=[photo.duplicate_of_id])
    return format_html(
        '<a href="{}">{}</a> ({})',
        url,
        str(photo.duplicate_of),
        _("distance %(distance)s") % {"distance": f"{photo.duplicate_distance:.2f}"},
    )


# --- Consent ----------------------------------------------------------------------------------

CONSENT_PREFIX = "consents"  # the consent inline's formset prefix (Consent.subject's related name)


def consent_being_added(data) -> bool:
    """Whether a subject form's submission also records a consent (its inline's new row)."""
    try:
        initial = int(data.get(f"{CONSENT_PREFIX}-INITIAL_FORMS", 0))
        total = int(data.get(f"{CONSENT_PREFIX}-TOTAL_FORMS", 0))
    except (TypeError, ValueError):
        return False
    extra = range(initial, min(total, initial + 1))
    return any(data.get(f"{CONSENT_PREFIX}-{index}-consent_method") for index in extra)


class ConsentInlineForm(forms.ModelForm):
    """A new consent: how and when it was given, with the signed form if there is one. It
    names the company's current retention policy. (Its fields are named apart from the
    model's: the service, not the form, fills the row.)"""

    consent_method = forms.ChoiceField(
        label=_("how"),
        required=False,
        choices=[
            ("", "—"),
            (ConsentMethod.PAPER.value, ConsentMethod.PAPER.label),
            (ConsentMethod.WEB.value, ConsentMethod.WEB.label),
        ],
    )
    consent_given_at = forms.SplitDateTimeField(
        label=_("given at"), required=False, widget=AdminSplitDateTime, help_text=_("Empty: now.")
    )
    evidence_upload = forms.FileField(label=_("signed form"), required=False)

    class Meta:
        model = Consent
        fields = []

    def clean(self):
        cleaned = super().clean()
        given_at = cleaned.get("consent_given_at")
        if given_at is not None and given_at > timezone.now() + services.CONSENT_CLOCK_SKEW:
            self.add_error("consent_given_at", _("Consent cannot be given in the future."))
        upload = cleaned.get("evidence_upload")
        if upload is not None:
            try:
                open_photo(upload)  # refuse a file that is not an image here, as a form error
            except KangarooError as exc:
                add_service_error(self, exc, "evidence_upload")
            upload.seek(0)
        return cleaned

    def has_changed(self):
        return bool(self.data.get(self.add_prefix("consent_method")))


class ConsentInline(ZonedInlineMixin, admin.TabularInline):
    model = Consent
    fk_name = "subject"
    form = ConsentInlineForm
    extra = 1
    max_num = 1000
    verbose_name = _("consent")
    verbose_name_plural = _("consent to the use of their face")
    fields = [
        "consent_given_at", "consent_method", "policy_version", "recorded_by", "evidence_link", "state",
        "evidence_upload",
    ]  # fmt: skip
    readonly_fields = ["policy_version", "recorded_by", "evidence_link", "state"]

    # A recorded consent's row is read-only: these show its values in the form's columns.
    @admin.display(description=_("given at"))
    def consent_given_at(self, consent):
        return (
            date_format(timezone.localtime(consent.given_at, consent.company.zone), "Y-m-d H:i") if consent.pk else ""
        )

    @admin.display(description=_("how"))
    def consent_method(self, consent):
        return consent.get_method_display() if consent.pk else ""

    @admin.display(description=_("signed form"))
    def evidence_upload(self, consent):
        return ""

    @admin.display(description=_("policy version"))
    def policy_version(self, consent):
        if not consent.pk:
            return _("the current one")
        return f"{consent.policy.version} ({consent.get_policy_language_display()})"

    @admin.display(description=_("recorded by"))
    def recorded_by(self, consent):
        return actor_label(consent.recorded_by_repr) if consent.pk else ""

    @admin.display(description=_("evidence"))
    def evidence_link(self, consent):
        if not consent.pk:
            return ""
        if not consent.evidence:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("consent-evidence", args=[consent.pk]), _("view"))

    @admin.display(description=_("state"))
    def state(self, consent):
        if not consent.pk:
            return ""
        zone = consent.company.zone
        if consent.withdrawn_at is not None:
            return _("Withdrawn %(date)s by %(who)s") % {
                "date": date_format(timezone.localtime(consent.withdrawn_at, zone), "Y-m-d H:i"),
                "who": consent.withdrawn_by_repr,
            }
        if consent.replaced_at is not None:
            return _("Replaced %(date)s") % {
                "date": date_format(timezone.localtime(consent.replaced_at, zone), "Y-m-d H:i")
            }
        url = reverse("admin:subjects_subject_consent_withdraw", args=[consent.subject_id])
        return format_html('{} · <a href="{}">{}</a>', _("In force"), url, _("Withdraw…"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("policy", "company")

    def has_change_permission(self, request, obj=None):
        return False  # a consent is never edited: a new one replaces it, or it is withdrawn

    def has_add_permission(self, request, obj=None):
        return request.user.can_write

    def has_delete_permission(self, request, obj=None):
        return False  # the history is kept; withdrawing deletes the face data, not the record

    def has_view_permission(self, request, obj=None):
        return True


class PhotoFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """A new photo needs the subject's consent (when the company requires it): one in
        force, or one recorded in the same submission."""
        super().clean()
        uploads = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and form.cleaned_data.get("upload")
            and not self._should_delete_form(form)
        ]
        subject = self.instance
        if not uploads or not subject.company_id or not subject.company.consent_required:
            return
        if subject.pk and selectors.consent_in_force(company=subject.company, subject=subject) is not None:
            return
        if consent_being_added(self.data):
            return
        raise ValidationError(str(CONSENT_REQUIRED.message), code=CONSENT_REQUIRED.code)


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


class PhotoInline(FacesForBiometricsMixin, admin.TabularInline):
    model = Photo
    fk_name = "subject"
    form = PhotoInlineForm
    formset = PhotoFormSet
    extra = 1
    max_num = MAX_PHOTOS_PER_SUBJECT
    face_fields = ("preview",)
    fields = ["preview", "status_text", "reason_text", "possible_duplicate", "uploaded", "upload"]
    readonly_fields = ["preview", "status_text", "reason_text", "possible_duplicate", "uploaded"]

    @admin.display(description=_("status"))
    def status_text(self, photo):
        return photo.get_status_display() if photo.pk else ""

    @admin.display(description=_("reason"))
    def reason_text(self, photo):
        # Reason codes read through the error registry, so a new face-engine code is shown
        # in words (and translated) as soon as it is declared.
        if not photo.pk:
            return ""
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

    @admin.display(description=_("possible duplicate of"))
    def possible_duplicate(self, photo):
        return duplicate_link(photo)

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
class SubjectAdmin(
    ServiceErrorAdminMixin,
    FacesForBiometricsMixin,
    TenantImportExportMixin,
    ImportExportMixin,
    ExportActionMixin,
    TenantAdmin,
):
    form = SubjectAdminForm
    change_list_template = "subjects/subject_change_list.html"  # with "Search by face"; import/export extends it
    change_form_template = "admin/subjects/subject/change_form.html"  # with "Erase this person"
    inlines = [ConsentInline, PhotoInline]
    resource_classes = [SubjectResource]
    # Fits 1366 px beside the filters: the phone is on the form; archived people are hidden
    # unless the filter asks for them, and then marked by a word next to the name.
    list_display = ["thumbnail", "name_column", "job_number", "subject_type", "department", "email", "usable_photos"]
    list_display_links = ["thumbnail", "name_column"]
    face_fields = ("thumbnail",)
    list_filter = [ArchivedFilter, "subject_type", "department", PhotoStatusFilter, VisitWindowFilter]
    search_fields = ["name", "english_name", "job_number", "email", "phone"]
    list_select_related = ["department"]
    list_per_page = 50
    autocomplete_fields = ["host"]
    fieldsets = [
        (None, {"fields": ["subject_type", "name", "english_name", "job_number", "department", "title"]}),
        (_("Contact"), {"fields": ["email", "phone"]}),
        (_("Visit"), {"fields": ["visit_start", "visit_end", "host", "purpose"], "classes": ["collapse"]}),
        (_("Other"), {"fields": ["start_date", "remark", "archived"]}),
    ]
    actions = ["archive_selected", "unarchive_selected"]
    # The import/export buttons, and "Bulk photo upload" beside them.
    import_export_change_list_template = "admin/subjects/subject/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_bulk_upload": admin_company(request) is not None}
        return super().changelist_view(request, extra_context)

    def get_export_formats(self):
        return [SmartCSV, TextXLSX, base_formats.JSON]

    def get_import_formats(self):
        return imports.IMPORT_FORMATS

    # The uploaded file waits for the confirm step in the cache, not in a temp folder: it holds
    # personal data and must not outlive an abandoned preview.
    tmp_storage_class = "kangaroo.spreadsheets.ImportUploadStorage"

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, ValidationError):  # our own reading errors say what is wrong
            for message in e.messages:
                form.add_error("import_file", message)
        else:
            super().add_data_read_fail_error_to_form(form, e)

    # --- import: upload → preview (paged, in a job for big files) → confirm -----------------------
    import_template_name = "admin/subjects/subject/import.html"
    preview_template_name = "admin/subjects/subject/import_preview.html"
    PREVIEW_PAGE_SIZE = 100
    IMPORT_RETRY = Retry(max=2, backoff=(5, 30))

    def get_urls(self):
        preview = self.admin_site.admin_view(self.import_preview_view)
        status = self.admin_site.admin_view(self.import_status_view)
        withdraw = self.admin_site.admin_view(self.consent_withdraw_view)
        return [
            path("import/<str:name>/", preview, name="subjects_subject_import_preview"),
            path("import/<str:name>/status/", status, name="subjects_subject_import_status"),
            *admin_uploads.urls(self),
            path("<path:object_id>/consent/withdraw/", withdraw, name="subjects_subject_consent_withdraw"),
            *super().get_urls(),
        ]

    def get_import_context_data(self, **kwargs):
        context = super().get_import_context_data(**kwargs)
        context["date_hint"] = date_format_hint()
        context["datetime_hint"] = datetime_format_hint()
        return context

    def _preview_url(self, name: str) -> str:
        return reverse("admin:subjects_subject_import_preview", args=[name], current_app=self.admin_site.name)

    def import_action(self, request, **kwargs):
        """An upload is kept and previewed (a big file in a job), then shown page by page on
        the preview page; a form error or an unreadable small file shows on the form."""
        if request.method != "POST" or not self.has_import_permission(request):
            return super().import_action(request, **kwargs)
        form = self.create_import_form(request)
        if not form.is_valid():
            return super().import_action(request, **kwargs)
        upload = form.cleaned_data["import_file"]
        index = int(form.cleaned_data["format"])
        stored = self.write_to_tmp_storage(upload, self.get_import_formats()[index]())
        pending = imports.PendingImport(
            name=stored.name,
            company_id=request.user.company_id,
            user_id=request.user.pk,
            format=index,
            original=upload.name,
            size=upload.size,
        )
        company = admin_company(request)
        if pending.size > settings.SUBJECT_IMPORT_INLINE_MAX_BYTES:
            imports.pending_save(pending)
            job = job_start(
                company=company, actor=request.user, kind=imports.IMPORT_PREVIEW_KIND,
                func="subjects.jobs.subject_import_preview", args=(company.pk, request.user.pk, pending.name),
                key=f"import-preview-{pending.name}", retry=self.IMPORT_RETRY,
                detach=True,  # thousands of rows: the page shows progress instead of waiting
            )  # fmt: skip
            pending.preview_job = job.pk
            imports.pending_save(pending)
            return HttpResponseRedirect(self._preview_url(pending.name))
        try:
            imports.import_read(pending)
        except ValidationError:
            stored.remove()
            return super().import_action(request, **kwargs)  # shows why on the form
        imports.pending_save(pending)
        imports.import_preview(company=company, actor=request.user, pending=pending)
        return HttpResponseRedirect(self._preview_url(pending.name))

    def _pending_of(self, request, name: str) -> imports.PendingImport:
        if not self.has_import_permission(request):
            raise PermissionDenied
        pending = imports.pending_load(name)
        if pending is None or not pending.belongs_to(request.user):
            raise Http404
        return pending

    def _job(self, request, job_id: int | None) -> Job | None:
        if job_id is None:
            return None
        return Job.objects.for_company(admin_company(request)).filter(pk=job_id).first()

    def import_status_view(self, request, name):
        """How far the file's running job got, for the progress bar."""
        pending = self._pending_of(request, name)
        job = self._job(request, pending.confirm_job or pending.preview_job)
        if job is None:
            return JsonResponse({"state": "done", "done": 0, "total": 0, "percent": 100, "finished": True})
        finished = job.state in (JobState.DONE, JobState.FAILED)
        return JsonResponse(
            {
                "state": job.state,
                "state_label": str(job.get_state_display()),
                "done": job.done,
                "total": job.total,
                "percent": job.percent,
                "finished": finished,
            }
        )

    def import_preview_view(self, request, name):
        pending = self._pending_of(request, name)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import preview"),
            "opts": self.model._meta,
            "pending": pending,
            "status_url": reverse(
                "admin:subjects_subject_import_status", args=[name], current_app=self.admin_site.name
            ),
            "import_url": reverse("admin:subjects_subject_import", current_app=self.admin_site.name),
        }
        # The confirm's result, whether it ran in the request (a small file) or in a job: the
        # changelist with what was imported, or this page saying that nothing was.
        confirm_job = self._job(request, pending.confirm_job)
        confirm_over = confirm_job is None or confirm_job.state in (JobState.DONE, JobState.FAILED)
        outcome = pending.outcome
        if outcome and outcome.get("ok") and confirm_over:
            messages.success(request, self._finished_message(outcome["totals"]))
            return HttpResponseRedirect(reverse("admin:subjects_subject_changelist", current_app=self.admin_site.name))
        if (outcome and confirm_over) or (confirm_job is not None and confirm_job.state == JobState.FAILED):
            context["confirm_failed"] = (outcome or {}).get("error") or str(IMPORT_INVALID.message)
        elif not confirm_over:
            context["job"] = confirm_job
            context["job_title"] = _("Importing…")
        preview_job = self._job(request, pending.preview_job)
        if "job" not in context and preview_job is not None and preview_job.state != JobState.DONE:
            if preview_job.state == JobState.FAILED:
                context["preview_failed"] = True
            else:
                context["job"] = preview_job
                context["job_title"] = _("Checking the file…")
        report = imports.pending_report(pending)
        if "job" not in context and report is None and not context.get("preview_failed"):
            messages.error(request, gettext("This preview has expired; upload the file again."))
            return HttpResponseRedirect(context["import_url"])
        if report is not None and "job" not in context:
            show = request.GET.get("show") or ("errors" if not report.valid else "all")
            rows = report.rows_of(show)
            page = Paginator(rows, self.PREVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
            counts = report.counts()
            context.update(
                report=report,
                counts=counts,
                errors_count=counts["invalid"] + counts["error"],
                show=show,
                page=page,
                page_range=page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
                filters=self._preview_filters(counts, report.valid),
            )
            if report.valid and not context.get("confirm_failed"):
                context["confirm_form"] = ConfirmImportForm(
                    initial={
                        "import_file_name": pending.name,
                        "original_file_name": pending.original,
                        "format": pending.format,
                        "resource": 0,
                    }
                )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.preview_template_name], context)

    @staticmethod
    def _preview_filters(counts: dict, valid: bool) -> list[tuple[str, str, int]]:
        labels = {"new": _("New"), "update": _("Changed"), "skip": _("Unchanged")}
        filters = [("all", _("All rows"), sum(counts.values()))]
        if not valid:
            filters.append(("errors", _("Errors"), counts["invalid"] + counts["error"]))
        filters += [(kind, labels[kind], counts[kind]) for kind in ROW_KINDS if kind in labels and counts[kind]]
        return filters

    @staticmethod
    def _finished_message(totals: dict) -> str:
        return gettext("Import finished: %(new)s new, %(update)s updated, %(skip)s unchanged.") % totals

    def process_import(self, request, **kwargs):
        """Confirm: a small file is imported in the request, a big one in a job whose progress
        the preview page shows; either way the preview page then shows the one result page."""
        if request.method != "POST":
            return super().process_import(request, **kwargs)
        form = ConfirmImportForm(request.POST)
        if not form.is_valid():
            return super().process_import(request, **kwargs)
        pending = self._pending_of(request, form.cleaned_data["import_file_name"])
        if pending.outcome and pending.outcome.get("ok"):  # a second click after the import
            return HttpResponseRedirect(self._preview_url(pending.name))
        company = admin_company(request)
        if pending.size <= settings.SUBJECT_IMPORT_INLINE_MAX_BYTES:
            imports.import_confirm(company=company, actor=request.user, pending=pending)
            return HttpResponseRedirect(self._preview_url(pending.name))
        running = self._job(request, pending.confirm_job)
        if running is None or running.state in (JobState.DONE, JobState.FAILED):
            pending.outcome = None
            imports.pending_save(pending)
            try:
                job = job_start(
                    company=company, actor=request.user, kind=imports.IMPORT_CONFIRM_KIND,
                    func="subjects.jobs.subject_import_confirm", args=(company.pk, request.user.pk, pending.name),
                    key=f"import-{pending.name}", retry=self.IMPORT_RETRY,
                    detach=True,  # thousands of rows: the page shows progress instead of waiting
                )  # fmt: skip
            except KangarooError:  # a double click: the first one's job is already running
                return HttpResponseRedirect(self._preview_url(pending.name))
            pending = imports.pending_load(pending.name) or pending
            pending.confirm_job = job.pk
            imports.pending_save(pending)
        return HttpResponseRedirect(self._preview_url(pending.name))

    def get_queryset(self, request):
        return selectors.with_usable_photo_count(selectors.with_first_photo(super().get_queryset(request)))

    @admin.display(description=_("usable photos"), ordering="usable_photos")
    def usable_photos(self, subject):
        return subject.usable_photos

    @admin.display(description=_("name"), ordering="name")
    def name_column(self, subject):
        return format_html(
            "{}{}{}",
            subject.name,
            format_html('<span class="english-name">{}</span>', subject.english_name) if subject.english_name else "",
            format_html('<span class="archived-badge">{}</span>', _("archived")) if subject.archived else "",
        )

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
        if formset.model is Consent:
            return self._save_consents(request, form.instance, formset)
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

    def _save_consents(self, request, subject, formset):
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.extra_forms:
            if not inline_form.has_changed():
                continue
            data = inline_form.cleaned_data
            try:
                consent = services.consent_record(
                    company=subject.company,
                    actor=request.user,
                    subject=subject,
                    method=data["consent_method"],
                    policy_version=retention_policy_current(company=subject.company).version,
                    given_at=data.get("consent_given_at"),
                    evidence=data.get("evidence_upload"),
                )
            except KangarooError as exc:
                messages.error(request, str(exc.message))
            else:
                formset.new_objects.append(consent)

    def consent_withdraw_view(self, request, object_id):
        """Ask, then withdraw the subject's consent: their face data goes at once."""
        subject = self.get_object(request, unquote(object_id))  # 404 for another company's
        if subject is None:
            raise Http404
        if not request.user.can_write:
            raise PermissionDenied
        consent = selectors.consent_in_force(company=subject.company, subject=subject)
        change_url = reverse("admin:subjects_subject_change", args=[subject.pk], current_app=self.admin_site.name)
        if consent is None:
            messages.warning(request, str(CONSENT_NOT_IN_FORCE.message))
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            services.consent_withdraw(company=subject.company, actor=request.user, subject=subject)
            messages.success(
                request,
                gettext("%(name)s's consent is withdrawn; their photos, faces and snapshots are deleted.")
                % {"name": subject.name},
            )
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": subject,
            "consent": consent,
            "photos": Photo.objects.for_company(subject.company).filter(subject=subject).count(),
            "title": gettext("Withdraw the consent of %(name)s") % {"name": subject.name},
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/subjects/subject/consent_withdraw.html", context)

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


# --- Photos: what the face engine made of them ------------------------------------------------


class PhotoProblemFilter(admin.SimpleListFilter):
    title = _("face check")
    parameter_name = "problem"

    def lookups(self, request, model_admin):
        return [
            ("duplicate", _("Possible duplicate of another subject")),
            *((code, REGISTRY[code].message) for code in faces.REASONS),
            (PHOTO_INVALID.code, PHOTO_INVALID.message),
        ]

    def queryset(self, request, queryset):
        if self.value() == "duplicate":
            return queryset.filter(duplicate_of__isnull=False)
        if self.value():
            return queryset.filter(reason=self.value())
        return queryset


@admin.register(Photo)
class PhotoAdmin(FacesForBiometricsMixin, TenantAdmin):
    """Every photo with its face check: status, reason in words, quality, and a possible
    duplicate (the face matched another subject). "Re-enrol all photos" runs the face engine
    on every photo of the company again, as a job (progress on the Jobs page)."""

    change_list_template = "admin/subjects/photo/change_list.html"
    list_display = ["preview", "subject", "status", "reason_words", "quality", "possible_duplicate", "enrolled_at"]
    list_display_links = ["preview"]
    face_fields = ("preview",)
    list_filter = ["status", PhotoProblemFilter]
    search_fields = ["subject__name", "subject__job_number"]
    list_select_related = ["subject", "duplicate_of"]
    list_per_page = 50
    exclude = ["embedding", "image", "thumbnail"]

    @admin.display(description=_("photo"))
    def preview(self, photo):
        url = reverse("photo-thumbnail", args=[photo.pk])
        return format_html('<img src="{}" alt="" loading="lazy" class="photo-thumbnail">', url)

    @admin.display(description=_("reason"), ordering="reason")
    def reason_words(self, photo):
        return photo.reason_text or "—"

    @admin.display(description=_("possible duplicate of"), ordering="duplicate_distance")
    def possible_duplicate(self, photo):
        return duplicate_link(photo)

    def has_add_permission(self, request):
        return False  # photos are added on their subject's page

    def has_change_permission(self, request, obj=None):
        return False  # the face engine writes them; they are replaced, not edited

    def delete_model(self, request, obj):
        services.photo_delete(company=obj.company, actor=request.user, photo=obj)

    def get_urls(self):
        view = self.admin_site.admin_view(self.reenrol_view)
        return [path("reenrol/", view, name="subjects_photo_reenrol"), *super().get_urls()]

    def can_reenrol(self, request) -> bool:
        return admin_company(request) is not None and request.user.can_write

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_reenrol": self.can_reenrol(request)}
        return super().changelist_view(request, extra_context)

    def reenrol_view(self, request):
        if request.method != "POST" or not self.can_reenrol(request):
            raise PermissionDenied
        try:
            job = services.photos_reenrol_start(company=request.user.company, actor=request.user)
        except JobAlreadyQueued:
            messages.warning(request, _("A re-enrolment of this company's photos is already under way."))
            return HttpResponseRedirect(reverse("admin:accounts_job_changelist"))
        messages.success(
            request, _("Re-enrolling %(count)d photos: follow the progress here.") % {"count": job.total or 0}
        )
        return HttpResponseRedirect(reverse("admin:accounts_job_change", args=[job.pk]))
