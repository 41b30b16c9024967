"""What happened at the doors: recognitions, strangers, visitors outside their window, and
devices going offline or coming back.

An event keeps a copy of its subject's name, type and job number, so history reads the
same after the subject is renamed or deleted. Its snapshot image does not outlive the
subject: it is a picture of that person's face, so deleting the subject empties the
snapshot of each of their events and deletes the file (events/signals.py). Events are
deleted only with their company (whose media are purged) or through
`events.services.event_delete_many`, which deletes their snapshot files too. A device-supplied `uid`, unique per device,
makes retried posts idempotent.

Unknown people: a stranger event's face joins the nearest `UnknownPerson` of its company
(within UNKNOWN_CLUSTER_THRESHOLD) or starts one (`events.unknown_people`), so HR sees the
people behind repeated stranger cards and can enrol them. A correction (`EventCorrection`)
changes who an event is about and keeps what it said before (`events.corrections`).
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from devices.models import DeviceKind, Direction
from kangaroo.tenancy import TenantModel


class EventKind(models.TextChoices):
    RECOGNIZED = "recognized", _("Recognized")
    STRANGER = "stranger", _("Stranger")
    VISITOR_OUTSIDE_WINDOW = "visitor_outside_window", _("Visitor outside their window")
    DEVICE_OFFLINE = "device_offline", _("Device went offline")
    DEVICE_ONLINE = "device_online", _("Device came online")
    # Reception checked a visitor in by hand (`events.services.event_record_check_in`): an
    # arrival no camera saw, greeted like a recognition but never counted as one.
    CHECKED_IN = "checked_in", _("Checked in at reception")


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
    # Set when the portal recognised the face itself (`/device/recognize`): the distance to
    # the subject's closest photo. Null for a stranger and for what a box recognised.
    distance = models.FloatField(_("face distance"), null=True, blank=True)
    happened_at = models.DateTimeField(_("happened at"))
    received_at = models.DateTimeField(_("received at"))
    snapshot = models.FileField(_("snapshot"), max_length=200, blank=True)
    uid = models.CharField(_("device's event id"), max_length=64, blank=True)
    # Set by the clustering job on a stranger event whose face joined an unknown person.
    unknown_person = models.ForeignKey(
        "events.UnknownPerson",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("unknown person"),
    )
    # When an admin last corrected who this event is about (the originals are its corrections).
    corrected_at = models.DateTimeField(_("corrected at"), null=True, blank=True)

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
            models.Index(fields=["company", "unknown_person", "happened_at"], name="event_company_unknown"),
        ]

    def __str__(self) -> str:
        # In the current zone (a company user's: the company's), like every time shown.
        who = self.subject_name or self.get_kind_display()
        return f"{who} @ {timezone.localtime(self.happened_at):%Y-%m-%d %H:%M:%S}"

    @property
    def is_anonymous(self) -> bool:
        """About a person who was erased (or whose event outlived its retention): the event
        still counts, but names nobody (`events.services.event_anonymise_subjects`)."""
        return self.kind in PERSON_KINDS and not self.subject_name

    @property
    def who(self) -> str:
        """Whom the event is about, as lists show it: the name, "Erased person", or ""."""
        if self.is_anonymous:
            return str(ERASED_PERSON)
        return self.subject_name


def snapshot_subject_ref(event: Event) -> str:
    """Whose face an event's snapshot shows, as the biometric-view audit names it: the
    subject's id, the unknown person's, or "stranger"."""
    if event.subject_id:
        return str(event.subject_id)
    if event.unknown_person_id:
        return f"unknown:{event.unknown_person_id}"
    return "stranger"


# Kinds of event that are about an enrolled person; anything else names no one by nature.
PERSON_KINDS = (EventKind.RECOGNIZED, EventKind.VISITOR_OUTSIDE_WINDOW, EventKind.CHECKED_IN)
ERASED_PERSON = _("Erased person")


class UnknownPerson(TenantModel):
    """Someone the cameras keep seeing who is not enrolled: the stranger events whose faces
    lie within the clustering threshold of each other.

    `embedding` is the mean of the faces that joined (the representative the next face is
    compared with, along with the best snapshots' own faces); `sightings` counts them. Only
    the best few snapshots are kept (`UnknownSnapshot`, copies of the events' snapshots, so
    an event's retention does not take them away). `ignored`: HR said this face needs no
    alert (a poster, a regular courier); it still gathers sightings.
    """

    first_seen_at = models.DateTimeField(_("first sighting"))
    last_seen_at = models.DateTimeField(_("last sighting"))
    sightings = models.PositiveIntegerField(_("sightings"), default=0)
    embedding = models.BinaryField(_("embedding"), editable=False)
    embedding_model = models.CharField(_("embedding model"), max_length=40, editable=False)
    ignored = models.BooleanField(_("ignored"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("unknown person")
        verbose_name_plural = _("unknown people")
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["company", "last_seen_at"], name="unknown_company_last_seen")]

    def __str__(self) -> str:
        return str(_("Unknown person #%(id)s") % {"id": self.pk})


class UnknownSnapshot(TenantModel):
    """One of an unknown person's best snapshots (by face quality), with its face's embedding."""

    person = models.ForeignKey(
        UnknownPerson, on_delete=models.CASCADE, related_name="snapshots", verbose_name=_("unknown person")
    )
    event = models.ForeignKey(
        Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("event")
    )
    image = models.FileField(_("image"), max_length=200)
    quality = models.FloatField(_("quality"))
    embedding = models.BinaryField(_("embedding"), editable=False)
    happened_at = models.DateTimeField(_("seen at"))

    class Meta:
        verbose_name = _("snapshot")
        verbose_name_plural = _("snapshots")
        ordering = ["-quality", "id"]
        indexes = [models.Index(fields=["company", "person"], name="unknown_snapshot_person")]

    def __str__(self) -> str:
        return f"{self.person_id}/{self.pk}"


class CorrectionKind(models.TextChoices):
    REASSIGNED = "reassigned", _("Reassigned to a subject")
    MARKED_STRANGER = "marked_stranger", _("Marked a stranger")


class EventCorrection(TenantModel):
    """An admin's correction of who an event is about, keeping what the event said before.

    `original_*` is what the recognition decided (kind, subject, confidence); `subject` the
    subject it is about now (None: marked a stranger). `screen` is copied from the event,
    so corrections can be counted per camera."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="corrections", verbose_name=_("event"))
    kind = models.CharField(_("correction"), max_length=16, choices=CorrectionKind.choices)
    screen = models.ForeignKey(
        "devices.Screen",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("screen"),
    )
    original_kind = models.CharField(_("original kind"), max_length=24, choices=EventKind.choices)
    original_subject = models.ForeignKey(
        "subjects.Subject",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("originally matched"),
    )
    original_subject_name = models.CharField(_("originally matched (name)"), max_length=100, blank=True)
    original_confidence = models.FloatField(_("original confidence"), null=True, blank=True)
    subject = models.ForeignKey(
        "subjects.Subject",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("corrected to"),
    )
    subject_name = models.CharField(_("corrected to (name)"), max_length=100, blank=True)
    photo = models.ForeignKey(
        "subjects.Photo",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("photo added"),
    )
    actor = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    actor_repr = models.CharField(_("by (name)"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("corrected at"), auto_now_add=True)

    class Meta:
        verbose_name = _("correction")
        verbose_name_plural = _("corrections")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "created_at"], name="correction_company_created"),
            models.Index(fields=["company", "event"], name="correction_company_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.get_kind_display()}"


class EventDailyCount(TenantModel):
    """What is left of a local day's events once retention has deleted them: per kind of
    event and type of subject, how many events there were and how many different subjects
    they were about (recognised passes only). Nothing in it names or pictures anyone.

    Written by the retention purge (`privacy.purge`) as it deletes each day's events, read
    by the attendance report for the days it covers whose events are gone. `people` is
    counted once, over the whole day, when its first events are deleted; an event a device
    sends afterwards for that long-gone day adds to `events` only.
    """

    day = models.DateField(_("day"))
    kind = models.CharField(_("kind"), max_length=24, choices=EventKind.choices)
    subject_type = models.CharField(_("subject type"), max_length=10, blank=True)
    events = models.PositiveIntegerField(_("events"), default=0)
    people = models.PositiveIntegerField(_("people"), default=0)

    class Meta:
        verbose_name = _("daily count of purged events")
        verbose_name_plural = _("daily counts of purged events")
        ordering = ["day", "kind", "subject_type"]
        constraints = [
            models.UniqueConstraint(fields=["company", "day", "kind", "subject_type"], name="event_daily_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.subject_type}: {self.events}"
