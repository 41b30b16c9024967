"""Visits in the admin: owners and admins invite (the same `visit_create` as everywhere),
cancel, re-send the invitation, revoke the link or issue one to hand over, and at reception
check visitors in and mark them left; viewers read.
A visit is not edited after it is made: cancel it and invite again."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from kangaroo.admin import TenantAdmin, add_service_error, admin_company, adopt
from kangaroo.errors import KangarooError
from subjects.models import Subject, SubjectType
from visits import reception, services
from visits.emails import visit_link_url
from visits.models import Visit, visit_language
from visits.selectors import visit_state, with_photo_ready


class VisitAdminForm(forms.ModelForm):
    company = None  # set per request by VisitAdmin.get_form

    class Meta:
        model = Visit
        fields = list(services.VISIT_INPUT_FIELDS)
        # Said before the admin types it: a second invitation of one person is expected
        # (another day, another host), and an employee's address is refused, not converted.
        help_texts = {
            "visitor_email": _(
                "A visitor of the company who already has this address gets this visit too, and keeps their "
                "photo and consent. The address of an employee or VIP cannot be used."
            )
        }

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
    # Fits 1366 px beside the menu and the filters: the visitor's company under their name,
    # the window in one column, the state (with the arrival or departure time) in words.
    list_display = ["visitor_and_company", "host_name", "window", "state", "badge_link"]
    list_display_links = ["visitor_and_company"]
    change_list_template = "admin/visits/visit/change_list.html"
    change_form_template = "admin/visits/visit/change_form.html"
    list_filter = ["status", "host", "starts_at"]
    search_fields = ["visitor_name", "visitor_email", "visitor_company", "purpose"]
    date_hierarchy = "starts_at"
    list_select_related = ["host", "company"]
    actions = ["cancel_visits", "resend_invitations", "revoke_links", "issue_link", "check_in", "mark_left"]
    zone_note_fields = ("starts_at",)  # the end sits right below it, in the same zone
    readonly_on_change = [
        *services.VISIT_INPUT_FIELDS, "visitor", "state", "invited_by", "arrived_at", "arrived_via", "left_at",
        "face_declined_at", "invitation_sent_at", "link_revoked_at", "created_at",
    ]  # fmt: skip

    def get_queryset(self, request):
        return with_photo_ready(super().get_queryset(request))

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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        visit = self.get_object(request, unquote(object_id))  # 404 for another company's
        extra_context = dict(extra_context or {})
        if reception.badge_printable(visit):
            extra_context["badge_url"] = reverse("admin:visits_visit_badge", args=[visit.pk])
        return super().change_view(request, object_id, form_url, extra_context)

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
                # Check-in and departure answer False when nothing was left to mark (already
                # arrived, already left): those are not counted as done.
                done += service(company=visit.company, actor=request.user, visit=visit) is not False
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

    @admin.action(description=_("Check the visitor in (reception)"), permissions=["change"])
    def check_in(self, request, queryset):
        done = self._each(request, queryset, services.visit_check_in)
        if done:
            words = ngettext("%d visitor checked in.", "%d visitors checked in.", done)
            self.message_user(request, words % done)

    @admin.action(description=_("Mark the visitor as left"), permissions=["change"])
    def mark_left(self, request, queryset):
        done = self._each(request, queryset, services.visit_mark_left)
        if done:
            words = ngettext("%d visitor marked as left.", "%d visitors marked as left.", done)
            self.message_user(request, words % done)

    # --- Reception: the day's expected visitors, badges ------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("today/", self.admin_site.admin_view(self.expected_today_view), name="{}_{}_today".format(*info)),
            path(
                "<path:object_id>/check-in/",
                self.admin_site.admin_view(self.check_in_view),
                name="{}_{}_check_in".format(*info),
            ),
            path(
                "<path:object_id>/left/",
                self.admin_site.admin_view(self.mark_left_view),
                name="{}_{}_left".format(*info),
            ),
            path(
                "<path:object_id>/badge/", self.admin_site.admin_view(self.badge_view), name="{}_{}_badge".format(*info)
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("visitor"), ordering="visitor_name")
    def visitor_and_company(self, visit):
        if not visit.visitor_company:
            return visit.visitor_name
        return format_html('{}<br><small class="visitor-company">{}</small>', visit.visitor_name, visit.visitor_company)

    @admin.display(description=_("host"), ordering="host__name")
    def host_name(self, visit):
        return visit.host.name if visit.host_id else "—"

    @admin.display(description=_("when"), ordering="starts_at")
    def window(self, visit):
        """The window in the company's time zone, the end's date only when it is another day."""
        starts, ends = (timezone.localtime(moment, visit.company.zone) for moment in (visit.starts_at, visit.ends_at))
        end_format = "H:i" if ends.date() == starts.date() else "Y-m-d H:i"
        # Each moment on one line; a narrow column breaks the window at its dash only.
        return format_html(
            '<span class="moment">{}</span>–<wbr><span class="moment">{}</span>',
            date_format(starts, "Y-m-d H:i"),
            date_format(ends, end_format),
        )

    @admin.display(description=_("state"))
    def state(self, visit):
        return format_html(
            '<span class="visit-state state-{}">{}</span>',
            visit_state(visit),
            reception.state_label(visit, visit.company.zone),
        )

    @admin.display(description=_("badge"))
    def badge_link(self, visit):
        if not reception.badge_printable(visit):
            return "—"  # a cancelled visit has no badge (its visitor is not let in)
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
            "may_change": self.has_change_permission(request),
        }
        return render(request, "admin/visits/visit/expected_today.html", context)

    def check_in_view(self, request, object_id):
        """Expected today's "Check in" button: the visitor is at the desk (no photo, or no door
        recognised them)."""
        done = _("%(visitor)s checked in.")
        return self._reception_button(request, object_id, services.visit_check_in, done)

    def mark_left_view(self, request, object_id):
        """Expected today's "Left" button: the visitor went out where no camera saw them."""
        return self._reception_button(request, object_id, services.visit_mark_left, _("%(visitor)s marked as left."))

    def _reception_button(self, request, object_id, service, done):
        """A button of Expected today: POST only, by those who may change visits; back to the
        list (with its host filter), saying what happened or why not."""
        visit = self.get_object(request, unquote(object_id))  # 404 for another company's, whatever the method
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request, visit):
            raise PermissionDenied
        try:
            if service(company=visit.company, actor=request.user, visit=visit):
                self.message_user(request, done % {"visitor": visit.visitor_name})
        except KangarooError as exc:
            self.message_user(request, f"{visit.visitor_name}: {exc.message}", messages.ERROR)
        back = reverse("admin:visits_visit_today")
        host = reception.id_from_query(request.POST.get("host"))
        return HttpResponseRedirect(f"{back}?host={host}" if host else back)

    def badge_view(self, request, object_id):
        """A visit's badge to print: name, company, host, date and the visit's QR code."""
        visit = self.get_object(request, unquote(object_id))  # 404 for another company's
        if not self.has_view_permission(request, visit):
            raise Http404
        if not reception.badge_printable(visit):
            # A page of its own (the badge opens in a new tab): the reason, not an error.
            return render(request, "visits/badge_refused.html", {"visit": visit}, status=409)
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
