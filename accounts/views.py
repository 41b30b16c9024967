from django.contrib import admin
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts import services
from kangaroo.context import client_ip


def admin_login(request, **kwargs):
    """The admin login with the same brute-force lock as the API login (429 while locked)."""
    if request.method != "POST":
        return admin.site.login(request, **kwargs)
    username = request.POST.get("username", "")
    address = client_ip(request)
    if services.login_locked(username=username, ip_address=address):
        context = admin.site.each_context(request) | {
            "title": _("Log in"),
            "app_path": request.get_full_path(),
            "form": admin.site.login_form(request) if admin.site.login_form else None,
            "login_throttled": True,
        }
        return render(request, "admin/login_throttled.html", context, status=429)
    response = admin.site.login(request, **kwargs)
    if response.status_code == 302 and request.user.is_authenticated:
        services.login_succeeded(username=username)
    else:
        services.login_failed(username=username, ip_address=address)
    return response
