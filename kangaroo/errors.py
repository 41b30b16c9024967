"""Every error code Kangaroo answers with, declared once.

Clients branch on `code`, so a code, once shipped, never changes meaning. The API's error
envelope, the OpenAPI schema's `ErrorCode` enum and the admin all read this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: Any  # a lazy translation

    def __str__(self) -> str:
        return self.code


REGISTRY: dict[str, ErrorCode] = {}


def declare(code: str, status: int, message) -> ErrorCode:
    if code in REGISTRY:
        raise ValueError(f"error code {code!r} declared twice")
    REGISTRY[code] = error = ErrorCode(code, status, message)
    return error


def reason_message(reason: str, *, prefixes: tuple[str, ...] = ("",)):
    """The translated words for a stored reason code (a photo's `no_face`, say): the message
    of the registry's code `<prefix><reason>` for the first prefix that has one, else the
    code itself. A code declared later reads in words everywhere it is shown, unchanged."""
    for prefix in prefixes:
        error = REGISTRY.get(f"{prefix}{reason}")
        if error is not None:
            return error.message
    return reason


# --- Generic request errors ---------------------------------------------------------------
VALIDATION_ERROR = declare("validation_error", 400, _("Some fields are not valid."))
PARSE_ERROR = declare("parse_error", 400, _("The request body could not be parsed."))
UNKNOWN_FIELDS = declare("unknown_fields", 400, _("The request contains fields that are not accepted."))
NOT_FOUND = declare("not_found", 404, _("Not found."))
METHOD_NOT_ALLOWED = declare("method_not_allowed", 405, _("This method is not allowed here."))
NOT_ACCEPTABLE = declare("not_acceptable", 406, _("The requested response format is not available."))
UNSUPPORTED_MEDIA_TYPE = declare("unsupported_media_type", 415, _("This content type is not supported."))
PAYLOAD_TOO_LARGE = declare(
    "payload_too_large", 413, _("The request body is larger than this endpoint accepts (see `limit`, in bytes).")
)
THROTTLED = declare("throttled", 429, _("Too many requests. Try again later."))
SERVICE_UNAVAILABLE = declare(
    "service_unavailable", 503, _("The service is briefly unavailable. Try again in a few seconds.")
)
SERVER_ERROR = declare("server_error", 500, _("The server failed to handle this request; it has been logged."))

# --- Authentication and permissions -------------------------------------------------------
NOT_AUTHENTICATED = declare("not_authenticated", 401, _("Authentication credentials were not provided."))
TOKEN_INVALID = declare("token_invalid", 401, _("The token is invalid or has been revoked. Log in again."))
TOKEN_EXPIRED = declare("token_expired", 401, _("The token has expired. Refresh it or log in again."))
LOGIN_FAILED = declare("login_failed", 401, _("The username or password is not correct."))
LOGIN_THROTTLED = declare("login_throttled", 429, _("Too many failed logins. Try again later."))
LOGIN_BUSY = declare("login_busy", 503, _("Too many logins are being checked right now. Try again in a moment."))
PERMISSION_DENIED = declare("permission_denied", 403, _("You do not have permission to do this."))
NO_COMPANY = declare("no_company", 403, _("This account does not belong to a company."))

# --- Accounts -----------------------------------------------------------------------------
PASSWORD_INCORRECT = declare("password_incorrect", 400, _("The current password is not correct."))
PASSWORD_TOO_WEAK = declare("password_too_weak", 400, _("The new password is too weak."))
USERNAME_TAKEN = declare("username_taken", 409, _("This username is already taken."))
USER_EMAIL_TAKEN = declare("user_email_taken", 409, _("A user of this company already has this e-mail address."))
LAST_OWNER = declare("last_owner", 400, _("A company needs at least one active owner."))
CANNOT_CHANGE_SELF = declare("cannot_change_self", 400, _("You cannot change your own role or deactivate yourself."))
OWN_PASSWORD_NEEDS_CURRENT = declare(
    "own_password_needs_current", 400, _("Change your own password with your current one (/api/v1/auth/password).")
)

# --- Subjects -----------------------------------------------------------------------------
DEPARTMENT_NAME_TAKEN = declare("department_name_taken", 409, _("A department with this name already exists."))
SUBJECT_EMAIL_TAKEN = declare("subject_email_taken", 409, _("Another subject of this company has this e-mail address."))
SUBJECT_JOB_NUMBER_TAKEN = declare(
    "subject_job_number_taken", 409, _("Another subject of this company has this job number.")
)
SUBJECT_JOB_NUMBER_REQUIRED = declare("subject_job_number_required", 400, _("An employee needs a job number."))
SUBJECT_VISIT_WINDOW_INVALID = declare("subject_visit_window_invalid", 400, _("The visit must end after it starts."))
SUBJECT_HOST_INVALID = declare("subject_host_invalid", 400, _("The host must be an employee of this company."))
SUBJECT_PHOTO_LIMIT = declare("subject_photo_limit", 400, _("A subject has at most 5 photos."))
PHOTO_INVALID = declare("photo_invalid", 400, _("The photo cannot be used."))
PHOTO_DUPLICATE = declare("photo_duplicate", 409, _("This subject already has this photo."))

# --- Faces: why a photo cannot be enrolled (a photo's `reason`; also refused snapshots) ---
NO_FACE = declare("no_face", 400, _("No face was found in the photo."))
MULTIPLE_FACES = declare("multiple_faces", 400, _("The photo shows more than one face."))
FACE_TOO_SMALL = declare("face_too_small", 400, _("The face is too small; take the photo closer."))
TOO_BLURRY = declare("too_blurry", 400, _("The face is too blurry."))
FACE_NOT_FRONTAL = declare("face_not_frontal", 400, _("The face does not look straight at the camera."))
# Not refused: the photo is enrolled and flagged, the admin decides.
POSSIBLE_DUPLICATE = declare(
    "possible_duplicate", 409, _("This face looks like another subject of the company: one person, two records?")
)
# --- Bulk photo upload: the archive, then each file in it ----------------------------------
ZIP_INVALID = declare("zip_invalid", 400, _("The file is not a ZIP archive, or it is damaged."))
ZIP_TOO_LARGE = declare(
    "zip_too_large", 413, _("The archive is larger than the portal accepts (see `limit`, in bytes).")
)
ZIP_TOO_MANY_FILES = declare(
    "zip_too_many_files", 400, _("The archive holds more files than the portal accepts (see `limit`).")
)
ZIP_UNPACKS_TOO_LARGE = declare(
    "zip_unpacks_too_large", 400, _("The archive unpacks to more than the portal accepts (see `limit`, in bytes).")
)
ZIP_EMPTY = declare("zip_empty", 400, _("The archive holds no photos."))
JOB_NUMBER_UNKNOWN = declare("job_number_unknown", 400, _("No subject of your company has this job number."))
SUBJECT_ARCHIVED = declare("subject_archived", 400, _("This subject is archived; restore them to add photos."))
PHOTO_UPLOAD_EXPIRED = declare(
    "photo_upload_expired", 410, _("This upload has expired and its archive is deleted; upload it again.")
)
PHOTO_UPLOAD_CONFIRMED = declare("photo_upload_confirmed", 409, _("This upload has already been confirmed."))
PHOTO_UPLOAD_NOTHING_TO_STORE = declare(
    "photo_upload_nothing_to_store", 400, _("No file of this upload matched a subject; nothing would be stored.")
)
IMPORT_INVALID = declare("import_invalid", 400, _("The file has errors; nothing was imported."))

# --- Biometric privacy: consent -----------------------------------------------------------
CONSENT_REQUIRED = declare(
    "consent_required",
    409,
    _("This subject has not consented to the use of their face; record their consent before adding a photo."),
)
BIOMETRICS_NOT_PERMITTED = declare(
    "biometrics_not_permitted", 403, _("Your role may not see faces: photos and snapshots are for owners and admins.")
)
CONSENT_NOT_IN_FORCE = declare("consent_not_in_force", 409, _("This subject has no consent in force to withdraw."))
CONSENT_POLICY_OUTDATED = declare(
    "consent_policy_outdated",
    409,
    _(
        "The person was shown another version of the retention policy than the current one "
        "(see `current_version`); show them the current one and ask again."
    ),
)

RETENTION_POLICY_LANGUAGE_UNKNOWN = declare(
    "retention_policy_language_unknown",
    400,
    _("This is not one of the product's languages: en (English) or zh-hant (Traditional Chinese)."),
)
RETENTION_POLICY_MAIN_TEXT_MISSING = declare(
    "retention_policy_main_text_missing",
    400,
    _("The retention policy needs a text in its main language: the text shown when a reader's language has none."),
)

# --- Devices ------------------------------------------------------------------------------
DEVICE_NAME_TAKEN = declare(
    "device_name_taken", 409, _("A device of this kind with this name already exists in your company.")
)
CAMERA_URL_INVALID = declare(
    "camera_url_invalid", 400, _("Enter a camera address like rtsp://user:password@host:554/stream.")
)
GREETING_TEMPLATE_INVALID = declare(
    "greeting_template_invalid", 400, _("The greeting uses a placeholder that does not exist; use {name} or {company}.")
)
BOX_SCREEN_LIMIT = declare("box_screen_limit", 400, _("This box already serves as many screens as it can."))
DEVICE_KEY_INVALID = declare("device_key_invalid", 401, _("The device key is not valid."))
DEVICE_KEY_REVOKED = declare(
    "device_key_revoked", 401, _("The device key has been revoked. Ask an administrator for a new one.")
)
DEVICE_WRONG_KIND = declare("device_wrong_kind", 403, _("This endpoint is for another kind of device."))
GALLERY_RESYNC_REQUIRED = declare(
    "gallery_resync_required",
    410,
    _("This gallery cursor is no longer valid: drop the gallery and start again from 0."),
)
HEARTBEAT_FROM_FUTURE = declare(
    "heartbeat_from_future", 400, _("The heartbeat is dated in the future; check the device's clock.")
)

# --- Events -------------------------------------------------------------------------------
EVENT_BATCH_TOO_LARGE = declare("event_batch_too_large", 400, _("A batch holds at most 500 events."))
EVENT_FROM_FUTURE = declare("event_from_future", 400, _("The event is dated in the future; check the device's clock."))
EVENT_SNAPSHOT_TOO_LARGE = declare(
    "event_snapshot_too_large", 400, _("The snapshot is larger than the portal accepts (see `limit`, in bytes).")
)
EVENT_TOO_OLD = declare("event_too_old", 400, _("The event is older than the portal accepts."))
EVENT_NOT_CORRECTABLE = declare(
    "event_not_correctable", 400, _("Only recognitions and stranger events can be corrected.")
)
EVENT_CORRECTION_UNCHANGED = declare("event_correction_unchanged", 400, _("The event already says this."))
EVENT_WITHOUT_SNAPSHOT = declare("event_without_snapshot", 400, _("This event has no snapshot to add as a photo."))
UNKNOWN_PERSON_MERGE_SELF = declare(
    "unknown_person_merge_self", 400, _("An unknown person cannot be merged with themselves.")
)

# --- Integrations -------------------------------------------------------------------------
WEBHOOK_URL_REFUSED = declare(
    "webhook_url_refused",
    400,
    _("This URL cannot receive webhooks: use http or https with a host name that resolves to public addresses."),
)
API_KEY_INVALID = declare("api_key_invalid", 401, _("The API key is not valid."))
API_KEY_REVOKED = declare("api_key_revoked", 401, _("The API key has been revoked."))
API_KEY_EXPIRED = declare("api_key_expired", 401, _("The API key has expired."))
API_KEY_NAME_TAKEN = declare("api_key_name_taken", 409, _("Another API key of this company has this name."))
API_KEY_SCOPE_MISSING = declare(
    "api_key_scope_missing", 403, _("This API key does not have the scope this request needs.")
)

# --- Background jobs ----------------------------------------------------------------------
JOB_ALREADY_QUEUED = declare(
    "job_already_queued", 409, _("The same job is already queued or running; wait until it has finished.")
)

# --- Attendance ---------------------------------------------------------------------------
ATTENDANCE_RANGE_TOO_LONG = declare(
    "attendance_range_too_long", 400, _("An attendance report covers at most 366 days; choose a shorter range.")
)

# --- Visits -------------------------------------------------------------------------------
VISIT_WINDOW_INVALID = declare("visit_window_invalid", 400, _("The visit must end after it starts."))
VISIT_IN_PAST = declare("visit_in_past", 400, _("The visit has already ended; choose a window in the future."))
VISIT_CONTACT_REQUIRED = declare(
    "visit_contact_required", 400, _("Give the visitor's e-mail address or phone number, to send them the invitation.")
)
VISIT_EMAIL_NOT_VISITOR = declare(
    "visit_email_not_visitor",
    409,
    _("This e-mail address belongs to an employee or VIP of the company, not a visitor."),
)
VISIT_CANCELLED = declare("visit_cancelled", 409, _("This visit is cancelled."))
VISIT_ENDED = declare("visit_ended", 409, _("This visit has ended."))
VISIT_NOT_STARTED = declare("visit_not_started", 409, _("This visit has not started yet."))
VISIT_NOT_ARRIVED = declare("visit_not_arrived", 409, _("This visitor has not arrived yet: check them in first."))
VISIT_LEFT_BEFORE_ARRIVAL = declare(
    "visit_left_before_arrival",
    409,
    _("The visitor cannot leave before they arrived: the departure must come after the arrival."),
)
VISIT_NO_EMAIL = declare("visit_no_email", 400, _("This visit has no e-mail address to send the invitation to."))
VISIT_LINK_INVALID = declare(
    "visit_link_invalid", 404, _("This link does not work. It may have expired or been replaced by a newer one.")
)
VISIT_LINK_THROTTLED = declare("visit_link_throttled", 429, _("Too many requests on this page. Try again later."))

ERROR_CODE_CHOICES = [(error.code, error.code) for error in REGISTRY.values()]


def related_not_found(field: str) -> KangarooError:
    """A related id in a request body that is missing or another company's: one answer for
    both, 400 `validation_error` with "Not found." on `field` (README, "Related ids")."""
    return KangarooError(VALIDATION_ERROR, fields={field: [str(NOT_FOUND.message)]})


class KangarooError(Exception):
    """A failure with a declared code, raised by services and turned into the envelope.

    `fields` maps field names to lists of messages; `extra` carries details a client can
    act on (a limit and the current count, say).
    """

    def __init__(
        self,
        error: ErrorCode,
        message=None,
        *,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        self.error = error
        self.message = message if message is not None else error.message
        self.fields = fields or {}
        self.extra = extra or {}
        super().__init__(str(self.message))

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status
