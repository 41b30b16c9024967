"""Every API route of version 1. Apps add their routers here."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts import api as accounts_api
from subjects import api as subjects_api

router = SimpleRouter(trailing_slash=False)
router.register("users", accounts_api.UserViewSet, basename="user")
router.register("audit-log", accounts_api.AuditLogViewSet, basename="audit-log")
router.register("departments", subjects_api.DepartmentViewSet, basename="department")
router.register("subjects", subjects_api.SubjectViewSet, basename="subject")
router.register("photos", subjects_api.PhotoViewSet, basename="photo")

urlpatterns = [
    path("auth/token", accounts_api.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh", accounts_api.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", accounts_api.LogoutView.as_view(), name="auth-logout"),
    path("auth/password", accounts_api.PasswordChangeView.as_view(), name="auth-password"),
    path("me", accounts_api.MeView.as_view(), name="me"),
    path("company", accounts_api.CompanyView.as_view(), name="company"),
    *router.urls,
]
