from django.db import models
from django.utils.translation import gettext_lazy as _


class PeriodicTask(models.Model):
    """When a periodic task (see `kangaroo/schedule.py`) may run next, and how its last run
    went. Runners claim a run with one conditional UPDATE (`kangaroo.periodic`), so of two
    runners that wake at the same moment exactly one runs the task in each interval."""

    name = models.CharField(_("name"), max_length=100, primary_key=True)
    next_run_at = models.DateTimeField(_("next run at"))
    last_started_at = models.DateTimeField(_("last started at"), null=True, blank=True)
    last_finished_at = models.DateTimeField(_("last finished at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    runs = models.PositiveIntegerField(_("runs"), default=0)

    class Meta:
        verbose_name = _("periodic task")
        verbose_name_plural = _("periodic tasks")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
