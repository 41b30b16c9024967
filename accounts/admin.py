import json

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_rq.models import Dashboard as RQDashboard
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.audit_words import actor_label, audit_action_label
from accounts.models import RETENTION_FIELDS, AuditLog, Company, Job, User, job_kind_name, normalise_language
from accounts.services import RETENTION_POLICY_MAX_CHARS
from kangaroo import errors
from kangaroo.admin import NotFoundAdminMixin, ReadOnlyAdminMixin, TenantAdminMixin, add_service_error
from kangaroo.errors import KangarooError


def _policy_field_name(language: str) -> str:
    """The form field of the policy's text in `language`, unless that is the main one
    (which `retention_policy` holds)."""
    return "retention_policy_" + normalise_language(language).replace("-", "_")


POLICY_TEXT_FIELDS = {normalise_language(code): _policy_field_name(code) for code, _name in settings.LANGUAGES}


def _html_lang(language: str) -> str:
    """A language code as HTML's `lang` writes it (zh-hant is zh-Hant)."""
    base, _dash, script = language.partition("-")
    return f"{base}-{script.title()}" if len(script) == 4 else language


def _policy_textarea(language: str = "", **kwargs) -> forms.CharField:
    # `lang` tells the browser (spelling, fonts, screen readers) which language the text is in.
    attrs = {"rows": 8, **({"lang": _html_lang(language)} if language else {})}
    return forms.CharField(
        widget=forms.Textarea(attrs=attrs), max_length=RETENTION_POLICY_MAX_CHARS, required=False, **kwargs
    )


class CompanyForm(forms.ModelForm):
    """The company's settings, with its retention policy's text in each language: saving a
    change of any of them (or of the main language) makes the policy's next version.

    `retention_policy` holds the text in the main language; each other language has its
    own field (the admin drops the main language's, see `CompanyAdmin.get_form`)."""

    retention_policy_language = forms.ChoiceField(
        label=_("Main language of the policy"),
        choices=settings.LANGUAGES,
        required=False,
        help_text=_("Its text is shown to people whose language the policy has no text in."),
    )
    retention_policy = _policy_textarea(
        label=_("retention policy"),
        help_text=_(
            "What people are shown when they are asked for consent. Each saved change, in any language, becomes a "
            "new version; a consent names the version and the language the person read it in."
        ),
    )

    class Meta:
        model = Company
        fields = ["name", "slug", *services.COMPANY_EDITABLE_FIELDS[1:], "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy_change: dict | None = None
        if not self.instance.pk or "retention_policy" not in self.fields:
            return
        self.policy = services.retention_policy_current(company=self.instance)
        self.fields["retention_policy_language"].initial = self.policy.language
        self.fields["retention_policy"].initial = self.policy.text
        self.fields["retention_policy"].widget.attrs["lang"] = _html_lang(self.policy.language)
        self.fields["retention_policy"].label = format_lazy(
            _("Retention policy in {language}"), language=self.policy.text_for(self.policy.language).language_name
        )
        for code, field in POLICY_TEXT_FIELDS.items():
            if field in self.fields:
                self.fields[field].initial = self.policy.translations.get(code, "")

    def clean(self):
        cleaned = super().clean()
        names = ["retention_policy_language", "retention_policy", *POLICY_TEXT_FIELDS.values()]
        if not self.instance.pk or not any(name in self.changed_data for name in names):
            return cleaned
        texts = {self.policy.language: cleaned.get("retention_policy", "")}
        texts |= {code: cleaned.get(field, "") for code, field in POLICY_TEXT_FIELDS.items() if field in self.fields}
        change = {"texts": texts, "language": cleaned.get("retention_policy_language") or None}
        try:
            services.retention_policy_texts_check(current=self.policy, **change)
        except KangarooError as exc:
            add_service_error(self, exc, field="retention_policy")
        else:
            self.policy_change = change
        return cleaned


def _declare_policy_text_fields() -> None:
    """A text field for each language, declared after the class because the languages
    come from settings."""
    for (code, name), field in zip(settings.LANGUAGES, POLICY_TEXT_FIELDS.values(), strict=True):
        CompanyForm.base_fields[field] = CompanyForm.declared_fields[field] = _policy_textarea(
            normalise_language(code),
            label=format_lazy(_("Retention policy in {language}"), language=name),
            help_text=_(
                "Left empty, people reading in this language are shown the text in the main language, "
                "with a note that the policy is only available in it."
            ),
        )


_declare_policy_text_fields()


PRIVACY_FIELDS = (
    "consent_required", *RETENTION_FIELDS, "retention_policy_version", "retention_policy_language",
    "retention_policy", *POLICY_TEXT_FIELDS.values(),
)  # fmt: skip


@admin.register(Company)
class CompanyAdmin(NotFoundAdminMixin, admin.ModelAdmin):
    """Platform staff manage companies; an owner edits their own company's settings,
    its biometric privacy settings (consent, retention windows, the retention policy) among them."""

    form = CompanyForm
    list_display = ["name", "slug", "time_zone", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_platform_staff:
            return queryset
        return queryset.filter(pk=request.user.company_id)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:  # a new company starts from the policy written from its windows
            for name in ("retention_policy_language", "retention_policy", *POLICY_TEXT_FIELDS.values()):
                form.base_fields.pop(name, None)
        else:  # the main language's text is `retention_policy`
            form.base_fields.pop(POLICY_TEXT_FIELDS[services.retention_policy_current(company=obj).language], None)
        return form

    def get_readonly_fields(self, request, obj=None):
        fields = [] if request.user.is_platform_staff else ["slug", "is_active", "created_at"]
        return [*fields, "retention_policy_version"] if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        fields = self.get_fields(request, obj)
        privacy = [name for name in PRIVACY_FIELDS if name in fields]
        return [
            (None, {"fields": [name for name in fields if name not in privacy]}),
            (_("Biometric privacy"), {"fields": privacy}),
        ]

    @admin.display(description=_("current version"))
    def retention_policy_version(self, company: Company) -> str:
        policy = services.retention_policy_current(company=company)
        return _("Version %(version)s of %(date)s") % {
            "version": policy.version,
            "date": date_format(timezone.localtime(policy.created_at, company.zone), "Y-m-d H:i"),
        }

    def get_prepopulated_fields(self, request, obj=None):
        # An owner's slug is read-only: there is no field for the name to fill in.
        return super().get_prepopulated_fields(request, obj) if request.user.is_platform_staff else {}

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return request.user.is_platform_staff

    def has_change_permission(self, request, obj=None):
        return request.user.is_platform_staff or request.user.can_manage_users

    def has_delete_permission(self, request, obj=None):
        return request.user.is_platform_staff

    def save_model(self, request, obj, form, change):
        policy = form.policy_change or {}
        if change and not request.user.is_platform_staff:
            data = {
                name: form.cleaned_data[name] for name in services.COMPANY_EDITABLE_FIELDS if name in form.changed_data
            }
            services.company_update(
                company=request.user.company,
                actor=request.user,
                retention_policy_texts=policy.get("texts"),
                retention_policy_language=policy.get("language"),
                **data,
            )
            return
        super().save_model(request, obj, form, change)
        if policy:
            services.retention_policy_set(company=obj, actor=request.user, **policy)
        action = "company.update" if change else "company.create"
        services.audit_record(
            company=obj,
            actor=request.user,
            action=action,
            obj=obj,
            changes={
                name: form.cleaned_data.get(name)
                for name in form.changed_data
                if not name.startswith("retention_policy")
            },
        )


def _username_taken(form, *, company, username: str, exclude_pk=None) -> None:
    """Usernames are unique within a company only: another company's are never consulted."""
    if not username:
        return
    same = User.objects.filter(company=company, username__iexact=username)  # tenant: the user's own company
    if same.exclude(pk=exclude_pk).exists():
        form.add_error("username", str(errors.USERNAME_TAKEN.message))


class CompanyUserCreationForm(AdminUserCreationForm):
    """Django's add-user form, with the username checked inside the new user's company."""

    class Meta(AdminUserCreationForm.Meta):
        model = User

    def clean_username(self):
        return self.cleaned_data.get("username")  # checked in clean(), once the company is known

    def clean(self):
        cleaned = super().clean()
        company = self.request_user.company if self.request_user.company_id else cleaned.get("company")
        _username_taken(self, company=company, username=cleaned.get("username"))
        return cleaned


class CompanyUserChangeForm(UserChangeForm):
    """Checks the same rules as the API (one active owner stays, nobody demotes themself)."""

    class Meta(UserChangeForm.Meta):
        model = User

    def clean(self):
        cleaned = super().clean()
        if "username" in self.changed_data:
            _username_taken(
                self, company=self.instance.company, username=cleaned.get("username"), exclude_pk=self.instance.pk
            )
        if self.instance.pk and self.instance.company_id:
            data = {name: cleaned[name] for name in services.USER_EDITABLE_FIELDS if name in cleaned}
            try:
                services.user_update_check(
                    company=self.instance.company, actor=self.request_user, user=self.instance, data=data
                )
            except KangarooError as exc:
                add_service_error(self, exc)
        return cleaned


@admin.register(User)
class UserAdmin(TenantAdminMixin, DjangoUserAdmin):
    add_form = CompanyUserCreationForm
    list_display = ["username", "email", "first_name", "last_name", "role", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    company_fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email", "language")}),
        (_("Access"), {"fields": ("role", "is_active")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    company_add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "role", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ["last_login", "date_joined"]

    def get_fieldsets(self, request, obj=None):
        if request.user.is_platform_staff:
            company_fields = ("company", "role", "language") if obj is not None else ("company", "role")
            return (*super().get_fieldsets(request, obj), (_("Company"), {"fields": company_fields}))
        return self.company_fieldsets if obj is not None else self.company_add_fieldsets

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None and not request.user.is_platform_staff:
            kwargs["form"] = CompanyUserChangeForm
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user
        return form

    def get_exclude(self, request, obj=None):
        # Users keep `company` editable for platform staff, also on change.
        return [] if request.user.is_platform_staff else ["company"]

    def _can_manage(self, request):
        return self._is_member(request) and request.user.can_manage_users

    def has_add_permission(self, request):
        return self._can_manage(request)

    def has_change_permission(self, request, obj=None):
        return self._can_manage(request)

    def has_delete_permission(self, request, obj=None):
        return self._can_manage(request) and (obj is None or obj.pk != request.user.pk)

    def save_model(self, request, obj, form, change):
        if request.user.is_platform_staff:
            obj.is_staff = True
            super().save_model(request, obj, form, change)
            return
        if change:
            data = {
                name: form.cleaned_data[name] for name in services.USER_EDITABLE_FIELDS if name in form.changed_data
            }
            services.user_update(company=request.user.company, actor=request.user, user=obj, **data)
            return
        obj.company = request.user.company
        obj.is_staff = True
        super().save_model(request, obj, form, change)
        services.audit_record(
            company=obj.company, actor=request.user, action="user.create", obj=obj, changes={"role": obj.role}
        )

    def delete_model(self, request, obj):
        if request.user.is_platform_staff:
            return super().delete_model(request, obj)
        services.user_delete(company=request.user.company, actor=request.user, user=obj)


# The colon after a form's labels, as Django's own catalogue translates it (full-width in
# Chinese); held in a name so that our catalogue does not take a copy of Django's text.
LABEL_SUFFIX = ":"


class AuditActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        actions = model_admin.get_queryset(request).order_by("action").values_list("action", flat=True).distinct()
        return [(action, audit_action_label(action)) for action in actions]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, TenantAdminMixin, admin.ModelAdmin):
    """Read-only: the log is written by services, never edited by hand."""

    list_display = ["created_at", "actor_label", "action_label", "object_repr", "ip_address"]
    list_filter = [AuditActionFilter, "created_at"]
    search_fields = ["actor_repr", "action", "object_repr", "object_id"]
    list_select_related = ["object_type"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        # once_key is the log's own bookkeeping (one entry per viewer, subject and hour), not news.
        fields = [field.name for field in self.model._meta.fields if field.name != "once_key"]
        fields[fields.index("action")] = "action_label"
        fields[fields.index("actor_repr")] = "actor_label"
        fields[fields.index("changes")] = "changes_list"
        return fields

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description=_("actor name"), ordering="actor_repr")
    def actor_label(self, entry: AuditLog) -> str:
        return actor_label(entry.actor_repr)

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, entry: AuditLog) -> str:
        return audit_action_label(entry.action)

    @admin.display(description=_("changes"))
    def changes_list(self, entry: AuditLog):
        """Each changed field by its name on the form, and choice values by their label."""
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        if not changes:
            return "—"
        model = entry.object_type.model_class() if entry.object_type_id else None
        rows = []
        for name, value in changes.items():
            field = None
            if model is not None:
                try:
                    field = model._meta.get_field(name)
                except FieldDoesNotExist:
                    field = None
            label = str(field.verbose_name) if field is not None and hasattr(field, "verbose_name") else name
            choices = dict(field.flatchoices) if field is not None and getattr(field, "choices", None) else {}

            if model is Job and name == "kind":  # a job's kind by its name, as the jobs list shows it
                choices = {item: job_kind_name(item) for item in (value if isinstance(value, list) else [value])}

            def shown(item, choices=choices):
                if isinstance(item, list | dict):
                    return json.dumps(item, ensure_ascii=False)
                return str(choices.get(item, "—" if item in (None, "") else item))

            text = " → ".join(shown(v) for v in value) if isinstance(value, list) and len(value) == 2 else shown(value)
            field_name = f"{capfirst(label)}{gettext(LABEL_SUFFIX)}"
            rows.append(format_html('<li><span class="audit-field">{}</span>{}</li>', field_name, text))
        return format_html('<ul class="audit-changes">{}</ul>', format_html_join("", "{}", ((row,) for row in rows)))


class JobKindFilter(admin.SimpleListFilter):
    """By kind, each named in the page's language; only kinds the company has run."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = model_admin.get_queryset(request).order_by("kind").values_list("kind", flat=True).distinct()
        return [(kind, job_kind_name(kind)) for kind in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, TenantAdminMixin, admin.ModelAdmin):
    """The company's background jobs and how far they got; written only by the jobs."""

    list_display = ["__str__", "state", "progress", "attempts", "started_by", "created_at", "finished_at"]
    list_filter = ["state", JobKindFilter, "created_at"]
    search_fields = ["kind", "key", "error"]
    list_select_related = ["started_by"]
    date_hierarchy = "created_at"

    def get_fields(self, request, obj=None):
        # The kind by its name in the page's language rather than its stored code.
        return [("kind_name" if field.name == "kind" else field.name) for field in self.model._meta.fields] + [
            "progress"
        ]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["kind_name", "progress"]

    @admin.display(description=_("kind"), ordering="kind")
    def kind_name(self, obj: Job) -> str:
        return obj.kind_name

    @admin.display(description=_("progress"))
    def progress(self, obj: Job) -> str:
        if obj.total is None:
            text = str(obj.done) if obj.done else "–"
        else:
            text = f"{obj.done} / {obj.total} ({obj.percent or 0}%)"
        if obj.failed:
            text += " · " + _("%(count)d failed") % {"count": obj.failed}
        return text


# Kangaroo uses roles, not Django's groups; the token tables are internal bookkeeping of
# the API's deny list and must not be browsed or edited by hand. django-rq's queue
# dashboard admits every staff user and shows every company's jobs and their arguments,
# so it is not mounted: operators use `manage.py rqstats` or `rq info` instead.
admin.site.unregister(Group)
admin.site.unregister(RQDashboard)
admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


class LoginForm(AdminAuthenticationForm):
    """The admin login names the company: `username@company` (platform staff: username)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Username@company")
        self.fields["username"].widget.attrs["placeholder"] = _("e.g. mei@your-company")


admin.site.login_form = LoginForm
