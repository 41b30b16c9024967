"""The page where a host chooses whether to get e-mails about their visitors, and in which
language. Reached through the signed link in each e-mail; no login (hosts rarely have one)."""

from __future__ import annotations

from django import forms
from django.http import Http404
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from integrations.arrivals import host_for_token, host_language, host_settings_of, host_settings_save
from integrations.models import HostSettings


class HostSettingsForm(forms.Form):
    arrival_emails = forms.BooleanField(label=_("E-mail me when my visitors arrive"), required=False)
    language = forms.ChoiceField(
        label=_("Language of these e-mails"),
        choices=[("", _("As my account, or the portal's")), *HostSettings._meta.get_field("language").choices],
        required=False,
    )


@require_http_methods(["GET", "POST"])
def host_settings_page(request, token: str):
    host = host_for_token(token)
    if host is None:
        raise Http404
    preference = host_settings_of(host)
    saved = False
    if request.method == "POST":
        form = HostSettingsForm(request.POST)
        if form.is_valid():
            preference = host_settings_save(
                host=host, arrival_emails=form.cleaned_data["arrival_emails"], language=form.cleaned_data["language"]
            )
            saved = True
    else:
        form = HostSettingsForm(initial={"arrival_emails": preference.arrival_emails, "language": preference.language})
    with translation.override(host_language(host, preference)):
        return render(request, "integrations/host_settings.html", {"form": form, "host": host, "saved": saved})
