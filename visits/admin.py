"""Visits in the admin: owners and admins invite (the same `visit_create` as everywhere),
cancel, re-send the invitation, revoke the link or issue one to hand over; viewers read.
A visit is not edited after it is made: cancel it and invite again."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from kangaroo.admin import TenantAdmin, add_service_error, admin_company, adopt
from kangaroo.errors import KangarooError
from subjects.models import Subject, SubjectType
from visits import reception, services
from visits.emails import visit_link_url
from visits.models import Visit, visit_language


class VisitAdminForm(forms.ModelForm):
    company = None  # set per request by VisitAdmin.get_form

    class Meta:
        model = Visit
        fields = list(services.VISIT_INPUT_FIELDS)

    def clean(self):
        cleaned = super().clean()
        company = self.company
        if company is None or self.errors:
            return cleaned
        try:
            checked = services.visit_check(
                company=company, data={field: cleaned.get(field) for field in services.VISIT_INPUT_FIELDS}
            )
        except KangarooError as exc:
            add_service_error(self, exc)
            return cleaned
        cleaned.update(checked)
        return cleaned


@admin.register(Visit)
class VisitAdmin(TenantAdmin):
    form = VisitAdminForm
    list_display = [
        "visitor_name", "visitor_company", "host", "starts_at", "ends_at", "status", "arrived_at", "badge_link",
    ]  # fmt: skip
    change_list_template = "admin/visits/visit/change_list.html"
    list_filter = ["status", "host", "starts_at"]
    search_fields = ["visitor_name", "visitor_email", "visitor_company", "purpose"]
    date_hierarchy = "starts_at"
    list_select_related = ["host"]
    actions = ["cancel_visits", "resend_invitations", "revoke_links", "issue_link"]
    zone_note_fields = ("starts_at",)  # the end sits right below it, in the same zone
    readonly_on_change = [
        *services.VISIT_INPUT_FIELDS, "visitor", "status", "invited_by", "arrived_at", "left_at",
        "invitation_sent_at", "link_revoked_at", "created_at",
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_on_change if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly_on_change if obj is not None else list(services.VISIT_INPUT_FIELDS)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"company": admin_company(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "host":
            company = admin_company(request)
            hosts = Subject.objects.for_company(company) if company else Subject.objects.none()
            kwargs["queryset"] = hosts.filter(subject_type=SubjectType.EMPLOYEE, archived=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        # The invitation in the inviting admin's language unless they pick another: a
        # Chinese-speaking reception mostly invites Chinese-speaking visitors.
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("language", visit_language(translation.get_language()))
        return initial

    def has_add_permission(self, request):
        # Invitations are made inside a company (platform staff have none to invite to).
        return super().has_add_permission(request) and admin_company(request) is not None

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is edited after the invitation (see the module docstring)
        data = {field: form.cleaned_data[field] for field in services.VISIT_INPUT_FIELDS}
        adopt(obj, services.visit_create(company=obj.company, actor=request.user, **data))

    def delete_model(self, request, obj):
        # Deleting a visit is cancelling it: the record of the invitation stays.
        self._each(request, Visit.objects.for_company(obj.company).filter(pk=obj.pk), services.visit_cancel)

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, service) -> int:
        done = 0
        for visit in queryset:
            try:
                service(company=visit.company, actor=request.user, visit=visit)
                done += 1
            except KangarooError as exc:
                self.message_user(request, f"{visit}: {exc.message}", messages.ERROR)
        return done

    @admin.action(description=_("Cancel the selected visits"), permissions=["change"])
    def cancel_visits(self, request, queryset):
        done = self._each(request, queryset, services.visit_cancel)
        if done:
            self.message_user(request, ngettext("%d visit cancelled.", "%d visits cancelled.", done) % done)

    @admin.action(description=_("Send the invitation again (with a new link)"), permissions=["change"])
    def resend_invitations(self, request, queryset):
        done = self._each(request, queryset, services.visit_invitation_resend)
        if done:
            self.message_user(request, ngettext("%d invitation sent.", "%d invitations sent.", done) % done)

    @admin.action(description=_("Revoke the personal link"), permissions=["change"])
    def revoke_links(self, request, queryset):
        done = self._each(request, queryset, services.visit_link_revoke)
        if done:
            self.message_user(request, ngettext("%d link revoked.", "%d links revoked.", done) % done)

    @admin.action(description=_("Show a new personal link to hand over"), permissions=["change"])
    def issue_link(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose one visit to issue a link for."), messages.WARNING)
            return
        visit = queryset.get()
        try:
            token = services.visit_link_issue(company=visit.company, actor=request.user, visit=visit)
        except KangarooError as exc:
            self.message_user(request, f"{visit}: {exc.message}", messages.ERROR)
            return
        self.message_user(
            request,
            _("New link for %(visitor)s, shown only now (the previous one no longer works): %(link)s")
            % {"visitor": visit.visitor_name, "link": visit_link_url(token)},
            messages.WARNING,
        )

    # --- Reception: the day's expected visitors, badges ------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("today/", self.admin_site.admin_view(self.expected_today_view), name="{}_{}_today".format(*info)),
            path(
                "<path:object_id>/badge/", self.admin_site.admin_view(self.badge_view), name="{}_{}_badge".format(*info)
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("badge"))
    def badge_link(self, visit):
        url = reverse("admin:visits_visit_badge", args=[visit.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, _("Print badge"))

    def _reception_company(self, request):
        company = admin_company(request)
        if company is None:
            raise Http404  # platform staff see a company's reception by signing in as its admin
        return company

    def expected_today_view(self, request):
        """Today's visits (the company's day) with their state, by host if one is picked."""
        if not self.has_view_permission(request):
            raise Http404
        company = self._reception_company(request)
        hosts = Subject.objects.for_company(company).filter(subject_type=SubjectType.EMPLOYEE, archived=False)
        picked = reception.id_from_query(request.GET.get("host"))
        host = hosts.filter(pk=picked).first() if picked else None
        today = timezone.localtime(timezone.now(), company.zone).date()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Expected today"),
            "company": company,
            "today": today,
            "rows": reception.expected_on(company=company, day=today, host_id=host.pk if host else None),
            "hosts": hosts.filter(pk__in=Visit.objects.for_company(company).values("host_id")).order_by("name"),
            "host": host,
        }
        return render(request, "admin/visits/visit/expected_today.html", context)

    def badge_view(self, request, object_id):
        """A visit's badge to print: name, company, host, date and the visit's QR code."""
        visit = self.get_object(request, object_id)  # 404 for another company's
        if not self.has_view_permission(request, visit):
            raise Http404
        zone = visit.company.zone
        reference = reception.visit_reference(visit)
        context = {
            "visit": visit,
            "company": visit.company,
            "starts": timezone.localtime(visit.starts_at, zone),
            "ends": timezone.localtime(visit.ends_at, zone),
            "reference": reference,
            "qr": reception.qr_svg(reference),
        }
        return render(request, "visits/badge.html", context)
