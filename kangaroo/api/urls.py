"""Every API route of version 1. Apps add their routers here."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts import api as accounts_api
from devices import api as devices_api
from devices import gallery_feed
from events import api as events_api
from events import unknown_api
from integrations import api as integrations_api
from privacy import api as privacy_api
from privacy import purge_api
from subjects import api as subjects_api
from visits import api as visits_api

router = SimpleRouter(trailing_slash=False)
router.register("users", accounts_api.UserViewSet, basename="user")
router.register("audit-log", accounts_api.AuditLogViewSet, basename="audit-log")
router.register("jobs", accounts_api.JobViewSet, basename="job")
router.register("retention-policies", accounts_api.RetentionPolicyViewSet, basename="retention-policy")
router.register("departments", subjects_api.DepartmentViewSet, basename="department")
router.register("subjects", subjects_api.SubjectViewSet, basename="subject")
router.register("photos", subjects_api.PhotoViewSet, basename="photo")
router.register("photo-uploads", subjects_api.BulkUploadViewSet, basename="photo-upload")
router.register("consents", subjects_api.ConsentViewSet, basename="consent")
router.register("boxes", devices_api.BoxViewSet, basename="box")
router.register("screens", devices_api.ScreenViewSet, basename="screen")
router.register("pads", devices_api.PadViewSet, basename="pad")
router.register("tv-boxes", devices_api.TVBoxViewSet, basename="tvbox")
router.register("events", events_api.EventViewSet, basename="event")
router.register("event-corrections", unknown_api.EventCorrectionViewSet, basename="event-correction")
router.register("unknown-people", unknown_api.UnknownPersonViewSet, basename="unknown-person")
router.register("webhooks", integrations_api.WebhookEndpointViewSet, basename="webhook")
router.register("api-keys", integrations_api.ApiKeyViewSet, basename="api-key")
router.register("webhook-deliveries", integrations_api.WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("unknown-snapshots", unknown_api.UnknownSnapshotViewSet, basename="unknown-snapshot")
router.register("visits", visits_api.VisitViewSet, basename="visit")

# Called by the devices themselves, with `Authorization: Device <key>` only.
device_urlpatterns = [
    path("device/heartbeat", devices_api.HeartbeatView.as_view(), name="device-heartbeat"),
    path("device/pad/config", devices_api.PadConfigView.as_view(), name="device-pad-config"),
    path("device/pad/location", devices_api.PadLocationView.as_view(), name="device-pad-location"),
    path("device/consent", devices_api.PadConsentView.as_view(), name="device-consent"),
    path("device/tv-box/config", devices_api.TVBoxConfigView.as_view(), name="device-tvbox-config"),
    path("device/events", events_api.EventIngestView.as_view(), name="device-events"),
    path("device/gallery", gallery_feed.GalleryFeedView.as_view(), name="device-gallery"),
    path("device/recognize", events_api.RecognizeView.as_view(), name="device-recognize"),
    path("device/recognize/upload", events_api.RecognizeUploadView.as_view(), name="device-recognize-upload"),
    path("device/verify", events_api.VerifyView.as_view(), name="device-verify"),
    path("device/verify/upload", events_api.VerifyUploadView.as_view(), name="device-verify-upload"),
]

urlpatterns = [
    path("auth/token", accounts_api.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh", accounts_api.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", accounts_api.LogoutView.as_view(), name="auth-logout"),
    path("auth/password", accounts_api.PasswordChangeView.as_view(), name="auth-password"),
    path("me", accounts_api.MeView.as_view(), name="me"),
    path("company", accounts_api.CompanyView.as_view(), name="company"),
    path("attendance", events_api.AttendanceView.as_view(), name="attendance"),
    path(
        "subjects/<int:pk>/access-export",
        privacy_api.SubjectAccessExportView.as_view(),
        name="subject-access-export",
    ),
    path("subjects/<int:pk>/erase", privacy_api.SubjectEraseView.as_view(), name="subject-erase"),
    path("privacy/purge-preview", purge_api.PurgePreviewView.as_view(), name="privacy-purge-preview"),
    path("privacy/purge", purge_api.PurgeView.as_view(), name="privacy-purge"),
    path("faces/search", subjects_api.FaceSearchView.as_view(), name="face-search"),
    path("faces/search/upload", subjects_api.FaceSearchUploadView.as_view(), name="face-search-upload"),
    *device_urlpatterns,
    *router.urls,
]
