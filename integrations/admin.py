"""Admin for webhooks: endpoints (secret shown once, rotate, test ping) and the delivery log
(redeliver). Every role reads; admins and owners write."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from integrations import api_keys, services
from integrations.models import (
    ApiKey,
    ApiScope,
    HostSettings,
    VisitorArrival,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookType,
)
from kangaroo.admin import (
    AdminsOnlyMixin,
    ReadOnlyAdminMixin,
    TenantAdminMixin,
    add_service_error,
    admin_company,
    adopt,
)
from kangaroo.errors import KangarooError


def show_secret(model_admin, request, *, intro, secret: str, element_id: str, warning) -> None:
    """A secret in a message box of its own with a copy button, shown this once."""
    box = format_html(
        '<div class="device-key-box"><p class="device-key-intro">{intro}</p>'
        '<code class="device-key" id="{id}">{secret}</code>'
        '<button type="button" class="button copy-key" data-copy-target="{id}" data-copied="{copied}">'
        "{copy}</button>"
        '<p class="device-key-warning">{warning}</p></div>',
        intro=intro,
        id=element_id,
        secret=secret,
        copy=_("Copy"),
        copied=_("Copied"),
        warning=warning,
    )
    model_admin.message_user(request, box, messages.SUCCESS)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("event types"), choices=WebhookType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "is_active"]

    def clean(self):
        data = super().clean()
        # The service's own checks, shown in place (the URL is checked again when saved and sent).
        if "url" in data and (self.instance.pk is None or data["url"] != self.instance.url):
            try:
                services.webhook_url_check(data["url"])
            except KangarooError as exc:
                add_service_error(self, exc, "url")
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AdminsOnlyMixin, TenantAdminMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "url", "types", "is_active", "failing_since", "disabled_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["failing_since", "disabled_at", "previous_secret_until", "created_at", "updated_at"]
    actions = ["send_test_ping", "rotate_secret"]

    @admin.display(description=_("event types"))
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types or [])

    def save_model(self, request, obj, form, change):
        fields = ["url", "description", "event_types", "is_active"]
        data = {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}
        company = obj.company if change else (admin_company(request) or obj.company)
        if change:
            data = {name: value for name, value in data.items() if name in form.changed_data}
            saved = services.webhook_endpoint_update(company=company, actor=request.user, endpoint=obj, **data)
        else:
            saved, secret = services.webhook_endpoint_create(company=company, actor=request.user, **data)
            self._show_secret(request, saved, secret)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(company=obj.company, actor=request.user, endpoint=obj)

    def _show_secret(self, request, endpoint: WebhookEndpoint, secret: str) -> None:
        show_secret(
            self,
            request,
            intro=format_html(str(_("The signing secret of “{url}”: give it to the receiver.")), url=endpoint.url),
            secret=secret,
            element_id=f"webhook-secret-{endpoint.pk}",
            warning=_("It will not be shown again. Copy it now; if it is lost, rotate the secret."),
        )

    @admin.action(description=_("Send a test ping"), permissions=["change"])
    def send_test_ping(self, request, queryset):
        for endpoint in queryset:
            services.webhook_ping(company=endpoint.company, actor=request.user, endpoint=endpoint)
        self.message_user(
            request,
            _("Test pings queued: %(count)d. The delivery log shows how they went.") % {"count": queryset.count()},
            messages.SUCCESS,
        )

    @admin.action(description=_("Rotate the secret (the old one keeps signing for 24 hours)"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint, secret = services.webhook_secret_rotate(
                company=endpoint.company, actor=request.user, endpoint=endpoint
            )
            self._show_secret(request, endpoint, secret)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AdminsOnlyMixin, ReadOnlyAdminMixin, TenantAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at", "event_type", "endpoint", "status", "attempts", "response_status", "duration_ms",
        "last_attempt_at", "next_attempt_at",
    ]  # fmt: skip
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["message_id"]
    list_select_related = ["endpoint"]
    actions = ["redeliver"]
    fields = [
        "endpoint", "message_id", "event_type", "status", "attempts", "response_status", "response_excerpt",
        "error", "duration_ms", "last_attempt_at", "next_attempt_at", "retry_until", "created_at",
        "delivered_at", "body",
    ]  # fmt: skip

    def has_redeliver_permission(self, request):
        return self._is_member(request) and request.user.can_write

    @admin.action(description=_("Redeliver (same webhook-id, retried for another 24 hours)"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        for delivery in queryset:
            services.webhook_redeliver(company=delivery.company, actor=request.user, delivery=delivery)
        self.message_user(
            request, _("Deliveries queued again: %(count)d") % {"count": queryset.count()}, messages.SUCCESS
        )


class OwnersWriteMixin:
    """Every role reads; owners add, change and revoke (keys are like users)."""

    def has_add_permission(self, request):
        return super().has_add_permission(request) and request.user.can_manage_users

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and request.user.can_manage_users

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the audit log names the key


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(OwnersWriteMixin, TenantAdminMixin, admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "key_hint", "scope_list", "expires_at", "revoked_at", "last_used_at", "last_used_ip"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["key_hint", "revoked_at", "last_used_at", "last_used_ip", "created_by", "created_at"]
    actions = ["revoke"]

    @admin.display(description=_("key hint"))
    def key_hint(self, api_key: ApiKey) -> str:
        return api_key.prefix

    @admin.display(description=_("scopes"))
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes or [])

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in ("name", "scopes", "expires_at") if name in form.cleaned_data}
        company = obj.company if change else (admin_company(request) or obj.company)
        try:
            if change:
                data = {name: value for name, value in data.items() if name in form.changed_data}
                saved = api_keys.api_key_update(company=company, actor=request.user, api_key=obj, **data)
            else:
                saved, text = api_keys.api_key_create(company=company, actor=request.user, **data)
                show_secret(
                    self,
                    request,
                    intro=format_html(str(_("The API key “{name}”: give it to the integration.")), name=saved.name),
                    secret=text,
                    element_id=f"api-key-{saved.pk}",
                    warning=_("It will not be shown again. Copy it now; if it is lost, revoke it and create another."),
                )
        except KangarooError as exc:
            raise forms.ValidationError(str(exc.message)) from exc
        adopt(obj, saved)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        company = admin_company(request)

        class CheckedForm(form):
            def clean(self):
                data = super().clean()
                target = (
                    company if company is not None else (self.instance.company if self.instance.company_id else None)
                )
                try:
                    if "name" in data and target is not None:
                        api_keys._check_name(target, data["name"], exclude_pk=self.instance.pk)
                except KangarooError as exc:
                    add_service_error(self, exc, "name")
                return data

        return CheckedForm

    @admin.action(description=_("Revoke (the key stops working at once)"), permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_keys.api_key_revoke(company=api_key.company, actor=request.user, api_key=api_key)
        self.message_user(request, _("Keys revoked: %(count)d") % {"count": queryset.count()}, messages.SUCCESS)


@admin.register(HostSettings)
class HostSettingsAdmin(TenantAdminMixin, admin.ModelAdmin):
    """What each host chose for their visitors' arrival e-mails (hosts change it through the
    link in those e-mails; admins may too)."""

    list_display = ["host", "arrival_emails", "language", "updated_at"]
    list_filter = ["arrival_emails", "language"]
    search_fields = ["host__name", "host__job_number", "host__email"]
    autocomplete_fields = []
    raw_id_fields = ["host"]


@admin.register(VisitorArrival)
class VisitorArrivalAdmin(ReadOnlyAdminMixin, TenantAdminMixin, admin.ModelAdmin):
    list_display = ["sent_at", "visitor", "host_email", "visit"]
    search_fields = ["visitor__name", "host_email"]
    list_select_related = ["visitor"]
