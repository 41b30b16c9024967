from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import views as auth_views
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import services
from kangaroo.context import client_ip
from kangaroo.errors import KangarooError


def admin_login(request, **kwargs):
    """The admin login under the same throttle as the API login (429 with Retry-After)."""
    if request.method != "POST":
        return admin.site.login(request, **kwargs)
    username = request.POST.get("username", "")
    try:
        attempt = services.login_attempt_start(username=username, ip_address=client_ip(request))
    except KangarooError as exc:
        context = admin.site.each_context(request) | {
            "title": _("Log in"),
            "app_path": request.get_full_path(),
            "form": admin.site.login_form(request) if admin.site.login_form else None,
            "login_refused": exc.error.message,
        }
        response = render(request, "admin/login_throttled.html", context, status=exc.error.status)
        response["Retry-After"] = str(exc.extra["retry_after"])
        return response
    succeeded = False
    try:
        response = admin.site.login(request, **kwargs)
        succeeded = response.status_code == 302 and request.user.is_authenticated
    finally:
        services.login_attempt_finish(attempt, succeeded=succeeded)
    return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset page, rate-limited per e-mail address and per client address.

    Over a limit no mail goes out, but the answer is the usual redirect to the "check your
    mail" page: the same as for a sent mail and for an unknown address.
    """

    def form_valid(self, form):
        allowed = services.password_reset_allowed(email=form.cleaned_data["email"], ip_address=client_ip(self.request))
        if allowed:
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())


@require_POST
@staff_member_required
def language_switch(request):
    """The admin header's language switch: saves the pick to the user's own setting (which
    wins over the browser's language everywhere, the API included) and goes back."""
    language = request.POST.get("language", "")
    try:
        services.user_language_set(user=request.user, language=language)
    except KangarooError:
        return HttpResponseBadRequest()
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("admin:index")
    return HttpResponseRedirect(back)
