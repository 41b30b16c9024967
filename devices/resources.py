"""Export of devices (CSV/XLSX) from the admin, with django-import-export.

The admin hands these the rows of its changelist (scoped to the company, filtered and
searched), so an export holds exactly what the admin sees. Camera passwords are masked
and keys never leave the database. There is no import: a device is registered one by one,
because each registration issues a key that must be shown to someone.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from import_export import fields, resources

from devices.models import Box, Device, Pad, Screen, TVBox
from devices.validators import mask_camera_url
from kangaroo.spreadsheets import escape_formula

COMMON = ("id", "name", "location", "status", "last_seen_at", "software_version", "address")


class DeviceResource(resources.ModelResource):
    status = fields.Field(column_name="status", readonly=True)
    column_labels = {"status": _("status")}  # the export page's name for a column without a model field

    def __init__(self, company=None, actor=None, **kwargs):
        super().__init__(**kwargs)  # the company's rows come from the admin's queryset

    def export_field(self, field, instance, **kwargs):
        # Names and locations are typed by people: no cell may open as a formula.
        value = super().export_field(field, instance, **kwargs)
        return escape_formula(value) if isinstance(value, str) else value

    def dehydrate_status(self, device: Device) -> str:
        return device.get_status()

    def get_queryset(self):
        # Only used when no queryset is given (imports, bare export()): never all companies' rows.
        return self._meta.model.objects.none()


class BoxResource(DeviceResource):
    class Meta:
        model = Box
        fields = (*COMMON, "serial", "hardware_model", "max_screens", "gallery_cursor")
        export_order = fields


class ScreenResource(DeviceResource):
    camera_url = fields.Field(attribute="camera_url", column_name="camera_url", readonly=True)
    box = fields.Field(attribute="box__name", column_name="box", readonly=True)

    class Meta:
        model = Screen
        fields = (*COMMON, "camera_url", "direction", "box", "is_active", "camera_status")
        export_order = fields

    def dehydrate_camera_url(self, screen: Screen) -> str:
        return mask_camera_url(screen.camera_url)


class PadResource(DeviceResource):
    screen = fields.Field(attribute="screen__name", column_name="screen", readonly=True)

    class Meta:
        model = Pad
        fields = (*COMMON, "screen", "mode", "welcome_text")
        export_order = fields


class TVBoxResource(DeviceResource):
    screens = fields.Field(column_name="screens", readonly=True)

    class Meta:
        model = TVBox
        fields = (
            *COMMON,
            "screens",
            "theme",
            "greeting_employee",
            "greeting_visitor",
            "greeting_vip",
            "greet_again_after",
        )
        export_order = fields

    def dehydrate_screens(self, tvbox: TVBox) -> str:
        return ", ".join(screen.name for screen in tvbox.screens.all())
