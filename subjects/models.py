from django.conf import settings
from django.core.validators import validate_email
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kangaroo.errors import reason_message
from kangaroo.tenancy import TenantModel

MAX_PHOTOS_PER_SUBJECT = 5


class Department(TenantModel):
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "company",
                Lower("name"),
                name="department_name_unique_per_company",
                violation_error_code="department_name_taken",
                violation_error_message=_("A department with this name already exists."),
            )
        ]

    def __str__(self) -> str:
        return self.name


class SubjectType(models.TextChoices):
    EMPLOYEE = "employee", _("Employee")
    VISITOR = "visitor", _("Visitor")
    VIP = "vip", _("VIP")


class Subject(TenantModel):
    """A person the doors should know: an employee, a visitor or a VIP.

    Email and job number are unique within the company only. Emails are stored trimmed
    and compared case-insensitively; an empty email means "none" and may repeat.
    """

    subject_type = models.CharField(_("type"), max_length=10, choices=SubjectType.choices, default=SubjectType.EMPLOYEE)
    name = models.CharField(_("name"), max_length=100)
    english_name = models.CharField(
        _("English or romanised name"),
        max_length=100,
        blank=True,
        help_text=_("Optional: the name in Latin letters (e.g. Lin Chih-ming); the list's search finds it too."),
    )
    job_number = models.CharField(_("job number"), max_length=40)
    email = models.CharField(_("e-mail"), max_length=254, blank=True, validators=[validate_email])
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="subjects",
        verbose_name=_("department"),
    )
    title = models.CharField(_("title"), max_length=100, blank=True)
    remark = models.TextField(_("remark"), blank=True)
    start_date = models.DateField(_("start date"), null=True, blank=True)
    visit_start = models.DateTimeField(_("visit starts"), null=True, blank=True)
    visit_end = models.DateTimeField(_("visit ends"), null=True, blank=True)
    host = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="visitors",
        verbose_name=_("host"),
        limit_choices_to={"subject_type": SubjectType.EMPLOYEE},
    )
    purpose = models.CharField(_("purpose of visit"), max_length=200, blank=True)
    archived = models.BooleanField(_("archived"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subject")
        verbose_name_plural = _("subjects")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                "company",
                "job_number",
                name="subject_job_number_unique_per_company",
                violation_error_code="subject_job_number_taken",
                violation_error_message=_("Another subject of this company has this job number."),
            ),
            models.UniqueConstraint(
                "company",
                Lower("email"),
                name="subject_email_unique_per_company",
                condition=~models.Q(email=""),
                violation_error_code="subject_email_taken",
                violation_error_message=_("Another subject of this company has this e-mail address."),
            ),
            models.CheckConstraint(
                condition=models.Q(visit_end__isnull=True)
                | models.Q(visit_start__isnull=True)
                | models.Q(visit_end__gte=models.F("visit_start")),
                name="subject_visit_ends_after_it_starts",
                violation_error_code="subject_visit_window_invalid",
                violation_error_message=_("The visit must end after it starts."),
            ),
        ]
        indexes = [
            models.Index(fields=["company", "name"], name="subject_company_name"),
            models.Index(fields=["company", "subject_type", "archived"], name="subject_company_type"),
            models.Index(fields=["company", "department"], name="subject_company_department"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.job_number})"

    def visit_state(self, now=None) -> str | None:
        """`current`, `upcoming` or `expired` for a visitor with a window, else None."""
        if self.visit_start is None and self.visit_end is None:
            return None
        now = now or timezone.now()
        if self.visit_start and now < self.visit_start:
            return "upcoming"
        if self.visit_end and now > self.visit_end:
            return "expired"
        return "current"


class PhotoStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    OK = "ok", _("OK")
    REJECTED = "rejected", _("Rejected")


class Photo(TenantModel):
    """A face photo of a subject, stored normalised (JPEG, RGB, no metadata).

    The face engine fills the face fields and moves the status from `pending` to `ok` or
    `rejected` (with a reason code). Files are deleted with the row.
    """

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="photos", verbose_name=_("subject"))
    image = models.FileField(_("image"), max_length=200)
    thumbnail = models.FileField(_("thumbnail"), max_length=200)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    sha256 = models.CharField(_("SHA-256 of the normalised image"), max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=PhotoStatus.choices, default=PhotoStatus.PENDING)
    reason = models.CharField(_("reason"), max_length=40, blank=True)
    # Filled by the face engine: where the face is, how good it is, its embedding.
    face_box = models.JSONField(_("face box"), null=True, blank=True)
    quality = models.FloatField(_("quality"), null=True, blank=True)
    embedding = models.BinaryField(_("embedding"), null=True, blank=True, editable=False)
    # The face model that made `embedding` (faces.MODEL): another model's embeddings are
    # not comparable, so a model change re-enrols every photo.
    embedding_model = models.CharField(_("face model"), max_length=40, blank=True)
    enrolled_at = models.DateTimeField(_("enrolled at"), null=True, blank=True)
    # Set when the face matched another subject of the company at enrolment: one person
    # with two records breaks attendance, so the admin lists these to decide.
    duplicate_of = models.ForeignKey(
        Subject,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("possible duplicate of"),
    )
    duplicate_distance = models.FloatField(_("distance to the possible duplicate"), null=True, blank=True)
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["company", "subject"], name="photo_company_subject"),
            models.Index(fields=["company", "status"], name="photo_company_status"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id}/{self.pk}"

    @property
    def reason_text(self) -> str:
        """The reason code in words, in the active language ("" for none)."""
        return str(reason_message(self.reason, prefixes=("photo_", ""))) if self.reason else ""


# --- Consent ----------------------------------------------------------------------------------


class ConsentMethod(models.TextChoices):
    PAPER = "paper", _("On paper")
    PAD = "pad", _("On a check-in pad")
    WEB = "web", _("On the web")


# A consent neither withdrawn nor replaced: the one a subject's photos rest on.
IN_FORCE = models.Q(withdrawn_at__isnull=True, replaced_at__isnull=True)


class Consent(TenantModel):
    """A subject's consent to the collection of their biometric data, as recorded: when,
    how, to which version of the company's retention policy in which language, recorded by whom (a user, or
    the pad the person agreed on), with an optional evidence file (a signed form, stored
    and served through `kangaroo.media` like photos).

    The history is kept: a consent ends when it is withdrawn (which deletes the subject's
    biometric data, `subjects.services.consent_withdraw`) or replaced by a later consent
    (to a newer policy, say). A subject has at most one consent in force.
    """

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="consents", verbose_name=_("subject"))
    given_at = models.DateTimeField(_("given at"))
    method = models.CharField(_("how"), max_length=8, choices=ConsentMethod.choices)
    # RESTRICT: a policy version a consent names is never deleted, except with its company.
    policy = models.ForeignKey(
        "accounts.RetentionPolicy", on_delete=models.RESTRICT, related_name="+", verbose_name=_("policy version")
    )
    # The language of the policy's text the person was shown: with the version, the words
    # they agreed to (`policy.text_for(policy_language)`).
    policy_language = models.CharField(
        _("policy language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    recorded_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    # A pad that recorded it (no foreign key: devices sit above subjects), and who or which
    # device recorded it in words, kept after the user or the pad is gone.
    recorded_by_device = models.PositiveBigIntegerField(_("recorded by device"), null=True, blank=True)
    recorded_by_repr = models.CharField(_("recorded by (name)"), max_length=200, blank=True)
    evidence = models.FileField(_("evidence"), max_length=200, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("withdrawn by"),
    )
    withdrawn_by_repr = models.CharField(_("withdrawn by (name)"), max_length=200, blank=True)
    replaced_at = models.DateTimeField(_("replaced at"), null=True, blank=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-given_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "subject"],
                condition=IN_FORCE,
                name="consent_one_in_force_per_subject",
            ),
        ]
        indexes = [models.Index(fields=["company", "subject", "-given_at"], name="consent_company_subject")]

    def __str__(self) -> str:
        return f"{self.subject_id}/{self.pk}"

    @property
    def in_force(self) -> bool:
        return self.withdrawn_at is None and self.replaced_at is None


# --- The gallery change log -------------------------------------------------------------------
#
# What a recognition box must know of a company (who may be recognised, under which name,
# type, job number and visit window, with which faces) is mirrored on the box and kept in
# step by a change log the box pulls by cursor (`devices` serves it). Each change that
# alters that picture appends a row, in the transaction of the change, with the next
# number of the company's sequence. The sequence is taken from `GalleryCounter`, one row per
# company, locked by the appending transaction until it commits: a second writer of the
# same company waits, so numbers are handed out in commit order, without gaps, and a reader
# that has seen N can never later find a row below N it did not see.


class GalleryCounter(TenantModel):
    """The company's latest gallery sequence number, and how far compaction went."""

    sequence = models.PositiveBigIntegerField(_("latest change"), default=0)
    # Tombstones up to this number may be gone: a box whose cursor is below it resyncs.
    compacted_through = models.PositiveBigIntegerField(_("compacted through"), default=0)
    compacted_at = models.DateTimeField(_("compacted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("gallery counter")
        verbose_name_plural = _("gallery counters")
        constraints = [models.UniqueConstraint(fields=["company"], name="gallery_counter_one_per_company")]

    def __str__(self) -> str:
        return f"{self.company_id}: {self.sequence}"


class GalleryOp(models.TextChoices):
    UPSERT = "upsert", _("Changed")
    DELETE = "delete", _("Deleted")


class GalleryChange(TenantModel):
    """One change of one subject, as far as boxes are concerned.

    The row names the subject and why it changed, not the new values: the feed sends each
    subject's current state, so a row stays correct however many later changes follow, and
    compaction may drop every row of a subject but its latest. `subject_ref` is not a
    foreign key because a deletion's row (a tombstone) outlives its subject.
    """

    sequence = models.PositiveBigIntegerField(_("sequence"))
    subject_ref = models.PositiveBigIntegerField(_("subject id"))
    op = models.CharField(_("operation"), max_length=6, choices=GalleryOp.choices)
    reason = models.CharField(_("reason"), max_length=24)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("gallery change")
        verbose_name_plural = _("gallery changes")
        ordering = ["sequence"]
        constraints = [
            models.UniqueConstraint(fields=["company", "sequence"], name="gallery_change_sequence_unique"),
        ]
        indexes = [
            # "Is this the subject's latest row?" for the feed, and folding history.
            models.Index(fields=["company", "subject_ref", "sequence"], name="gallery_change_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.sequence}: {self.op} {self.subject_ref}"


class PhotoUploadState(models.TextChoices):
    PREVIEW = "preview", _("Waiting for confirmation")
    STORING = "storing", _("Storing the photos")
    STORED = "stored", _("Photos stored")
    FAILED = "failed", _("Failed")


# What became of one file of a bulk upload: matched to a subject in the preview, stored on
# confirmation, or a declared error code saying why it is left out (kangaroo/errors.py:
# job_number_unknown, photo_invalid, photo_duplicate, subject_archived, subject_photo_limit).
FILE_MATCHED = "matched"
FILE_STORED = "stored"


class PhotoUpload(TenantModel):
    """A bulk photo upload: a ZIP archive of photos named by job number (`E-0042.jpg`,
    `E-0042_2.png`), matched to the company's subjects.

    The preview (`entries`: one result per file) is made when the archive arrives, and
    nothing is stored then but the archive itself, through kangaroo.media. Confirming
    stores the matched photos in a job (`job`); the archive is deleted once they are
    stored, or when the upload expires unconfirmed (`expires_at`), or with the row.
    """

    created_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    file_name = models.CharField(_("file name"), max_length=255)
    archive = models.CharField(_("archive"), max_length=200, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    state = models.CharField(
        _("state"), max_length=10, choices=PhotoUploadState.choices, default=PhotoUploadState.PREVIEW
    )
    # [{"index", "name", "job_number", "subject", "subject_name", "status", "reason", "photo"}]
    entries = models.JSONField(_("files"), default=list)
    job = models.ForeignKey(
        "accounts.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("job")
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("bulk photo upload")
        verbose_name_plural = _("bulk photo uploads")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="photoupload_company_created"),
        ]

    def __str__(self) -> str:
        return self.file_name

    def count(self, status: str) -> int:
        return sum(1 for entry in self.entries if entry["status"] == status)
