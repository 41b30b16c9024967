"""The machines at a company's doors: recognition boxes, screens (cameras), pads and TV boxes.

Four tables sharing one abstract base (`Device`), rather than one table with a `kind`:
each kind has its own fields and, above all, its own relations (a screen is attached to a
box, a pad is bound to a screen, a TV box shows several screens), and those must point at
the right kind with a real foreign key: a pad bound to a "device" that turns out to be a
TV box is a state the database should not be able to hold. The base carries what every
device shares: name, location, its key, its last heartbeat and its status.

Status is derived from `last_seen_at` (`Device.get_status`), never by contacting a device.
`recorded_status` is only the watcher's memory of what it last announced, so that each
online -> offline change is recorded exactly once (see `devices.services`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from devices.validators import DEFAULT_GREETINGS, mask_camera_url, validate_camera_url, validate_greeting
from kangaroo.tenancy import TenantModel


class DeviceKind(models.TextChoices):
    BOX = "box", _("recognition box")
    SCREEN = "screen", _("screen")
    PAD = "pad", _("pad")
    TVBOX = "tvbox", _("TV box")


class Status(models.TextChoices):
    ONLINE = "online", _("Online")
    OFFLINE = "offline", _("Offline")
    NEVER_SEEN = "never_seen", _("Never seen")


def offline_after() -> timedelta:
    return timedelta(seconds=settings.DEVICE_OFFLINE_AFTER)


class Device(TenantModel):
    kind: str  # a DeviceKind value, set by each concrete model

    name = models.CharField(_("name"), max_length=100)
    location = models.CharField(_("location"), max_length=200, blank=True)

    # The key: the public prefix finds the row, the hash proves the secret. See devices.keys.
    key_prefix = models.CharField(_("key prefix"), max_length=32, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    key_issued_at = models.DateTimeField(_("key issued at"), null=True, editable=False)
    key_revoked_at = models.DateTimeField(_("key revoked at"), null=True, blank=True, editable=False)

    # What the last heartbeat said. Written only by heartbeats and the watcher.
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, editable=False)
    recorded_status = models.CharField(
        _("recorded status"), max_length=12, choices=Status, default=Status.NEVER_SEEN, editable=False
    )
    software_version = models.CharField(_("software version"), max_length=64, blank=True)
    address = models.GenericIPAddressField(_("address"), null=True, blank=True, editable=False)
    uptime_seconds = models.PositiveBigIntegerField(_("uptime (seconds)"), null=True, blank=True, editable=False)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "company",
                Lower("name"),
                name="%(class)s_name_unique_per_company",
                violation_error_code="device_name_taken",
                violation_error_message=_("A device of this kind with this name already exists in your company."),
            ),
            # The key names its company, so even this lookup starts with company_id.
            models.UniqueConstraint(fields=["company", "key_prefix"], name="%(class)s_key_prefix_unique"),
        ]
        indexes = [
            models.Index(fields=["company", "last_seen_at"], name="%(class)s_company_seen"),
            models.Index(fields=["company", "location"], name="%(class)s_company_location"),
            # The watcher's query runs across companies, by design: one job for everyone.
            models.Index(fields=["recorded_status", "last_seen_at"], name="%(class)s_status_seen"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_status(self, now: datetime | None = None) -> str:
        if self.last_seen_at is None:
            return Status.NEVER_SEEN
        now = now or timezone.now()
        return Status.ONLINE if self.last_seen_at >= now - offline_after() else Status.OFFLINE

    @property
    def key_is_active(self) -> bool:
        return bool(self.key_hash) and self.key_revoked_at is None

    @property
    def key_hint(self) -> str:
        """The public part of the key, to tell which key a device holds without the secret."""
        return f"kgr_{self.kind}_{self.company_id}_{self.key_prefix}_…"


BOX_MAX_SCREENS = 64  # the most cameras any box model recognises at once


class Box(Device):
    kind = DeviceKind.BOX

    serial = models.CharField(_("serial number"), max_length=100, blank=True)
    hardware_model = models.CharField(_("model"), max_length=100, blank=True)
    max_screens = models.PositiveSmallIntegerField(
        _("maximum screens"),
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(BOX_MAX_SCREENS)],
        help_text=_("How many cameras this box can recognise at once."),
    )
    # The last gallery change this box reports having applied (see the gallery feed).
    gallery_cursor = models.PositiveBigIntegerField(_("gallery cursor"), default=0, editable=False)

    class Meta(Device.Meta):
        verbose_name = _("recognition box")
        verbose_name_plural = _("recognition boxes")


class Direction(models.TextChoices):
    IN = "in", _("In")
    OUT = "out", _("Out")
    BOTH = "both", _("In and out")


class CameraStatus(models.TextChoices):
    OK = "ok", _("OK")
    NO_SIGNAL = "no_signal", _("No signal")
    ERROR = "error", _("Error")


class Screen(Device):
    """A camera. Its box reports on it in heartbeats; it is seen while the box says "ok"."""

    kind = DeviceKind.SCREEN

    camera_url = models.CharField(
        _("camera URL"),
        max_length=500,
        validators=[validate_camera_url],
        help_text=_("rtsp://user:password@host:554/stream. The password is never shown again."),
    )
    direction = models.CharField(
        _("direction"),
        max_length=4,
        choices=Direction,
        default=Direction.BOTH,
        help_text=_("For attendance: people seen here are coming in, going out, or either."),
    )
    box = models.ForeignKey(
        Box,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="screens",
        verbose_name=_("box"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    camera_status = models.CharField(
        _("camera status"), max_length=10, choices=CameraStatus, blank=True, editable=False
    )

    class Meta(Device.Meta):
        verbose_name = _("screen")
        verbose_name_plural = _("screens")

    @property
    def camera_url_masked(self) -> str:
        return mask_camera_url(self.camera_url)


class PadMode(models.TextChoices):
    CHECK_IN = "check_in", _("Check-in")
    VISITOR_REGISTRATION = "visitor_registration", _("Visitor registration")


class Pad(Device):
    kind = DeviceKind.PAD

    screen = models.ForeignKey(
        Screen,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pads",
        verbose_name=_("screen"),
        help_text=_("The camera whose recognitions this pad shows and whose door it serves."),
    )
    mode = models.CharField(_("mode"), max_length=24, choices=PadMode, default=PadMode.CHECK_IN)
    welcome_text = models.TextField(_("welcome text"), blank=True, max_length=1000)

    class Meta(Device.Meta):
        verbose_name = _("pad")
        verbose_name_plural = _("pads")


class Theme(models.TextChoices):
    LIGHT = "light", _("Light")
    DARK = "dark", _("Dark")


class TVBox(Device):
    kind = DeviceKind.TVBOX

    screens = models.ManyToManyField(
        Screen,
        blank=True,
        related_name="tv_boxes",
        verbose_name=_("screens"),
        help_text=_("The cameras whose recognitions this display greets."),
    )
    greeting_employee = models.CharField(
        _("greeting for employees"),
        max_length=300,
        default=DEFAULT_GREETINGS["employee"],
        validators=[validate_greeting],
        help_text=_("Placeholders: {name}, {company}."),
    )
    greeting_visitor = models.CharField(
        _("greeting for visitors"),
        max_length=300,
        default=DEFAULT_GREETINGS["visitor"],
        validators=[validate_greeting],
        help_text=_("Placeholders: {name}, {company}."),
    )
    greeting_vip = models.CharField(
        _("greeting for VIPs"),
        max_length=300,
        default=DEFAULT_GREETINGS["vip"],
        validators=[validate_greeting],
        help_text=_("Placeholders: {name}, {company}."),
    )
    theme = models.CharField(_("theme"), max_length=5, choices=Theme, default=Theme.LIGHT)
    greet_again_after = models.PositiveSmallIntegerField(
        _("greet a person again after (minutes)"),
        default=10,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("A person seen by several cameras, or twice in a row, is greeted once in this time."),
    )

    class Meta(Device.Meta):
        verbose_name = _("TV box")
        verbose_name_plural = _("TV boxes")


DEVICE_MODELS: dict[str, type[Device]] = {model.kind: model for model in (Box, Screen, Pad, TVBox)}


class StatusChange(models.TextChoices):
    ONLINE = "device_online", _("Came online")
    OFFLINE = "device_offline", _("Went offline")


class DeviceStatusChange(TenantModel):
    """A device came online or went offline. Append-only; the events app turns these into
    events and dashboard updates, reading them in id order."""

    device_kind = models.CharField(_("kind"), max_length=8, choices=DeviceKind)
    device_id = models.PositiveBigIntegerField(_("device id"))
    device_name = models.CharField(_("device"), max_length=100)  # kept after the device is deleted
    change = models.CharField(_("change"), max_length=16, choices=StatusChange)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("device status change")
        verbose_name_plural = _("device status changes")
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["company", "at"], name="devstatus_company_at"),
            models.Index(fields=["company", "device_kind", "device_id"], name="devstatus_company_device"),
        ]

    def __str__(self) -> str:
        return f"{self.device_name}: {self.get_change_display()}"
