"""Outgoing webhooks (a company's endpoints and the messages sent to them) and company API keys.

An endpoint is a URL of the company's own (a chat bridge, an HR system) with the event types
it wants and a signing secret. Every announcement of a wanted type becomes one
`WebhookDelivery` per endpoint: one logical message with one `webhook-id`, however many HTTP
attempts it takes. The row is the delivery log: status, attempts, the last answer's code and
duration, and when the next attempt is due.

The secret has to be kept readable, since each message is signed with it (HMAC); it is shown
to people once, when created or rotated. A rotated secret keeps signing beside the new one
for a day (`previous_secret_until`), so a receiver can switch over without losing messages.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kangaroo.tenancy import TenantModel


class WebhookType(models.TextChoices):
    EVENT_RECOGNIZED = "event.recognized", _("A person was recognised")
    EVENT_STRANGER = "event.stranger", _("A stranger was seen")
    EVENT_VISITOR_OUTSIDE_WINDOW = "event.visitor_outside_window", _("A visitor came outside their visit")
    EVENT_CORRECTED = "event.corrected", _("An event was corrected")
    DEVICE_OFFLINE = "device.offline", _("A device went offline")
    DEVICE_ONLINE = "device.online", _("A device came online")
    DEVICE_LAGGING = "device.lagging", _("A box fell behind the gallery")
    SUBJECT_CREATED = "subject.created", _("A subject was created")
    SUBJECT_UPDATED = "subject.updated", _("A subject was changed")
    SUBJECT_DELETED = "subject.deleted", _("A subject was deleted")
    PHOTO_REJECTED = "photo.rejected", _("A photo was rejected")
    # Announced by the visits app (`visits.webhooks`), which builds on this one.
    VISIT_INVITED = "visit.invited", _("A visitor was invited")
    VISIT_ARRIVED = "visit.arrived", _("A visitor arrived")
    VISIT_LEFT = "visit.left", _("A visitor left")


# Sent by "send a test ping" only; no endpoint subscribes to it.
PING_TYPE = "webhook.ping"


class WebhookEndpoint(TenantModel):
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("event types"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    secret = models.CharField(_("signing secret"), max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(_("previous secret valid until"), null=True, blank=True)
    # The first failed attempt since the last success; 24 hours of failures disable the endpoint.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    disabled_at = models.DateTimeField(_("disabled for failures at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["url", "id"]
        indexes = [models.Index(fields=["company", "is_active"], name="webhook_endpoint_active")]

    def __str__(self) -> str:
        return self.description or self.url

    def signing_secrets(self, now=None) -> list[str]:
        """The secrets a message is signed with now: the current one, and the previous one
        during the day after a rotation."""
        now = now or timezone.now()
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            secrets.append(self.previous_secret)
        return secrets

    def wants(self, event_type: str) -> bool:
        return event_type in (self.event_types or [])


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


# Retries continue this long after a message was queued (or redelivered), then it fails.
RETRY_WINDOW = timedelta(hours=24)


class WebhookDelivery(TenantModel):
    """One message to one endpoint, and how sending it went."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    message_id = models.CharField(_("webhook-id"), max_length=40)
    event_type = models.CharField(_("type"), max_length=40)
    # The JSON body exactly as sent, so every attempt signs and sends the same bytes.
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    response_status = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    retry_until = models.DateTimeField(_("retried until"))
    # A sender holds the message until then (see `integrations.delivery`); a sender that
    # died lets it go when the time passes.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    claim = models.CharField(max_length=32, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "message_id"], name="webhook_delivery_message_unique")
        ]
        indexes = [
            models.Index(fields=["company", "endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            # The retry sweep: pending messages by due time, across companies.
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class LaggingBox(TenantModel):
    """A box already announced as lagging (`device.lagging`), so it is announced once per
    spell: the row goes when the box catches up, and a new spell is announced again."""

    box = models.OneToOneField("devices.Box", on_delete=models.CASCADE, related_name="+", verbose_name=_("box"))
    since = models.DateTimeField(_("lagging since"))

    class Meta:
        verbose_name = _("lagging box")
        verbose_name_plural = _("lagging boxes")
        indexes = [models.Index(fields=["company", "box"], name="lagging_box_company_box")]

    def __str__(self) -> str:
        return str(self.box_id)


class ApiScope(models.TextChoices):
    SUBJECTS_READ = "subjects:read", _("Read subjects, departments and photos")
    SUBJECTS_WRITE = "subjects:write", _("Create, change, archive and delete subjects and departments")
    EVENTS_READ = "events:read", _("Read events, corrections and attendance")
    DEVICES_READ = "devices:read", _("Read devices and their status")
    WEBHOOKS_MANAGE = "webhooks:manage", _("Manage webhook endpoints and read their delivery log")


class ApiKey(TenantModel):
    """A company's key for an integration that is not a person (see `integrations.api_keys`)."""

    name = models.CharField(_("name"), max_length=100)
    scopes = models.JSONField(_("scopes"), default=list)
    prefix = models.CharField(_("key hint"), max_length=24, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "prefix"], name="api_key_prefix_unique"),
            models.UniqueConstraint(
                "company",
                Lower("name"),
                name="api_key_name_unique_per_company",
                violation_error_code="api_key_name_taken",
                violation_error_message=_("Another API key of this company has this name."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class HostSettings(TenantModel):
    """A host's own choices for the e-mails about their visitors: whether they want them, and
    in which language. Hosts are employees (subjects), most without a login: they reach
    these settings through the signed link in each e-mail (`integrations.arrivals`)."""

    host = models.OneToOneField("subjects.Subject", on_delete=models.CASCADE, related_name="+", verbose_name=_("host"))
    arrival_emails = models.BooleanField(_("e-mail me when my visitors arrive"), default=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=[("en", "English"), ("zh-hant", "繁體中文")],
        help_text=_("Empty: the language of the host's user account, if any, else the portal's."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("host e-mail settings")
        verbose_name_plural = _("host e-mail settings")
        indexes = [models.Index(fields=["company", "host"], name="host_settings_company_host")]

    def __str__(self) -> str:
        return str(self.host)


class VisitorArrival(TenantModel):
    """A visit whose host has been told of the arrival: one row per visitor and visit window,
    so a retried event or a second door never sends a second e-mail."""

    visitor = models.ForeignKey(
        "subjects.Subject", on_delete=models.CASCADE, related_name="+", verbose_name=_("visitor")
    )
    visit = models.CharField(_("visit"), max_length=80)  # the window, as "<start>/<end>" in ISO 8601
    event = models.ForeignKey(
        "events.Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("event")
    )
    host_email = models.CharField(_("sent to"), max_length=254)
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("visitor arrival e-mail")
        verbose_name_plural = _("visitor arrival e-mails")
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "visitor", "visit"], name="visitor_arrival_once_per_visit")
        ]

    def __str__(self) -> str:
        return f"{self.visitor_id} {self.visit}"
