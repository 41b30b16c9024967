"""The admin of unknown people and of corrections (imported by events/admin.py).

Unknown people: the list (best snapshot, sightings, screens, first and last seen, last seen
first), a page per person (their best snapshots, sightings per day, latest sightings) with
its actions: enrol as a new subject, add to an existing subject, merge, ignore, delete.
Corrections: an event's page links to its correction form; the corrections' list shows each
screen's rate of corrected events per 1,000. Every write goes through the services.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.audit_words import actor_label
from accounts.services import retention_policy_current
from events import selectors
from events.corrections import event_correct
from events.models import Event, EventCorrection, EventKind, UnknownPerson
from events.unknown_api import unknown_snapshot_url
from events.unknown_people import (
    unknown_person_add_to_subject,
    unknown_person_delete,
    unknown_person_enrol,
    unknown_person_ignore,
    unknown_person_merge,
)
from kangaroo.admin import FacesForBiometricsMixin, ReadOnlyAdminMixin, TenantAdmin, admin_company
from kangaroo.errors import KangarooError
from subjects.models import ConsentMethod, Subject, SubjectType
from subjects.services import ConsentGiven


def _snapshot_img(snapshot, css: str = "photo-thumbnail"):
    return format_html('<img class="{}" src="{}" alt="">', css, unknown_snapshot_url(snapshot))


class SnapshotChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, snapshot):
        return format_html("{} {}", _snapshot_img(snapshot), f"{snapshot.quality:.0%}")


class UnknownEnrolForm(forms.Form):
    name = forms.CharField(label=_("name"), max_length=100)
    subject_type = forms.ChoiceField(label=_("type"), choices=SubjectType.choices, initial=SubjectType.EMPLOYEE)
    job_number = forms.CharField(
        label=_("job number"),
        max_length=40,
        required=False,
        help_text=_("Generated for visitors and VIPs if left blank."),
    )
    consent_method = forms.ChoiceField(
        label=_("consent given"),
        required=False,
        choices=[
            ("", "—"),
            (ConsentMethod.PAPER.value, ConsentMethod.PAPER.label),
            (ConsentMethod.WEB.value, ConsentMethod.WEB.label),
        ],
        help_text=_(
            "How the person consented to the current retention policy. While your company requires "
            "consent, the snapshots cannot become photos without it."
        ),
    )

    def __init__(self, *args, snapshots, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshots"] = SnapshotChoiceField(
            snapshots, label=_("photos"), required=False, help_text=_("At most 5; none chosen: the best one.")
        )


class UnknownAddForm(forms.Form):
    def __init__(self, *args, snapshots, subjects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subject"] = forms.ModelChoiceField(subjects, label=_("subject"))
        self.fields["snapshots"] = SnapshotChoiceField(
            snapshots, label=_("photos"), required=False, help_text=_("None chosen: the best one.")
        )


class UnknownMergeForm(forms.Form):
    def __init__(self, *args, others, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["into"] = forms.ModelChoiceField(others, label=_("merge into"))


@admin.register(UnknownPerson)
class UnknownPersonAdmin(FacesForBiometricsMixin, TenantAdmin):
    """Unknown people are made by the clustering job; HR names, merges, ignores or deletes them."""

    list_display = ["best_snapshot", "__str__", "sightings", "screens", "first_seen_at", "last_seen_at", "ignored"]
    face_fields = ("best_snapshot",)
    list_filter = ["ignored"]
    ordering = ["-last_seen_at", "-id"]
    fields = ["first_seen_at", "last_seen_at", "sightings", "ignored"]
    readonly_fields = fields
    actions = ["merge_selected", "ignore_selected", "unignore_selected", "delete_selected"]
    change_form_template = "admin/events/unknownperson/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("company").prefetch_related("snapshots")

    def has_add_permission(self, request):
        return False

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        people = list(changelist.result_list)
        by_company: dict[int, list[UnknownPerson]] = {}
        for person in people:
            by_company.setdefault(person.company_id, []).append(person)
        screens: dict[int, list[str]] = {}
        for group in by_company.values():  # one company, but for platform staff
            screens.update(selectors.unknown_people_screens(company=group[0].company, people=group))
        for person in people:
            person.screen_names = screens.get(person.pk, [])
        changelist.result_list = people
        return changelist

    @admin.display(description=_("best snapshot"))
    def best_snapshot(self, person):
        best = next(iter(person.snapshots.all()), None)  # prefetched, best first
        return _snapshot_img(best) if best is not None else "—"

    @admin.display(description=_("screens"))
    def screens(self, person):
        return ", ".join(getattr(person, "screen_names", [])) or "—"

    def delete_model(self, request, obj):
        unknown_person_delete(company=obj.company, actor=request.user, person=obj)

    # --- list actions --------------------------------------------------------------------------
    @admin.action(description=_("Merge the selected unknown people"), permissions=["change"])
    def merge_selected(self, request, queryset):
        people = list(queryset.order_by("-last_seen_at", "-id"))
        if len(people) < 2 or len({p.company_id for p in people}) != 1:
            self.message_user(request, gettext("Select two or more unknown people to merge."), messages.WARNING)
            return None
        into = people[0]
        for person in people[1:]:
            into = unknown_person_merge(company=into.company, actor=request.user, person=person, into=into)
        self.message_user(request, gettext("Merged into %(person)s.") % {"person": into})
        return None

    @admin.action(description=_("Ignore the selected unknown people (no stranger alerts)"), permissions=["change"])
    def ignore_selected(self, request, queryset):
        for person in queryset:
            unknown_person_ignore(company=person.company, actor=request.user, person=person, ignored=True)

    @admin.action(description=_("Alert again on the selected unknown people"), permissions=["change"])
    def unignore_selected(self, request, queryset):
        for person in queryset:
            unknown_person_ignore(company=person.company, actor=request.user, person=person, ignored=False)

    # --- the person's page and its actions -------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/enrol/", wrap(self.enrol_view), name="{}_{}_enrol".format(*info)),
            path("<path:object_id>/add-to-subject/", wrap(self.add_view_), name="{}_{}_add_to_subject".format(*info)),
            path("<path:object_id>/merge/", wrap(self.merge_view), name="{}_{}_merge".format(*info)),
            path("<path:object_id>/ignore/", wrap(self.ignore_view), name="{}_{}_ignore".format(*info)),
            *super().get_urls(),
        ]

    def _forms(self, request, person, data=None, which=None):
        company = person.company
        snapshots = selectors.unknown_person_snapshots(company=company, person=person)
        return {
            "enrol_form": UnknownEnrolForm(data if which == "enrol" else None, snapshots=snapshots, prefix="enrol"),
            "add_form": UnknownAddForm(
                data if which == "add" else None,
                snapshots=snapshots,
                subjects=Subject.objects.for_company(company).order_by("name"),
                prefix="add",
            ),
            "merge_form": UnknownMergeForm(
                data if which == "merge" else None,
                others=selectors.unknown_people(company=company).exclude(pk=person.pk),
                prefix="merge",
            ),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        person = self.get_object(request, unquote(object_id))
        return super().change_view(
            request, object_id, form_url, {**self._page(request, person), **(extra_context or {})}
        )

    def _page(self, request, person, forms_=None):
        company = person.company
        days = selectors.unknown_person_sightings_by_day(company=company, person=person)
        return {
            "person": person,
            "snapshots": [
                _snapshot_img(s, "photo-preview")
                for s in selectors.unknown_person_snapshots(company=company, person=person)
            ]
            if request.user.can_view_biometrics
            else [],
            "days": days,
            "most_in_a_day": max((count for _, count in days), default=0),
            "sightings_list": selectors.unknown_person_events(company=company, person=person)[:50],
            "can_write": self.has_change_permission(request, person),
            "zone": company.time_zone,
            **(forms_ or self._forms(request, person)),
        }

    def _writable(self, request, object_id):
        person = self.get_object(request, unquote(object_id))  # 404 for another company's
        if not self.has_change_permission(request, person):
            raise PermissionDenied
        return person

    def _back(self, person):
        return HttpResponseRedirect(reverse("admin:events_unknownperson_change", args=[person.pk]))

    def _run(self, request, person, which, perform):
        if request.method != "POST":
            return self._back(person)
        forms_ = self._forms(request, person, request.POST, which)
        form = forms_[{"enrol": "enrol_form", "add": "add_form", "merge": "merge_form"}[which]]
        if form.is_valid():
            try:
                return perform(form.cleaned_data)
            except KangarooError as exc:
                form.add_error(None, str(exc.message))
                for field, problems in exc.fields.items():
                    for problem in problems:
                        form.add_error(None, f"{field}: {problem}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": person,
            "title": str(person),
            "change": True,
            "has_view_permission": True,
            **self._page(request, person, forms_),
        }
        return TemplateResponse(request, "admin/events/unknownperson/action_errors.html", context, status=400)

    def enrol_view(self, request, object_id):
        person = self._writable(request, object_id)

        def perform(data):
            subject = unknown_person_enrol(
                company=person.company,
                actor=request.user,
                person=person,
                snapshot_ids=[s.pk for s in data["snapshots"]] or None,
                name=data["name"],
                subject_type=data["subject_type"],
                job_number=data["job_number"],
                consent=(
                    ConsentGiven(
                        method=data["consent_method"],
                        policy_version=retention_policy_current(company=person.company).version,
                    )
                    if data["consent_method"]
                    else None
                ),
            )
            self.message_user(
                request,
                gettext("Enrolled as %(subject)s; their past sightings are theirs now.") % {"subject": subject.name},
            )
            return HttpResponseRedirect(reverse("admin:subjects_subject_change", args=[subject.pk]))

        return self._run(request, person, "enrol", perform)

    def add_view_(self, request, object_id):
        person = self._writable(request, object_id)

        def perform(data):
            subject = unknown_person_add_to_subject(
                company=person.company,
                actor=request.user,
                person=person,
                subject=data["subject"],
                snapshot_ids=[s.pk for s in data["snapshots"]] or None,
            )
            self.message_user(
                request,
                gettext("Added to %(subject)s; their past sightings are theirs now.") % {"subject": subject.name},
            )
            return HttpResponseRedirect(reverse("admin:subjects_subject_change", args=[subject.pk]))

        return self._run(request, person, "add", perform)

    def merge_view(self, request, object_id):
        person = self._writable(request, object_id)

        def perform(data):
            into = unknown_person_merge(company=person.company, actor=request.user, person=person, into=data["into"])
            self.message_user(request, gettext("Merged into %(person)s.") % {"person": into})
            return self._back(into)

        return self._run(request, person, "merge", perform)

    def ignore_view(self, request, object_id):
        person = self._writable(request, object_id)
        if request.method == "POST":
            unknown_person_ignore(
                company=person.company, actor=request.user, person=person, ignored=request.POST.get("ignored") == "1"
            )
        return self._back(person)


# --- Corrections -----------------------------------------------------------------------------------


class EventCorrectForm(forms.Form):
    def __init__(self, *args, subjects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subject"] = forms.ModelChoiceField(
            subjects,
            label=_("it was"),
            required=False,
            empty_label=_("a stranger"),
            help_text=_("The subject this event was really about; leave empty if it was a stranger."),
        )
        self.fields["add_photo"] = forms.BooleanField(
            label=_("also add the snapshot as a photo of this subject"), required=False
        )


class EventCorrectionAdminMixin:
    """For EventAdmin: an event's page links to its correction form, which posts to the service."""

    @admin.display(description=_("correction"))
    def correction_link(self, event):
        if event.kind not in (EventKind.RECOGNIZED, EventKind.STRANGER):
            return "—"
        url = reverse("admin:events_event_correct", args=[event.pk])
        done = format_html_join(
            "", "<li>{} · {} → {} ({})</li>",
            ((timezone.localtime(c.created_at).strftime("%Y-%m-%d %H:%M"),
              c.original_subject_name or gettext("stranger"), c.subject_name or gettext("stranger"),
              actor_label(c.actor_repr)) for c in event.corrections.all()),
        )  # fmt: skip
        return format_html(
            '<a class="button" href="{}">{}</a><ul class="corrections">{}</ul>', url, _("Correct this event"), done
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/correct/", self.admin_site.admin_view(self.correct_view), name="events_event_correct"
            ),
            *super().get_urls(),
        ]

    def correct_view(self, request, object_id):
        event = self.get_object(request, unquote(object_id))  # 404 for another company's
        company = event.company
        can_write = request.user.can_write or request.user.is_superuser
        form = EventCorrectForm(
            request.POST if request.method == "POST" else None,
            subjects=Subject.objects.for_company(company).order_by("name"),
        )
        status = 200
        if request.method == "POST":
            if not can_write:
                raise PermissionDenied
            if form.is_valid():
                try:
                    event_correct(
                        company=company,
                        actor=request.user,
                        event=event,
                        subject=form.cleaned_data["subject"],
                        add_photo=form.cleaned_data["add_photo"],
                    )
                except KangarooError as exc:
                    form.add_error(None, str(exc.message))
                    for field, problems in exc.fields.items():
                        form.add_error(None, f"{field}: {problems[0]}")
                else:
                    messages.success(request, gettext("The event was corrected; its original is kept."))
                    return HttpResponseRedirect(reverse("admin:events_event_change", args=[event.pk]))
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": event,
            "title": gettext("Correct %(event)s") % {"event": event},
            "form": form,
            "can_write": can_write,
            # The snapshot is a face: only for those who may see faces (a viewer reads the page).
            "snapshot_url": (
                reverse("event-snapshot", args=[event.pk])
                if event.snapshot and request.user.can_view_biometrics
                else None
            ),
        }
        return TemplateResponse(request, "admin/events/event/correct.html", context, status=status)


@admin.register(EventCorrection)
class EventCorrectionAdmin(ReadOnlyAdminMixin, TenantAdmin):
    """Every correction, with what the event said before; above the list, the rate of
    corrected events per 1,000 by screen over the last 30 days."""

    list_display = ["created_at", "event_link", "kind", "screen", "original_subject_name", "original_confidence",
                    "subject_name", "actor_repr"]  # fmt: skip
    list_filter = ["kind", "screen"]
    list_select_related = ["screen", "event"]
    change_list_template = "admin/events/eventcorrection/change_list.html"

    @admin.display(description=_("event"), ordering="event")
    def event_link(self, correction):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:events_event_change", args=[correction.event_id]), correction.event
        )

    def changelist_view(self, request, extra_context=None):
        company = admin_company(request)
        rates = selectors.correction_rates(company=company) if company is not None else None
        return super().changelist_view(request, {"rates": rates, **(extra_context or {})})


Event  # noqa: B018 (the admin of events adds EventCorrectionAdminMixin)
