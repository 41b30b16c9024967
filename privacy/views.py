"""A person's rights in the admin: pages reached from the subject's change page."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from events.models import Event
from kangaroo.admin import scope_for_admin
from kangaroo.errors import KangarooError
from privacy.api import access_export_response
from privacy.erasure import REASON_MAX_LENGTH, subject_erase
from subjects.models import Consent, Photo, Subject


def admin_subject_or_404(request, pk) -> Subject:
    """The subject if the signed-in staff member's company owns it (any, for platform staff);
    404 otherwise, for another company's and a missing one alike."""
    subjects = scope_for_admin(Subject.objects.all(), request)  # tenant: scope_for_admin limits it to theirs
    subject = subjects.select_related("company").filter(pk=pk).first()
    if subject is None:
        raise Http404
    return subject


class EraseForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Why this person is erased (their written request of 3 May, say). Kept in the audit log."),
    )


def subject_erase_page(request, pk: int):
    """Wrapped in `admin.site.admin_view` (kangaroo.urls). Asks for the reason, then erases."""
    subject = admin_subject_or_404(request, pk)
    if not request.user.can_write:
        raise PermissionDenied
    company = subject.company
    form = EraseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subject_erase(company=company, actor=request.user, subject=subject, reason=form.cleaned_data["reason"])
        except KangarooError as exc:
            form.add_error("reason", str(exc.message))
        else:
            messages.success(
                request,
                gettext("%(name)s is erased: their photos, faces, consents and snapshots are deleted.")
                % {"name": subject.name},
            )
            return HttpResponseRedirect(reverse("admin:subjects_subject_changelist"))
    context = {
        **admin.site.each_context(request),
        "opts": Subject._meta,
        "original": subject,
        "form": form,
        "photos": Photo.objects.for_company(company).filter(subject=subject).count(),
        "consents": Consent.objects.for_company(company).filter(subject=subject).count(),
        "events": Event.objects.for_company(company).filter(subject=subject).count(),
        "title": gettext("Erase %(name)s") % {"name": subject.name},
    }
    return TemplateResponse(request, "admin/privacy/subject_erase.html", context)


def subject_access_export_page(request, pk: int):
    """Wrapped in `admin.site.admin_view` (kangaroo.urls): the subject's access export as a
    download, for those who may see faces."""
    subject = admin_subject_or_404(request, pk)
    if not request.user.can_view_biometrics:
        raise PermissionDenied
    return access_export_response(company=subject.company, actor=request.user, subject=subject)
