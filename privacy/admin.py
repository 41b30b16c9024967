"""The retention page of the admin: per company, what the next purge will remove (counted
by the purge's own selectors), the latest runs, and "purge now" for owners."""

from __future__ import annotations

from django.apps import apps as django_apps
from django.apps.registry import Apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.models import AuditLog, Company, Job
from kangaroo.admin import ReportAdminMixin
from kangaroo.jobs import JobAlreadyQueued
from privacy import services
from privacy.purge_api import preview_data
from privacy.selectors import PURGE_ACTION, RULES


class RetentionPurge(models.Model):
    """The admin index lists models only: this entry links to the retention page. No table,
    no objects, an app registry of its own (as `events.admin.AttendanceDay`)."""

    class Meta:
        apps = Apps(installed_apps=[])
        app_label = "privacy"
        managed = False
        default_permissions = ()
        verbose_name = _("retention purge")
        verbose_name_plural = _("retention purge")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


@admin.register(RetentionPurge)
class RetentionPurgeAdmin(ReportAdminMixin, admin.ModelAdmin):
    """Every member may read the page; only owners may purge now."""

    RUNS_SHOWN = 10

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("", self.admin_site.admin_view(self.overview_view), name="{}_{}_changelist".format(*info)),
            path("purge/", self.admin_site.admin_view(require_POST(self.purge_view)), name="{}_{}_purge".format(*info)),
        ]

    def overview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        company = self.report_company(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_name": django_apps.get_app_config(self.opts.app_label).verbose_name,
            "title": gettext("Retention purge"),
            "company": company,
            "companies": Company.objects.order_by("name") if request.user.is_platform_staff else [],
            "can_purge": company is not None
            and request.user.company_id == company.pk
            and request.user.can_manage_users,
        }
        if company is not None:
            context["preview"] = preview_data(company)
            context["runs"] = [
                {
                    "entry": entry,
                    "removed": [
                        (RULES.get(rule, rule), count)
                        for rule, count in entry.changes.get("removed", {}).items()
                        if count
                    ],
                    "manual": entry.changes.get("trigger") == "manual",
                }
                for entry in AuditLog.objects.for_company(company).filter(action=PURGE_ACTION)[: self.RUNS_SHOWN]
            ]
            context["job"] = (
                Job.objects.for_company(company).filter(kind=services.PURGE_KIND).order_by("-created_at").first()
            )
        return TemplateResponse(request, "privacy/retention_purge.html", context)

    def purge_view(self, request):
        user = request.user
        if user.company_id is None or not user.can_manage_users:
            raise PermissionDenied
        try:
            services.purge_start(company=user.company, actor=user)
        except JobAlreadyQueued:
            messages.warning(request, gettext("A purge of this company is already queued or running."))
        else:
            messages.success(request, gettext("The purge has started. Its result appears below once it is done."))
        return HttpResponseRedirect(reverse("admin:privacy_retentionpurge_changelist"))
