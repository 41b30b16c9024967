"""The visitor's page, reached through the personal link in their invitation: no account,
no admin, made for a phone. The visitor reads the company's retention policy, agrees (a
consent recorded "on the web" to that version), then takes a selfie or picks a photo,
which is normalised and enrolled like any other; the page says in plain words what came
of it, refreshing itself while the photo is checked. They may also decline the face
option: reception checks them in.

The page acts only on the visit its link names and that visit's visitor: no id is read
from the request. Every request is counted per link and per client address before the
link is looked up, and an unknown, expired, revoked or cancelled link gets one answer,
so neither the limits nor the answers tell a guesser anything.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts.services import rate_count, retention_policy_current
from kangaroo.context import client_ip
from kangaroo.errors import KangarooError
from subjects.models import PhotoStatus
from subjects.selectors import consent_in_force
from visits import services
from visits.models import LANGUAGES
from visits.selectors import visit_get_by_token, visit_visitor_photo
from visits.services import LANGUAGE_CODES, visit_token_hash

# What became of a photo, in words a visitor understands (the stored reason codes).
PHOTO_ADVICE = {
    "no_face": _("We could not find a face. Try again facing the camera, with your whole face in the picture."),
    "multiple_faces": _("We found more than one face. Make sure you are alone in the picture."),
    "face_too_small": _("Your face is too small in the picture. Hold the camera closer."),
    "too_blurry": _("The picture is blurry. Hold still, in good light, and try again."),
    "face_not_frontal": _("Look straight into the camera and try again."),
    "photo_invalid": _("We could not read this picture. Take or choose another one."),
}
PHOTO_ADVICE_OTHER = _("This picture cannot be used. Take or choose another one.")


def photo_advice(reason: str) -> str:
    return str(PHOTO_ADVICE.get(reason, PHOTO_ADVICE_OTHER))


class ConsentForm(forms.Form):
    agree = forms.BooleanField(required=True)
    policy_version = forms.IntegerField(min_value=1)
    policy_language = forms.CharField(max_length=20, required=False)  # the language of the text shown


class PhotoForm(forms.Form):
    selfie = forms.FileField(required=False)
    photo = forms.FileField(required=False)

    def upload(self):
        return self.cleaned_data.get("selfie") or self.cleaned_data.get("photo")


def _private(response):
    # The token is in the address: no referrer carries it to another site (same-origin: a
    # form post still carries its Origin, which CSRF checks), no cache or index keeps the page.
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def link_invalid(request):
    """One answer for an unknown, expired, revoked or cancelled link, in the browser's language."""
    return _private(render(request, "visits/link_invalid.html", status=404))


def _throttled(request, token: str) -> bool:
    window = settings.VISIT_LINK_WINDOW
    address = client_ip(request)
    per_client = rate_count(f"visit-link:ip:{address}", window) if address else 0
    per_link = rate_count(f"visit-link:link:{visit_token_hash(token[:100])[:32]}", window)
    return per_client > settings.VISIT_LINK_CLIENT_LIMIT or per_link > settings.VISIT_LINK_LIMIT


def _language(request, visit) -> str:
    wanted = request.GET.get("lang", "")
    return wanted if wanted in LANGUAGE_CODES else visit.language


def _back(request, language: str, **flags):
    query = {"lang": language, **flags}
    return HttpResponseRedirect(f"{request.path}?{urlencode(query)}")


@require_http_methods(["GET", "POST"])
def visit_page(request, token: str):
    if _throttled(request, token):
        response = render(request, "visits/throttled.html", status=429)
        response["Retry-After"] = str(settings.VISIT_LINK_WINDOW)
        return _private(response)
    visit = visit_get_by_token(token=token)
    if visit is None:
        return link_invalid(request)
    language = _language(request, visit)
    with translation.override(language), timezone.override(visit.company.zone):
        problem = ""
        if request.method == "POST":
            outcome = _act(request, visit)
            if isinstance(outcome, dict):
                return _private(_back(request, language, **outcome))
            problem = outcome
        return _private(_render(request, visit, language, problem))


def _act(request, visit) -> dict | str:
    """Do what the visitor asked; a dict of flags for the page to show after the redirect,
    or the words of what went wrong."""
    action = request.POST.get("action", "")
    try:
        if action == "consent":
            form = ConsentForm(request.POST)
            if not form.is_valid():
                return str(_("Tick the box to agree, or choose to check in at reception."))
            services.visit_consent_give(
                visit=visit,
                policy_version=form.cleaned_data["policy_version"],
                policy_language=form.cleaned_data["policy_language"] or None,
            )
            return {}
        if action == "photo":
            form = PhotoForm(request.POST, request.FILES)
            upload = form.upload() if form.is_valid() else None
            if upload is None:
                return str(_("Take a selfie or choose a photo first."))
            services.visit_photo_submit(visit=visit, upload=upload)
            return {}
        if action == "decline":
            services.visit_face_decline(visit=visit)
            return {"declined": "1"}
    except KangarooError as exc:
        if exc.code == "consent_policy_outdated":
            return str(_("The policy has just changed. Please read the current version and agree again."))
        if exc.code == "consent_required":
            return str(_("Please agree to the policy before sending a photo."))
        if exc.code in ("photo_invalid", "payload_too_large"):
            return photo_advice("photo_invalid")
        if exc.code == "photo_duplicate":
            return str(_("We already have this picture. Take a new one."))
        return str(exc.message)
    return str(_("Something was missing. Please try again."))


def _render(request, visit, language: str, problem: str):
    company = visit.company
    consent = consent_in_force(company=company, subject=visit.visitor)
    photo = visit_visitor_photo(visit=visit) if consent is not None or not company.consent_required else None
    policy = retention_policy_current(company=company)
    state = "consent"
    if consent is not None:
        state = "photo"
        if photo is not None:
            state = {PhotoStatus.PENDING: "checking", PhotoStatus.OK: "ready"}.get(photo.status, "rejected")
    context = {
        "visit": visit,
        "company": company,
        "host_name": visit.host.name if visit.host_id and visit.host else "",
        "starts": timezone.localtime(visit.starts_at),
        "ends": timezone.localtime(visit.ends_at),
        "policy": policy,
        "policy_text": policy.text_for(language),
        "state": state,
        "declined": request.GET.get("declined") == "1" and consent is None,
        "advice": photo_advice(photo.reason) if state == "rejected" else "",
        "problem": problem,
        "language": language,
        "languages": LANGUAGES,
    }
    return render(request, "visits/page.html", context, status=400 if problem else 200)
