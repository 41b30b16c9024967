"""What happened at the doors: recognitions, strangers, visitors outside their window, and
devices going offline or coming back.

An event keeps a copy of its subject's name, type and job number, so history reads the
same after the subject is renamed or deleted. Its snapshot image does not outlive the
subject: it is a picture of that person's face, so deleting the subject empties the
snapshot of each of their events and deletes the file (events/signals.py). Events are
deleted only with their company (whose media are purged) or through
`events.services.event_delete_many`, which deletes their snapshot files too. A device-supplied `uid`, unique per device,
makes retried posts idempotent.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from devices.models import DeviceKind, Direction
from kangaroo.tenancy import TenantModel


class EventKind(models.TextChoices):
    RECOGNIZED = "recognized", _("Recognized")
    STRANGER = "stranger", _("Stranger")
    VISITOR_OUTSIDE_WINDOW = "visitor_outside_window", _("Visitor outside their window")
    DEVICE_OFFLINE = "device_offline", _("Device went offline")
    DEVICE_ONLINE = "device_online", _("Device came online")


class Event(TenantModel):
    kind = models.CharField(_("kind"), max_length=24, choices=EventKind.choices)
    subject = models.ForeignKey(
        "subjects.Subject",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("subject"),
    )
    subject_name = models.CharField(_("name"), max_length=100, blank=True)
    subject_type = models.CharField(_("subject type"), max_length=10, blank=True)
    subject_job_number = models.CharField(_("job number"), max_length=40, blank=True)
    device_kind = models.CharField(_("device kind"), max_length=8, choices=DeviceKind.choices, blank=True)
    device_id = models.PositiveBigIntegerField(_("device id"), null=True, blank=True)
    device_name = models.CharField(_("device"), max_length=100, blank=True)
    screen = models.ForeignKey(
        "devices.Screen",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("screen"),
    )
    direction = models.CharField(_("direction"), max_length=4, choices=Direction.choices, blank=True)
    confidence = models.FloatField(_("confidence"), null=True, blank=True)
    happened_at = models.DateTimeField(_("happened at"))
    received_at = models.DateTimeField(_("received at"))
    snapshot = models.FileField(_("snapshot"), max_length=200, blank=True)
    uid = models.CharField(_("device's event id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-happened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "device_kind", "device_id", "uid"],
                condition=~models.Q(uid=""),
                name="event_uid_unique_per_device",
            )
        ]
        indexes = [
            models.Index(fields=["company", "id"], name="event_company_id"),
            models.Index(fields=["company", "happened_at"], name="event_company_happened"),
            models.Index(fields=["company", "kind", "happened_at"], name="event_company_kind"),
            models.Index(fields=["company", "subject", "happened_at"], name="event_company_subject"),
            models.Index(fields=["company", "screen", "happened_at"], name="event_company_screen"),
        ]

    def __str__(self) -> str:
        who = self.subject_name or self.get_kind_display()
        return f"{who} @ {self.happened_at:%Y-%m-%d %H:%M:%S}"
