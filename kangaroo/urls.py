from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import PasswordResetView, admin_login, language_switch
from events import views as events_views
from integrations.views import host_settings_page
from kangaroo.api import errors as api_errors
from privacy.views import subject_access_export_page, subject_erase_page
from subjects.views import face_search_page

admin.site.site_header = _("Kangaroo administration")
admin.site.site_title = _("Kangaroo")
admin.site.index_title = _("Front door and attendance")
admin.site.site_url = "/dashboard/"  # "view site" opens the live dashboard


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name none (the API's JSON, files)."""
    return HttpResponsePermanentRedirect(static("kangaroo/favicon.svg"))


password_reset_urls = [
    # The admin login page links to "admin_password_reset" when that name exists.
    path(
        "admin/password_reset/",
        PasswordResetView.as_view(
            email_template_name="accounts/email/password_reset.txt",
            html_email_template_name="accounts/email/password_reset.html",
            subject_template_name="accounts/email/password_reset_subject.txt",
            extra_email_context={"product": "Kangaroo"},
        ),
        name="admin_password_reset",
    ),
    path("admin/password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]

urlpatterns = [
    *password_reset_urls,
    path("admin/login/", admin_login, name="admin-login-throttled"),
    path("admin/language/", language_switch, name="language-switch"),
    path("favicon.ico", favicon),
    path("admin/subjects/search-by-face/", admin.site.admin_view(face_search_page), name="admin-face-search"),
    path(
        "admin/subjects/subject/<int:pk>/access-export/",
        admin.site.admin_view(subject_access_export_page),
        name="admin-subject-access-export",
    ),
    path(
        "admin/subjects/subject/<int:pk>/erase/", admin.site.admin_view(subject_erase_page), name="admin-subject-erase"
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("kangaroo.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, not inline (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("dashboard/", events_views.dashboard, name="dashboard"),
    # A visitor's host's own e-mail settings, through the signed link in each arrival e-mail.
    path("host-settings/<str:token>/", host_settings_page, name="host-settings"),
    path("", include("visits.urls")),
    path("tv/", events_views.tv, name="tv"),
    path("live/image/<str:token>", events_views.live_image, name="live-image"),
    # Last: under /api/ every answer is the JSON envelope, an unknown route's too.
    re_path(r"^api/", api_errors.api_not_found),
]

handler400 = api_errors.handler400
handler404 = api_errors.handler404
handler500 = api_errors.handler500
