"""Admin for devices: changelists with status badges, filters and export; keys shown once.

Status in lists and filters comes from stored heartbeat times: no page ever contacts a
device. A key is shown in a success message right after it is issued (registration or
"issue a new key") and never again; only its hash is stored.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.db.models import Count
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX

from devices import resources, selectors, services
from devices.models import Box, Device, Pad, Screen, Status, TVBox
from devices.validators import mask_camera_url, unmask_camera_url
from kangaroo.admin import (
    ServiceErrorAdminMixin,
    TenantAdminMixin,
    TenantImportExportMixin,
    add_service_error,
    admin_company,
    adopt,
)
from kangaroo.errors import KangarooError


class StatusListFilter(admin.SimpleListFilter):
    """By the time of the last heartbeat, in SQL: one query whatever the number of devices."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Status.choices

    def queryset(self, request, queryset):
        if self.value() in Status.values:
            return selectors.with_status(queryset, self.value())
        return queryset


class GalleryLagListFilter(admin.SimpleListFilter):
    """Boxes behind the gallery for longer than the settings allow (what the admin home and
    the live dashboard count), in SQL."""

    title = _("gallery")
    parameter_name = "gallery"

    def lookups(self, request, model_admin):
        return [("lagging", _("lagging"))]

    def queryset(self, request, queryset):
        if self.value() == "lagging":
            return selectors.only_lagging(queryset)
        return queryset


class PadBoxListFilter(admin.SimpleListFilter):
    """Pads by the box of their screen; the choices are the requester's company's boxes."""

    title = _("box")
    parameter_name = "box"

    def lookups(self, request, model_admin):
        company = admin_company(request)
        boxes = Box.objects.all() if company is None else Box.objects.for_company(company)  # tenant: staff see all
        return [(str(box.pk), str(box)) for box in boxes.order_by("name")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(screen__box_id=self.value())
        return queryset


class DeviceAdmin(ServiceErrorAdminMixin, TenantImportExportMixin, TenantAdminMixin, ExportMixin, admin.ModelAdmin):
    """What the four kinds share. Writes go through `devices.services`."""

    export_formats = [CSV, XLSX]
    search_fields = ["name", "location"]
    list_filter = [StatusListFilter, "location"]
    actions = ["rotate_key", "revoke_key"]
    # Fields the services take; everything else on a device is written by heartbeats.
    service_fields: tuple[str, ...] = ()
    reported_fields = ["status_badge", "last_seen_at", "software_version", "address", "uptime_seconds"]
    key_fields = ["key_shown", "key_issued_at", "key_revoked_at"]

    # --- columns ----------------------------------------------------------------------------
    @admin.display(description=_("status"))
    def status_badge(self, device: Device):
        status = Status(device.get_status()) if device.pk else Status.NEVER_SEEN
        # Colours live in static/kangaroo/admin.css: the Content-Security-Policy allows no
        # inline style.
        return format_html('<span class="device-status device-status-{}">{}</span>', status.value, status.label)

    @admin.display(description=_("last seen"), ordering="last_seen_at")
    def last_seen(self, device: Device):
        return naturaltime(device.last_seen_at) if device.last_seen_at else _("never")

    @admin.display(description=_("key hint"))
    def key_shown(self, device: Device) -> str:
        return device.key_hint

    @admin.display(description=_("key"), boolean=True)
    def key_active(self, device: Device) -> bool:
        return device.key_is_active

    # --- forms ------------------------------------------------------------------------------
    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if "software_version" not in self.service_fields:
            readonly.append("software_version")
        if obj is not None:  # nothing has been reported, and no key issued, before it exists
            readonly += [f for f in [*self.reported_fields, *self.key_fields] if f not in readonly]
        return readonly

    # --- writes through the services --------------------------------------------------------
    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in self.service_fields if name in form.cleaned_data}
        if change:
            data = {name: value for name, value in data.items() if name in form.changed_data}
            saved = services.device_update(company=obj.company, actor=request.user, device=obj, **data)
        else:
            saved, key = services.device_create(company=obj.company, actor=request.user, kind=obj.kind, **data)
            self._show_key(request, saved, key)
        adopt(obj, saved)

    def save_related(self, request, form, formsets, change):
        # Many-to-many fields were saved by the service (audited); only inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.device_delete(company=obj.company, actor=request.user, device=obj)

    def _show_key(self, request, device: Device, key: str) -> None:
        # In a box of its own: the key in monospace that wraps, a copy button (wired by
        # kangaroo/admin.js: no inline script), and the warning that it will not be shown again.
        element_id = f"device-key-{device.kind}-{device.pk}"
        box = format_html(
            '<div class="device-key-box"><p class="device-key-intro">{intro}</p>'
            '<code class="device-key" id="{id}">{key}</code>'
            '<button type="button" class="button copy-key" data-copy-target="{id}" data-copied="{copied}">'
            "{copy}</button>"
            '<p class="device-key-warning">{warning}</p></div>',
            intro=format_html(str(_("The key of “{name}”: enter it on the device.")), name=device.name),
            id=element_id,
            key=key,
            copy=_("Copy"),
            copied=_("Copied"),
            warning=_("It will not be shown again. Copy it now; if it is lost, issue a new key."),
        )
        self.message_user(request, box, messages.SUCCESS)

    # --- actions ----------------------------------------------------------------------------
    @admin.action(description=_("Issue a new key (the old key stops working)"), permissions=["change"])
    def rotate_key(self, request, queryset):
        for device in queryset:
            device, key = services.device_key_rotate(company=device.company, actor=request.user, device=device)
            self._show_key(request, device, key)

    @admin.action(
        description=_("Revoke the key (the device is refused until a new key is issued)"), permissions=["change"]
    )
    def revoke_key(self, request, queryset):
        count = 0
        for device in queryset:
            services.device_key_revoke(company=device.company, actor=request.user, device=device)
            count += 1
        self.message_user(request, _("Keys revoked: %(count)d") % {"count": count}, messages.SUCCESS)


# --- boxes ------------------------------------------------------------------------------------


class BoxForm(forms.ModelForm):
    class Meta:
        model = Box
        fields = ["company", *services.BOX_FIELDS]

    def clean(self):
        cleaned = super().clean()
        limit = cleaned.get("max_screens")
        if self.instance.pk and limit is not None and limit != self.instance.max_screens:
            try:
                services.box_screen_limit_check(box=self.instance, limit=limit)
            except KangarooError as exc:
                add_service_error(self, exc, "max_screens")
        return cleaned


@admin.register(Box)
class BoxAdmin(DeviceAdmin):
    form = BoxForm
    resource_classes = [resources.BoxResource]
    service_fields = services.BOX_FIELDS
    list_display = [
        "name",
        "status_badge",
        "last_seen",
        "location",
        "serial",
        "screens_in_use",
        "gallery",
        "software_version",
        "key_active",
    ]
    list_filter = [StatusListFilter, GalleryLagListFilter, "location"]
    reported_fields = [*DeviceAdmin.reported_fields, "gallery_cursor", "gallery"]

    def get_queryset(self, request):
        return selectors.with_gallery_lag(super().get_queryset(request).annotate(screen_count=Count("screens")))

    @admin.display(description=_("gallery"))
    def gallery(self, box: Box):
        """How far behind the gallery the box is, by its last heartbeat's cursor."""
        if box.pk is None:
            return "-"
        lag = selectors.gallery_lag(box)
        if not lag.changes:
            return _("up to date")
        text = ngettext("%(count)d change behind", "%(count)d changes behind", lag.changes) % {"count": lag.changes}
        if lag.since is not None:
            text = _("%(behind)s, since %(when)s") % {"behind": text, "when": naturaltime(lag.since)}
        if lag.lagging:
            return format_html('<span class="device-status device-status-lagging">{}</span> {}', _("lagging"), text)
        return text

    @admin.display(description=_("screens"))
    def screens_in_use(self, box: Box) -> str:
        return f"{box.screen_count} / {box.max_screens}"


# --- screens ----------------------------------------------------------------------------------


class ScreenForm(forms.ModelForm):
    """The stored camera password is never sent to the browser: the form shows it masked,
    and a masked password submitted back means "keep the stored one"."""

    class Meta:
        model = Screen
        fields = ["company", *services.SCREEN_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["camera_url"] = mask_camera_url(self.instance.camera_url)

    def clean_camera_url(self):
        value = self.cleaned_data["camera_url"]
        if self.instance.pk:
            value = unmask_camera_url(value, self.instance.camera_url)
        return value

    def clean(self):
        cleaned = super().clean()
        box = cleaned.get("box")
        if box is not None and box.pk != self.instance.box_id:
            try:
                services.box_screen_limit_check(box=box, screen=self.instance)
            except KangarooError as exc:
                add_service_error(self, exc, "box")
        return cleaned


@admin.register(Screen)
class ScreenAdmin(DeviceAdmin):
    form = ScreenForm
    resource_classes = [resources.ScreenResource]
    service_fields = services.SCREEN_FIELDS
    list_display = ["name", "status_badge", "last_seen", "location", "box", "direction", "camera", "is_active"]
    list_filter = [StatusListFilter, "location", "box", "direction", "is_active"]
    list_select_related = ["box"]
    reported_fields = [*DeviceAdmin.reported_fields, "camera_status"]

    @admin.display(description=_("camera URL"))
    def camera(self, screen: Screen) -> str:
        return mask_camera_url(screen.camera_url)


# --- pads -------------------------------------------------------------------------------------


@admin.register(Pad)
class PadAdmin(DeviceAdmin):
    resource_classes = [resources.PadResource]
    service_fields = services.PAD_FIELDS
    list_display = ["name", "status_badge", "last_seen", "location", "screen", "mode"]
    list_filter = [StatusListFilter, "location", PadBoxListFilter, "screen", "mode"]
    list_select_related = ["screen"]


# --- TV boxes ---------------------------------------------------------------------------------


@admin.register(TVBox)
class TVBoxAdmin(DeviceAdmin):
    resource_classes = [resources.TVBoxResource]
    service_fields = services.TVBOX_FIELDS
    list_display = ["name", "status_badge", "last_seen", "location", "screen_names", "theme"]
    list_filter = [StatusListFilter, "location", "theme"]
    filter_horizontal = ["screens"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("screens")

    @admin.display(description=_("screens"))
    def screen_names(self, tvbox: TVBox) -> str:
        return ", ".join(screen.name for screen in tvbox.screens.all())
