"""What the retention purge must remember once the rows it read are gone.

A subject's biometric data goes when they have not been seen for the company's window
(`retention_inactive_days`). "Seen" is read from their events; but events have a shorter
window of their own (a year by default, against three for faces), so when the purge deletes
a subject's events it keeps the latest of them here. Without it, every employee would look
unseen since their enrolment the day their last event was anonymised.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from kangaroo.tenancy import TenantModel


class SubjectLastSeen(TenantModel):
    subject = models.OneToOneField(
        "subjects.Subject", on_delete=models.CASCADE, related_name="+", verbose_name=_("subject")
    )
    at = models.DateTimeField(_("last seen at"))

    class Meta:
        verbose_name = _("last sighting of a subject")
        verbose_name_plural = _("last sightings of subjects")
        indexes = [models.Index(fields=["company", "at"], name="privacy_last_seen_at")]

    def __str__(self) -> str:
        return f"{self.subject_id} @ {self.at:%Y-%m-%d}"
