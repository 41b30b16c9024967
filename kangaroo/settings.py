"""Kangaroo settings, read from the environment only.

With no variables set, Kangaroo runs in its embedded shape: SQLite under `var/`, jobs run
inline, the in-memory channel layer, console e-mail, media under `var/media/`. Setting
DATABASE_URL, REDIS_URL, EMAIL_URL and MEDIA_STORAGE_URL switches each piece to its
production engine. `.env.example` lists every variable.

Importing this module only reads: it never creates a folder or a file. `manage.py prepare`
(which `make run` calls before migrating) creates `var/` and the generated secret key.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from kangaroo.env import envbool, envfloat, envint, envlist, envsecret, envstorage, envstr
from kangaroo.logs import LOG_FORMATS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)


# Where `manage.py prepare` keeps the key it generates when SECRET_KEY is not set.
GENERATED_SECRET_KEY_PATH = VAR_DIR / "secret_key"


def _secret_key() -> tuple[str, bool]:
    """SECRET_KEY from the environment, else the one `manage.py prepare` generated into var/.

    Keeping the generated key on disk means sessions and reset links survive a restart of
    the embedded setup; production sets SECRET_KEY (or SECRET_KEY_FILE) explicitly. With
    neither (a fresh clone running its tests, a one-off command), the process makes up a
    key of its own; `check --deploy` refuses that, since processes would not share it.
    """
    key = envsecret("SECRET_KEY")
    if key:
        if len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
        return key, False
    try:
        key = GENERATED_SECRET_KEY_PATH.read_text().strip()
    except FileNotFoundError:
        key = ""
    except OSError as exc:
        raise ImproperlyConfigured(f"{GENERATED_SECRET_KEY_PATH} cannot be read: {exc}") from None
    if key:
        return key, False
    return secrets.token_urlsafe(64), True


SECRET_KEY, SECRET_KEY_PER_PROCESS = _secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Django
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Third party
    "channels",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the app (no CDN)
    "django_rq",
    "import_export",
    # Kangaroo
    "accounts",
    "subjects",
    "devices",
    "events",
    "integrations",
    "privacy",
    "visits",
    "kangaroo",  # last: the project's own commands (seed_demo imports every app)
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before host checks and the HTTPS redirect
    # (probes and scrapers address a process directly over HTTP); see kangaroo/ops.py.
    # They have no request id and no access line: probes every few seconds would drown it.
    "kangaroo.ops.OpsEndpointsMiddleware",
    # Next, so that every other answer (a redirect to HTTPS, a static file) carries its
    # request id and has its access line.
    "kangaroo.logs.RequestIdMiddleware",
    "kangaroo.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "kangaroo.csp.ContentSecurityPolicyMiddleware",
    "kangaroo.context.RequestContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "kangaroo.api.parsers.QueryTextMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "accounts.middleware.CompanyTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kangaroo.urls"
ASGI_APPLICATION = "kangaroo.asgi.application"
WSGI_APPLICATION = "kangaroo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# A kept-alive HTTP connection is closed after this many requests (kangaroo.handlers), so the
# clients' connections spread again over the server's processes; 0 keeps them open.
HTTP_KEEPALIVE_REQUESTS = envint("HTTP_KEEPALIVE_REQUESTS", 100, minimum=0)

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = envsecret("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'kangaroo.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI, sync views run in a thread pool and persistent connections are never
    # closed by the request cycle, so they leak. Django's own pool (psycopg_pool) reuses
    # connections safely instead; CONN_MAX_AGE must then be 0.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Server-side binding queries (kangaroo.compiled: the fixed-shape lookups of every device
    # post) are prepared once run this many times on a connection. Behind a pooler that cannot
    # keep prepared statements (PgBouncer in transaction mode before 1.21), set 0: off.
    prepare_after = envint("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = prepare_after or None
    if envbool("DATABASE_POOL", True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": envint("DATABASE_POOL_MIN", 2, minimum=0),
            "max_size": envint("DATABASE_POOL_MAX", 10, minimum=1),
            "timeout": envint("DATABASE_POOL_TIMEOUT", 10, minimum=1),
        }
else:
    # SQLite serves the embedded shape: requests, websockets and inline jobs of one process
    # share one file. WAL lets readers go on while one writer writes; IMMEDIATE takes the
    # write lock when a transaction begins, so two writers queue (up to `timeout` seconds)
    # instead of one failing at once when it upgrades a read lock mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: jobs, websockets, cache -----------------------------------------------------
REDIS_URL = envsecret("REDIS_URL") or ""
JOBS_INLINE = not REDIS_URL
# Inline, a job queued with `detach=True` (minutes of work: a bulk photo upload) runs in a
# thread of its own so that its request answers at once (kangaroo/jobs.py).
JOBS_INLINE_DETACH = True

RQ_QUEUES = {
    "default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 600},
}
# Queuing a job happens in the request's thread: an unanswering Redis holds it at most about
# this long, to connect and for each answer, before the job runs in place (kangaroo/jobs.py).
# Workers connect with RQ's own timeouts, which exceed their blocking wait for the next job.
JOBS_REDIS_CONNECT_TIMEOUT_SECONDS = envfloat("JOBS_REDIS_CONNECT_TIMEOUT_SECONDS", 1.0, minimum=0.1)
JOBS_REDIS_READ_TIMEOUT_SECONDS = envfloat("JOBS_REDIS_READ_TIMEOUT_SECONDS", 2.0, minimum=0.1)
# RQ's worker, running each job under the id of the request that queued it (kangaroo/worker.py).
RQ = {"WORKER_CLASS": "kangaroo.worker.Worker"}

if REDIS_URL:
    # Pub/sub layer: one Redis round trip per message instead of the list-polling of the
    # default RedisChannelLayer, which matters for live dashboards with many viewers.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "kangaroo",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Subject imports: a file up to this size is previewed and imported in the request; a larger
# one (a few thousand rows and more) in a background job whose progress the page shows.
SUBJECT_IMPORT_INLINE_MAX_BYTES = envint("SUBJECT_IMPORT_INLINE_MAX_BYTES", 200_000, minimum=0)

# Live pages (events.consumers): every LIVE_TICK_SECONDS a socket catches up from the
# database on what the channel layer may have lost and tells its page it is alive; every
# LIVE_RECHECK_SECONDS it re-checks that its session or key still admits it.
LIVE_TICK_SECONDS = envint("LIVE_TICK_SECONDS", 5, minimum=1)
LIVE_RECHECK_SECONDS = envint("LIVE_RECHECK_SECONDS", 30, minimum=1)
# A socket's messages waiting to be sent to its page, at most: a page that falls this far
# behind (it stopped reading, or reads too slowly) is closed with 1011 and resumes.
LIVE_INBOX_MESSAGES = envint("LIVE_INBOX_MESSAGES", 500, minimum=1)

# --- Authentication ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Django's ModelBackend, except that the connection goes back to the pool while hashing.
AUTHENTICATION_BACKENDS = ["accounts.backends.ModelBackendReleasingConnection"]
LOGIN_URL = "admin:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password-reset links stop working after this many seconds (Django's default is 3 days;
# an access-control product should not leave a takeover link valid that long).
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", 60 * 60 * 2, minimum=60)
# Reset mails sent at most this many times per e-mail address and per client address within
# the window (seconds); past that the page answers as usual and sends nothing.
PASSWORD_RESET_LIMIT = envint("PASSWORD_RESET_LIMIT", 3, minimum=1)
PASSWORD_RESET_CLIENT_LIMIT = envint("PASSWORD_RESET_CLIENT_LIMIT", 10, minimum=1)
PASSWORD_RESET_WINDOW = envint("PASSWORD_RESET_WINDOW", 60 * 60, minimum=1)
# Failed logins (API and admin) within the window: a (username, client address) pair or a
# client address past the limit is refused until the window ends; a username past it from
# all addresses together gets one attempt per backoff period (doubling up to the maximum).
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = envint("LOGIN_FAILURE_WINDOW", 15 * 60, minimum=1)
LOGIN_BACKOFF_MAX = envint("LOGIN_BACKOFF_MAX", 60, minimum=1)
# Passwords hashed at once per server process (API and admin logins together). A login that
# finds them all busy answers 503 `login_busy` with Retry-After at once, without hashing, so
# a login burst cannot take the threads that serve device ingest.
LOGIN_CONCURRENT_HASHES = envint("LOGIN_CONCURRENT_HASHES", 2, minimum=1)

# --- Devices ----------------------------------------------------------------------------
# A device is online while its last heartbeat is at most this many seconds old. Devices
# are told to send one every third of it, so two lost heartbeats do not mark them offline.
DEVICE_OFFLINE_AFTER = envint("DEVICE_OFFLINE_AFTER", 90, minimum=10)
# A box more than GALLERY_LAG_CHANGES changes behind the gallery for longer than
# GALLERY_LAG_SECONDS shows as lagging. Compaction runs every GALLERY_COMPACT_EVERY seconds
# and drops tombstones every box has read or older than GALLERY_TOMBSTONE_DAYS.
GALLERY_LAG_CHANGES = envint("GALLERY_LAG_CHANGES", 0, minimum=0)
GALLERY_LAG_SECONDS = envint("GALLERY_LAG_SECONDS", 300, minimum=1)
GALLERY_COMPACT_EVERY = envint("GALLERY_COMPACT_EVERY", 3600, minimum=60)
GALLERY_TOMBSTONE_DAYS = envint("GALLERY_TOMBSTONE_DAYS", 30, minimum=1)
# Events dated further back than this are refused (a device replaying a very old buffer).
EVENT_MAX_AGE_DAYS = envint("EVENT_MAX_AGE_DAYS", 30, minimum=1)
# A face snapshot a box or pad sends with an event, before base64. It also sizes the event
# endpoint's body limit: 500 events with snapshots this large fit (see events.services).
EVENT_SNAPSHOT_MAX_BYTES = envint("EVENT_SNAPSHOT_MAX_KB", 64, minimum=1) * 1024

# --- Face engine (faces/, subjects/face_index.py) -------------------------------------------
# Enrolment photos are refused (with the reason) when the face's smaller side is under
# FACE_MIN_SIZE pixels, its sharpness (variance of the Laplacian on the aligned 150 px face)
# is under FACE_MIN_SHARPNESS, or the nose sits more than FACE_MAX_YAW eye distances off
# the middle of the eyes (a turned head). The detector upsamples FACE_UPSAMPLE times (1:
# faces from about 40 px; 0: from 80 px, five times faster) on the image scaled down to
# FACE_DETECT_MAX_SIDE. Each process rebuilds a company's face index at most every
# FACE_INDEX_RECHECK_SECONDS after its gallery changed, and keeps the indexes of the
# companies searched most recently within FACE_INDEX_CACHE_MB (about 53 MB per 100,000 faces).
FACE_MIN_SIZE = envint("FACE_MIN_SIZE", 80, minimum=20)
FACE_MIN_SHARPNESS = envfloat("FACE_MIN_SHARPNESS", 15.0, minimum=0.0)
FACE_MAX_YAW = envfloat("FACE_MAX_YAW", 0.3, minimum=0.0, maximum=1.0)
FACE_UPSAMPLE = envint("FACE_UPSAMPLE", 1, minimum=0)
FACE_DETECT_MAX_SIDE = envint("FACE_DETECT_MAX_SIDE", 800, minimum=160)
FACE_INDEX_RECHECK_SECONDS = envfloat("FACE_INDEX_RECHECK_SECONDS", 1.0, minimum=0.0)
FACE_INDEX_CACHE_MB = envint("FACE_INDEX_CACHE_MB", 1024, minimum=1)
# The largest image (KiB, before base64) a pad or box sends to be recognised or verified, or
# an admin to search by face: a camera frame, not an HR photo (`photo_invalid`, `too_large`).
FACE_SNAPSHOT_MAX_BYTES = envint("FACE_SNAPSHOT_MAX_KB", 2048, minimum=16) * 1024

# --- Unknown people (events/unknown_people.py) ------------------------------------------------
# A stranger's face joins the nearest unknown person of the company when it lies within
# UNKNOWN_CLUSTER_THRESHOLD (Euclidean, dlib's scale: the same person is typically under 0.5,
# two people over 0.6), else it starts a new one. Each keeps its UNKNOWN_BEST_SNAPSHOTS best
# snapshots. The retention purge (privacy.purge) deletes unknown people after each company's
# stranger window.
UNKNOWN_CLUSTER_THRESHOLD = envfloat("UNKNOWN_CLUSTER_THRESHOLD", 0.5, minimum=0.1, maximum=1.0)
UNKNOWN_BEST_SNAPSHOTS = envint("UNKNOWN_BEST_SNAPSHOTS", 10, minimum=1)

# --- Retention purge (privacy/purge.py) ---------------------------------------------------------
# Every PRIVACY_PURGE_SECONDS the periodic runner deletes each company's data past its
# retention windows (the company's settings), unknown people included.
PRIVACY_PURGE_SECONDS = envint("PRIVACY_PURGE_SECONDS", 3600, minimum=60)

# --- Webhooks (integrations/) -----------------------------------------------------------------
# A webhook request gives up after WEBHOOK_TIMEOUT_SECONDS. A failed message is retried after
# WEBHOOK_RETRY_BASE_SECONDS x 3^(n-1) (at most WEBHOOK_RETRY_MAX_SECONDS, with jitter) for 24
# hours; the sweep looks for due retries every WEBHOOK_RETRY_SWEEP_SECONDS. URLs resolving to
# private, loopback or link-local addresses are refused unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES
# (a receiver on the same network).
WEBHOOK_TIMEOUT_SECONDS = envint("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOK_RETRY_BASE_SECONDS = envint("WEBHOOK_RETRY_BASE_SECONDS", 10, minimum=1)
WEBHOOK_RETRY_MAX_SECONDS = envint("WEBHOOK_RETRY_MAX_SECONDS", 3 * 3600, minimum=1)
WEBHOOK_RETRY_SWEEP_SECONDS = envint("WEBHOOK_RETRY_SWEEP_SECONDS", 15, minimum=1)
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = envbool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# The portal's address as people reach it, for links in e-mails sent by jobs (no request to
# take it from): a visitor's host's settings link.
PORTAL_URL = envstr("PORTAL_URL", "http://127.0.0.1:8000")
# Sent and failed messages are deleted from the delivery log after this many days.
WEBHOOK_LOG_DAYS = envint("WEBHOOK_LOG_DAYS", 30, minimum=1)

# --- Visitors' personal links (visits/) ---------------------------------------------------------
# Requests a visitor's page answers per link and per client address within the window; past
# either limit it answers 429. A visitor needs a few dozen (the page refreshes while a photo
# is checked); a guesser trying tokens from one address is stopped by the second limit.
VISIT_LINK_LIMIT = envint("VISIT_LINK_LIMIT", 120, minimum=1)
VISIT_LINK_CLIENT_LIMIT = envint("VISIT_LINK_CLIENT_LIMIT", 300, minimum=1)
VISIT_LINK_WINDOW = envint("VISIT_LINK_WINDOW", 900, minimum=1)

# --- Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = envstr("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("zh-hant", _("Traditional Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Files ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
# Photo uploads: refused above this size or pixel count (checked before decoding), and
# stored scaled down to this longest side.
PHOTO_MAX_BYTES = envint("PHOTO_MAX_MB", 10, minimum=1) * 2**20
PHOTO_MAX_PIXELS = envint("PHOTO_MAX_MEGAPIXELS", 50, minimum=1) * 1_000_000
PHOTO_MAX_SIDE = envint("PHOTO_MAX_SIDE", 1600, minimum=256)
# Bulk photo upload (a ZIP of photos named by job number): the archive's size, how many
# files it may hold and how much they may unpack to (zip bombs), and how long an archive
# waits for its confirmation before it is deleted. Each file is limited like one photo.
PHOTO_ZIP_MAX_BYTES = envint("PHOTO_ZIP_MAX_MB", 500, minimum=1) * 2**20
PHOTO_ZIP_MAX_FILES = envint("PHOTO_ZIP_MAX_FILES", 1000, minimum=1)
PHOTO_ZIP_MAX_TOTAL_BYTES = envint("PHOTO_ZIP_MAX_TOTAL_MB", 2000, minimum=1) * 2**20
PHOTO_ZIP_EXPIRES_AFTER = envint("PHOTO_ZIP_EXPIRES_MINUTES", 60, minimum=1) * 60
# No MEDIA_URL is served: biometric files go only through views that check the company.
STATIC_MANIFEST = envbool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    # Photos, thumbnails, snapshots: MEDIA_ROOT, or an S3-compatible bucket that every web
    # node shares (MEDIA_STORAGE_URL). kangaroo/media.py is the only code that touches them.
    "default": envstorage("MEDIA_STORAGE_URL"),
    "staticfiles": {
        "BACKEND": (
            # Hashed names need `collectstatic` first; production runs it at deploy time.
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Without collected, hashed files (development, tests), serve straight from the sources.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# --- E-mail -----------------------------------------------------------------------------
EMAIL_URL = envsecret("EMAIL_URL") or ""
if EMAIL_URL:
    vars().update(dj_email_url.parse(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Kangaroo <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10, minimum=1)

# --- Security (HTTPS in production; `check --deploy` is clean with DEBUG off) -------------
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Only the app's own files: no inline script or style, no other origin. Live pages talk to
# the same host over websockets ('self' covers ws:/wss: of the page's own host); photos and
# snapshots come from the app, shown as blob: or data: URLs where a page builds them.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
if envbool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# auth.W004: usernames are unique per company, not globally; the login name
# `username@company` is unique, and the authentication backend resolves it.
SILENCED_SYSTEM_CHECKS = ["auth.W004", *envlist("SILENCED_SYSTEM_CHECKS", [])]

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Company API keys (`Bearer kgr_api_...`) first: any other bearer token is left to the JWT class.
        "integrations.authentication.ApiKeyAuthentication",
        "accounts.authentication.UserJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["kangaroo.api.permissions.IsCompanyMember"],
    "DEFAULT_PAGINATION_CLASS": "kangaroo.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["kangaroo.api.filters.FilterBackend"],
    # Request bodies are JSON; only the views that take a file add multipart (`parser_classes`),
    # so the schema lists exactly the content types each operation accepts.
    "DEFAULT_PARSER_CLASSES": ["kangaroo.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "kangaroo.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "kangaroo.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_VERSIONING_CLASS": None,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=envint("JWT_ACCESS_SECONDS", 5 * 60, minimum=10)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=envint("JWT_REFRESH_SECONDS", 7 * 86400, minimum=60)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": envsecret("JWT_SIGNING_KEY") or SECRET_KEY,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kangaroo API",
    "DESCRIPTION": (
        "Face-recognition access control and attendance. Every error answers "
        '`{"error": {"code": ..., "message": ..., "fields": {...}, "request_id": ...}}` with a code from the '
        "`ErrorCode` enum; `request_id` is also every answer's `X-Request-ID` header (a proxy may set it on the "
        "request). Authenticate with `Authorization: Bearer <access token>` from "
        "`/api/v1/auth/token`, or with a company API key (`Bearer kgr_api_...`, scoped; see `/api/v1/api-keys`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ErrorCodeEnum": "kangaroo.api.errors.ERROR_CODE_CHOICES",
        "DeviceStatusEnum": "devices.models.Status",
        "CameraStatusEnum": "devices.models.CameraStatus",
        "SubjectTypeEnum": "subjects.models.SubjectType",
        "EventKindEnum": "events.models.EventKind",
        "CorrectionKindEnum": "events.models.CorrectionKind",
        "PhotoUploadStateEnum": "subjects.models.PhotoUploadState",
        "ConsentMethodEnum": "subjects.models.ConsentMethod",
        "UserConsentMethodEnum": "subjects.api.USER_CONSENT_METHODS",
        "JobKindEnum": "accounts.models.job_kind_choices",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"],
    # The API docs' Swagger UI comes from the app's static files, so it works offline and
    # under the Content-Security-Policy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Operations: /readyz and /metrics (kangaroo/ops.py, kangaroo/metrics.py) ------------------
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it does not exist.
# Each /readyz probe (database, Redis, queues) and each Redis read of a scrape gives up after
# READYZ_TIMEOUT_SECONDS. With several processes, PROMETHEUS_MULTIPROC_DIR (read by
# prometheus-client itself) must be set for all of them: see the README's operations part.
METRICS_TOKEN = envsecret("METRICS_TOKEN") or ""
READYZ_TIMEOUT_SECONDS = envfloat("READYZ_TIMEOUT_SECONDS", 2.0, minimum=0.1)

# --- Logging ----------------------------------------------------------------------------
# kangaroo/logs.py: every line carries its request's id. "plain" reads well in a terminal
# (the embedded shape); "json" writes one object per line for a log collector.
LOG_FORMAT = envstr("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": LOG_FORMATS[LOG_FORMAT]}},
    "filters": {
        "context": {"()": "kangaroo.logs.ContextFilter"},
        "secret_paths": {"()": "kangaroo.logs.SecretPathFilter"},
        "redis_outage": {"()": "kangaroo.logs.RedisOutageFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["context"]},
        "discard": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},  # its debug lines are every query with its parameters
        # Django's own console handler writes the plain shape whatever LOG_FORMAT says: its
        # lines go to the root's handler like everyone's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["secret_paths"]},
        "django.security.csrf": {"filters": ["secret_paths"]},
        # uvicorn's own lines in the same shape; its access log is off: RequestIdMiddleware
        # writes one line per request, with the request's id, the requester and the duration.
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["discard"], "propagate": False},
        "PIL": {"level": "INFO"},  # its debug lines describe the chunks of every image decoded
        # While Redis restarts: one warning per failed broadcast (kangaroo.logs.RedisOutageFilter).
        "events.live": {"filters": ["redis_outage"]},
        "events.hub": {"filters": ["redis_outage"]},
        "events.consumers": {"filters": ["redis_outage"]},
        "channels_redis.pubsub": {"filters": ["redis_outage"]},
    },
}
