import datetime
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.choices import BaseChoiceIterator
from django.utils.translation import gettext_lazy as _

from kangaroo.tenancy import TenantModel, TenantQuerySet


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


# The default distance under which two faces are taken for the same person (README, "Faces":
# chosen from the distances of the test portraits and their transformations).
FACE_MATCH_THRESHOLD = 0.55


# Retention windows, in days. Biometric data goes at the latest three years after the
# person's last interaction (BIPA, 740 ILCS 14/15(a)); events and the audit log may be kept
# for up to ten years; the audit log at least 30 days, so that it can show anything at all.
BIOMETRIC_RETENTION_MAX_DAYS = 3 * 365
RECORD_RETENTION_MAX_DAYS = 10 * 365
AUDIT_RETENTION_MIN_DAYS = 30
RETENTION_FIELDS = (
    "retention_visitor_days", "retention_stranger_days", "retention_event_days", "retention_inactive_days",
    "retention_audit_days",
)  # fmt: skip


class DateOrder(models.TextChoices):
    """How an import reads a date written with slashes and the year last (03/04/2026)."""

    REFUSE = "", _("Refuse such dates")
    DAY_FIRST = "dmy", _("Day first: 03/04/2026 is 3 April")
    MONTH_FIRST = "mdy", _("Month first: 03/04/2026 is 4 March")


class Company(models.Model):
    """The tenant. Everything a company owns points here; nothing crosses companies."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Taipei", validators=[validate_time_zone])
    # Where visitors come: in their invitation, on their personal page and on their badge.
    address = models.TextField(
        _("address for visitors"),
        max_length=500,
        blank=True,
        help_text=_("Where visitors come, as their invitation shows it: street, building, floor, reception."),
    )
    # Attendance: arriving after work_start is late, leaving before work_end is early.
    work_start = models.TimeField(_("work starts"), default=datetime.time(9, 0))
    work_end = models.TimeField(_("work ends"), default=datetime.time(18, 0))
    date_order = models.CharField(
        _("date order in imports"),
        max_length=3,
        blank=True,
        default=DateOrder.REFUSE,
        choices=DateOrder.choices,
        help_text=_(
            "How an imported date such as 03/04/2026 is read. Dates written year first "
            "(2026-04-03, 2026/4/3) are always accepted."
        ),
    )
    # Recognition, verification, search and duplicate checks accept a face closer than this
    # (Euclidean distance of dlib embeddings), for employees, visitors and VIPs alike.
    face_match_threshold = models.FloatField(
        _("face match threshold"),
        default=FACE_MATCH_THRESHOLD,
        validators=[MinValueValidator(0.2), MaxValueValidator(1.0)],
        help_text=_("Lower is stricter: fewer strangers let in, more employees asked to try again. Default 0.55."),
    )
    # Biometric privacy. Consent: without a subject's consent no photo of them is stored.
    # Retention: how long each kind of data is kept (the purge reads these); biometric data
    # is capped at three years, the longest BIPA allows after the last interaction.
    consent_required = models.BooleanField(
        _("consent required before enrolment"),
        default=True,
        help_text=_("Without a subject's recorded consent, no photo of them can be added."),
    )
    retention_visitor_days = models.PositiveIntegerField(
        _("visitor photos and faces: days after the visit ends"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(BIOMETRIC_RETENTION_MAX_DAYS)],
    )
    retention_stranger_days = models.PositiveIntegerField(
        _("stranger snapshots and unknown people: days after last seen"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(BIOMETRIC_RETENTION_MAX_DAYS)],
    )
    retention_event_days = models.PositiveIntegerField(
        _("events: days"),
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(RECORD_RETENTION_MAX_DAYS)],
        help_text=_("Older events are kept only as anonymous counts for attendance totals."),
    )
    retention_inactive_days = models.PositiveIntegerField(
        _("biometric data of subjects not seen for: days"),
        default=BIOMETRIC_RETENTION_MAX_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(BIOMETRIC_RETENTION_MAX_DAYS)],
    )
    retention_audit_days = models.PositiveIntegerField(
        _("audit log: days"),
        default=730,
        validators=[MinValueValidator(AUDIT_RETENTION_MIN_DAYS), MaxValueValidator(RECORD_RETENTION_MAX_DAYS)],
    )
    # Set by the retention purge: every event of a local day before this one is deleted (kept
    # only as anonymous counts), so attendance shows those days by their counts.
    events_purged_before = models.DateField(_("events purged before"), null=True, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class PolicyText:
    """The words of a policy version a reader is shown: in `language`, which is the
    reader's own unless `fallback` (the version has no text in it: its main text is shown)."""

    language: str
    text: str
    fallback: bool = False

    @property
    def language_name(self) -> str:
        """The language's name, in the active language."""
        return str(dict(settings.LANGUAGES).get(self.language, self.language))


def normalise_language(language: str | None) -> str:
    """A language code as the policy keys its texts ("zh-Hant" and "zh-hant" are one)."""
    return (language or "").strip().lower()


class RetentionPolicy(TenantModel):
    """One version of the company's retention policy: the text people are shown when they
    are asked for consent. Versions are never edited nor deleted: each saved change of the
    text is a new version, numbered 1, 2, ... per company, so a consent names the words the
    person agreed to. The company's current policy is its highest version.

    A version has its words in each of the product's languages it was written in: the main
    text (`text`, in `language`, always present) and `translations` for the others. One
    number covers them all, so a consent names the version and the language it was shown in.
    They live in the version's own row because a version is written once and always read
    whole: whoever reads a version (a consent's evidence, the export, a pad) has every
    language with it, and adding a language to the product needs no migration."""

    version = models.PositiveIntegerField(_("version"))
    text = models.TextField(_("text"))
    language = models.CharField(
        _("main language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    # {language code: text} for the languages other than `language` that have a text.
    translations = models.JSONField(_("translations"), default=dict, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    created_by_repr = models.CharField(_("by (name)"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("date"), auto_now_add=True)

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["company", "version"], name="retention_policy_version_unique"),
        ]

    def __str__(self) -> str:
        return str(_("Version %(version)s") % {"version": self.version})

    @property
    def texts(self) -> dict[str, str]:
        """Every text of this version by language, the main one first."""
        return {self.language: self.text, **{code: text for code, text in self.translations.items() if text}}

    def text_for(self, language: str | None) -> PolicyText:
        """What a reader of `language` is shown: the text in it, else the main text."""
        language = normalise_language(language)
        if language == self.language:
            return PolicyText(self.language, self.text)
        translated = self.translations.get(language)
        if translated:
            return PolicyText(language, translated)
        return PolicyText(self.language, self.text, fallback=True)


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    VIEWER = "viewer", _("Viewer")


class CompanyUserQuerySet(TenantQuerySet):
    pass


LOGIN_COMPANY_SEPARATOR = "@"


class CompanyUserManager(UserManager.from_queryset(CompanyUserQuerySet)):
    def get_by_natural_key(self, login):
        """The user a login name names: `username@company` for a company's users (the
        company's slug after the last @), a plain username for platform staff."""
        username, separator, slug = str(login).rpartition(LOGIN_COMPANY_SEPARATOR)
        if separator and username:
            user = (
                self.select_related("company")  # tenant: the login names its company
                .filter(company__slug__iexact=slug, username__iexact=username)
                .first()
            )
            if user is not None:
                return user
        user = self.filter(company__isnull=True, username__iexact=login).first()  # tenant: platform staff
        if user is None:
            raise self.model.DoesNotExist(f"no user signs in as {login!r}")
        return user


class User(AbstractUser):
    """A person who signs in: belongs to one company, or to none for platform staff.

    Viewers read; admins and owners write; owners also manage the company's users.
    Platform superusers (no company) see every company.
    """

    # Unique within the company only: a company choosing a username learns nothing about
    # other companies' users. The login name is `username@company-slug` (see login_name).
    username = models.CharField(
        _("username"),
        max_length=150,
        help_text=_("Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only."),
        validators=[UnicodeUsernameValidator()],
    )
    company = models.ForeignKey(
        Company,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("company"),
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        help_text=_("Empty: use the browser's language."),
        choices=[("en", "English"), ("zh-hant", "繁體中文")],
    )
    # Bumped to revoke every token issued before: on logout, password change, deactivation.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    objects = CompanyUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(
                "company",
                Lower("username"),
                name="user_username_unique_per_company",
                violation_error_code="username_taken",
                violation_error_message=_("This username is already taken."),
            ),
            models.UniqueConstraint(
                Lower("username"),
                name="user_username_unique_platform_staff",
                condition=models.Q(company__isnull=True),
                violation_error_code="username_taken",
                violation_error_message=_("This username is already taken."),
            ),
            models.UniqueConstraint(
                "company",
                Lower("email"),
                name="user_email_unique_per_company",
                condition=~models.Q(email=""),
                violation_error_code="user_email_taken",
                violation_error_message=_("A user of this company already has this e-mail address."),
            ),
            models.CheckConstraint(
                condition=models.Q(company__isnull=False) | models.Q(is_superuser=True),
                name="user_has_company_unless_superuser",
            ),
        ]

    @property
    def login_name(self) -> str:
        """What this user types to sign in (admin page, API token, as shown in reset mails)."""
        if self.company_id is None:
            return self.username
        return f"{self.username}{LOGIN_COMPANY_SEPARATOR}{self.company.slug}"

    @property
    def is_platform_staff(self) -> bool:
        return self.is_superuser and self.company_id is None

    @property
    def can_write(self) -> bool:
        return self.is_active and (self.is_superuser or self.role in (Role.OWNER, Role.ADMIN))

    @property
    def can_view_biometrics(self) -> bool:
        """May see faces: photos, snapshots, a person's access export. Owners and admins;
        viewers read the records without the pictures."""
        return self.is_active and (self.is_superuser or self.role in (Role.OWNER, Role.ADMIN))

    @property
    def can_manage_users(self) -> bool:
        return self.is_active and (self.is_superuser or self.role == Role.OWNER)


class AuditLogQuerySet(TenantQuerySet):
    pass


class AuditLog(models.Model):
    """Who did what to which object of which company, when, and from where. Append-only."""

    company = models.ForeignKey(
        Company,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("company"),
    )
    actor = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    # Kept as text too, so the log still names the actor after the user is deleted.
    actor_repr = models.CharField(_("actor name"), max_length=200, blank=True)
    action = models.CharField(_("action"), max_length=60)
    object_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("object type")
    )
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    # Set on an entry that is written at most once (the hourly record of who saw whose face,
    # `accounts.services.audit_biometric_view`): unique within the company, so two processes,
    # or one whose cache was flushed, insert it once and ignore the second (insert-ignore).
    once_key = models.CharField(_("once key"), max_length=128, null=True, blank=True, editable=False)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log entries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="audit_company_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "once_key"], condition=models.Q(once_key__isnull=False), name="audit_once_per_key"
            )
        ]

    def __str__(self) -> str:
        # In words (the entry's page title and breadcrumb), as the list shows the action.
        from accounts.audit_words import actor_label, audit_action_label

        return f"{actor_label(self.actor_repr)} · {audit_action_label(self.action)} · {self.object_repr}"


class JobState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    RETRYING = "retrying", _("Waiting to retry")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


ACTIVE_JOB_STATES = [JobState.QUEUED, JobState.RUNNING, JobState.RETRYING]


# What each kind of job is called where people see it (the jobs list, its filter). The app
# that starts a kind of job names it with `job_kind_register`, so this app, below them all,
# need not know them; an unnamed kind shows as it is stored.
_JOB_KIND_NAMES: dict[str, str] = {}


def job_kind_register(kind: str, name: str) -> str:
    """Name `kind` (a lazy translation) for people; returns `kind`, for a module constant."""
    _JOB_KIND_NAMES[kind] = name
    return kind


def job_kind_name(kind: str) -> str:
    return str(_JOB_KIND_NAMES.get(kind, kind))


def job_kind_choices() -> list[tuple[str, str]]:
    """(kind, name) of every named kind: the API's `JobKindEnum`."""
    return sorted(_JOB_KIND_NAMES.items())


class JobKindChoices(BaseChoiceIterator):
    """`job_kind_choices` as a field's or a filter's choices, read when they are used: the apps
    name their kinds after this one has loaded."""

    def __iter__(self):
        return iter(job_kind_choices())


class Job(TenantModel):
    """A background job of a company, as its admins see it: what, who started it, how far
    it got (done of total), and how it ended. Written only by `accounts.jobs`.

    `key` de-duplicates: while one job with a key is queued, running or waiting to retry,
    a unique index refuses a second one with the same key in the same company.
    """

    kind = models.CharField(_("kind"), max_length=100)
    key = models.CharField(_("key"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), null=True, blank=True)
    # Items of `done` the job could not process (it goes on with the others).
    failed = models.PositiveIntegerField(_("failed"), default=0)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    queue = models.CharField(_("queue"), max_length=50, default="default")
    timeout = models.PositiveIntegerField(_("timeout (seconds)"))
    error = models.TextField(_("error"), blank=True)
    started_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("started by")
    )
    created_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="job_company_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "key"],
                condition=models.Q(state__in=ACTIVE_JOB_STATES) & ~models.Q(key=""),
                name="job_one_active_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind_name} #{self.pk}"

    @property
    def kind_name(self) -> str:
        return job_kind_name(self.kind)

    @property
    def queue_id(self) -> str:
        """The job's id on the RQ queue. It carries the creation time as well, so the ids of
        a restored or recreated database never meet an old job still kept in Redis."""
        return f"kangaroo-job-{self.pk}-{int(self.created_at.timestamp() * 1_000_000)}"

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, self.done * 100 // self.total)
