"""A visit: one person invited by a company for a time window, to see one of its people.

The visitor at the doors is a `subjects.Subject` of type visitor (recognised, greeted,
windowed like any visitor); the visit is the invitation around it: who invited them, how to
reach them, the personal link they enrol through, and what became of the visit. A visitor
who comes back is the same subject with another visit.

The personal link carries a random token (256 bits); only its SHA-256 is stored, so a copy
of the database opens no link. The link works until the visit ends, unless it is revoked
or the visit cancelled; a new invitation issues a new token, which kills the old link.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kangaroo.tenancy import TenantModel
from subjects.models import SubjectType

LANGUAGES = [("en", "English"), ("zh-hant", "繁體中文")]


def visit_language(code: str | None) -> str:
    """The visit language for a Django language code: Chinese (any script the portal may be
    asked for, `zh-hant`, `zh-tw`) is Traditional Chinese, anything else English."""
    return "zh-hant" if (code or "").lower().startswith("zh") else "en"


class VisitStatus(models.TextChoices):
    INVITED = "invited", _("Invited")
    CANCELLED = "cancelled", _("Cancelled")


class ArrivedVia(models.TextChoices):
    DOOR = "door", _("recognised at a door")
    RECEPTION = "reception", _("checked in at reception")


class Visit(TenantModel):
    # CASCADE: erasing the visitor (privacy) takes their visits, which hold their name and
    # contact details, along; the audit log keeps that there was a visit.
    visitor = models.ForeignKey(
        "subjects.Subject", on_delete=models.CASCADE, related_name="visits", verbose_name=_("visitor")
    )
    host = models.ForeignKey(
        "subjects.Subject",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="hosted_visits",
        verbose_name=_("host"),
        # Every list of hosts offered (the admin's form and filters) holds employees only;
        # `services.visit_check` refuses anyone else from any path.
        limit_choices_to={"subject_type": SubjectType.EMPLOYEE},
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    visitor_name = models.CharField(_("visitor's name"), max_length=100)
    visitor_email = models.CharField(_("visitor's e-mail"), max_length=254, blank=True)
    visitor_phone = models.CharField(_("visitor's phone"), max_length=40, blank=True)
    visitor_company = models.CharField(_("visitor's company"), max_length=200, blank=True)
    purpose = models.CharField(_("purpose of visit"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES, default="en")
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    status = models.CharField(_("status"), max_length=10, choices=VisitStatus.choices, default=VisitStatus.INVITED)
    arrived_at = models.DateTimeField(_("arrived at"), null=True, blank=True)
    # How the arrival was recorded: a door's recognition, or reception's check-in by hand
    # (who did it is in the audit log, `visit.check_in`). Blank until the visitor arrives.
    arrived_via = models.CharField(_("arrived via"), max_length=10, choices=ArrivedVia.choices, blank=True)
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    # Set when the visitor declines the face option on their page (reception checks them in),
    # cleared when they agree after all: reception needs to know not to wait for a photo.
    face_declined_at = models.DateTimeField(_("face option declined at"), null=True, blank=True)
    link_token_hash = models.CharField(_("link token hash"), max_length=64, unique=True, editable=False)
    link_revoked_at = models.DateTimeField(_("link revoked at"), null=True, blank=True)
    invitation_sent_at = models.DateTimeField(_("invitation sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="visit_ends_after_it_starts",
                violation_error_code="visit_window_invalid",
                violation_error_message=_("The visit must end after it starts."),
            ),
        ]
        indexes = [
            models.Index(fields=["company", "starts_at"], name="visit_company_starts"),
            models.Index(fields=["company", "host", "starts_at"], name="visit_company_host"),
            models.Index(fields=["company", "visitor"], name="visit_company_visitor"),
            models.Index(fields=["company", "status", "ends_at"], name="visit_company_status"),
        ]

    def __str__(self) -> str:
        return f"{self.visitor_name} {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"

    def link_usable(self, now=None) -> bool:
        """Whether the personal link still opens the visitor's page."""
        now = now or timezone.now()
        return self.status == VisitStatus.INVITED and self.link_revoked_at is None and now < self.ends_at
