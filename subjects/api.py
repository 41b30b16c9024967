"""Subjects, their photos, their consents, and departments over the API."""

import datetime

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import JobSerializer
from accounts.services import audit_biometric_view
from kangaroo import errors
from kangaroo.api.disclosure import ImageLinksMixin, image_links_shown
from kangaroo.api.errors import error_body
from kangaroo.api.fields import CompanyRelatedField, company_rows
from kangaroo.api.filters import IdFilter
from kangaroo.api.images import ImageBodyMixin, ImageUploadMixin, image_operation, image_request
from kangaroo.api.parsers import MultiPartParser
from kangaroo.api.permissions import face_view_check
from kangaroo.api.serializers import StrictFormSerializer, StrictSerializer
from kangaroo.api.viewsets import TenantViewSet, request_company
from kangaroo.errors import ERROR_CODE_CHOICES, KangarooError
from kangaroo.media import media_response
from subjects import face_lookup, photo_uploads, photo_zip, selectors, services
from subjects.models import (
    FILE_MATCHED,
    FILE_STORED,
    MAX_PHOTOS_PER_SUBJECT,
    Consent,
    ConsentMethod,
    Department,
    Photo,
    PhotoStatus,
    PhotoUpload,
    Subject,
    SubjectType,
)

# --- Departments ------------------------------------------------------------------------------


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name", "created_at"]
        read_only_fields = ["id", "created_at"]


@extend_schema(tags=["departments"])
class DepartmentViewSet(viewsets.ModelViewSet, TenantViewSet):
    model = Department
    serializer_class = DepartmentSerializer
    api_key_scopes = {"read": "subjects:read", "write": "subjects:write"}

    def scope(self, queryset):
        return queryset.order_by("name")

    def perform_create(self, serializer):
        serializer.instance = services.department_create(
            company=self.company, actor=self.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.department_update(
            company=self.company,
            actor=self.actor,
            department=serializer.instance,
            name=serializer.validated_data.get("name", serializer.instance.name),
        )

    def perform_destroy(self, instance):
        services.department_delete(company=self.company, actor=self.actor, department=instance)


# --- Photos -----------------------------------------------------------------------------------


class FaceBoxSerializer(serializers.Serializer):
    left = serializers.IntegerField()
    top = serializers.IntegerField()
    right = serializers.IntegerField()
    bottom = serializers.IntegerField()


class PhotoSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    reason = serializers.CharField(
        help_text="Why the photo was rejected: no_face, multiple_faces, face_too_small, face_not_frontal, "
        "too_blurry or photo_invalid; empty otherwise."
    )
    reason_message = serializers.CharField(source="reason_text", help_text="The reason in words.")
    face_box = FaceBoxSerializer(allow_null=True, help_text="Where the face is, in pixels of the stored image.")
    quality = serializers.FloatField(allow_null=True, help_text="0 to 1: confidence, size, sharpness, frontality.")
    possible_duplicate_of = serializers.IntegerField(
        source="duplicate_of_id",
        allow_null=True,
        help_text="Another subject of the company whose face this matched at enrolment: one person, two records?",
    )
    possible_duplicate_distance = serializers.FloatField(source="duplicate_distance", allow_null=True)

    class Meta:
        model = Photo
        fields = [
            "id", "subject", "status", "reason", "reason_message", "face_box", "quality", "embedding_model",
            "enrolled_at", "possible_duplicate_of", "possible_duplicate_distance", "width", "height",
            "image_url", "thumbnail_url", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_image_url(self, photo) -> str | None:
        """Null unless asked for with `?include=images` (owners and admins)."""
        return reverse("photo-image", args=[photo.pk]) if image_links_shown(self.context) else None

    def get_thumbnail_url(self, photo) -> str | None:
        """Null unless asked for with `?include=images` (owners and admins)."""
        return reverse("photo-thumbnail", args=[photo.pk]) if image_links_shown(self.context) else None


class PhotoUploadSerializer(StrictFormSerializer):
    """One photo, as the multipart part `image`."""

    image = serializers.FileField(
        help_text="JPEG, PNG, WebP, HEIC/HEIF, BMP or GIF; at most 10 MB. Stored normalised as JPEG."
    )


@extend_schema(tags=["photos"])
class PhotoViewSet(ImageLinksMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    """A face photo. Image and thumbnail are served only here, after the company check."""

    image_link_actions = frozenset({"retrieve"})

    model = Photo
    serializer_class = PhotoSerializer
    api_key_scopes = {"read": "subjects:read", "write": "subjects:write"}

    def perform_destroy(self, instance):
        services.photo_delete(company=self.company, actor=self.actor, photo=instance)

    @extend_schema(
        request=None,
        responses={202: JobSerializer},
        summary="Re-enrol every photo of the company",
        description="Runs the face engine on every photo again (after a threshold or model change), as a job: "
        "follow it at /api/v1/jobs/{id}. One at a time: while one is unfinished, another answers 409 "
        "`job_already_queued`.",
    )
    @action(detail=False, methods=["post"])
    def reenrol(self, request):
        job = services.photos_reenrol_start(company=self.company, actor=self.actor)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    def _file(self, field: str):
        photo = self.get_object()
        face_view_check(self.request)
        audit_biometric_view(
            request=self.request, company_id=photo.company_id, subject_ref=str(photo.subject_id), kind="photo"
        )
        return media_response(getattr(photo, field))

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="The normalised photo")
    @action(detail=True, methods=["get"])
    def image(self, request, pk=None):
        return self._file("image")

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="A 256-pixel thumbnail")
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        return self._file("thumbnail")


# --- Consent ----------------------------------------------------------------------------------


class ConsentSerializer(serializers.ModelSerializer):
    policy_version = serializers.IntegerField(
        source="policy.version", help_text="The version of the company's retention policy consented to."
    )
    policy_language = serializers.CharField(
        help_text="The language of the policy's text the person was shown: the words they agreed to are that "
        "version's `texts[policy_language]` (`/retention-policies`)."
    )
    recorded_by = serializers.CharField(
        source="recorded_by_repr", help_text="The user (login name) or the pad (`pad:<name>`) that recorded it."
    )
    withdrawn_by = serializers.CharField(source="withdrawn_by_repr")
    in_force = serializers.BooleanField(help_text="Neither withdrawn nor replaced by a later consent.")
    evidence_url = serializers.SerializerMethodField(
        help_text="The signed form (company-checked), if one was kept; null unless asked for with `?include=images`."
    )

    class Meta:
        model = Consent
        fields = [
            "id", "subject", "given_at", "method", "policy_version", "policy_language", "recorded_by", "evidence_url",
            "in_force", "withdrawn_at", "withdrawn_by", "replaced_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_evidence_url(self, consent) -> str | None:
        if not consent.evidence or not image_links_shown(self.context):
            return None
        return reverse("consent-evidence", args=[consent.pk])


# A user records consent given on paper or on the web; "pad" is for what a pad recorded.
USER_CONSENT_METHODS = [(ConsentMethod.PAPER.value, "paper"), (ConsentMethod.WEB.value, "web")]


class ConsentRecordSerializer(StrictSerializer):
    method = serializers.ChoiceField(choices=USER_CONSENT_METHODS, help_text="How the person gave it.")
    policy_version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text="The version of the retention policy the person was shown: it must be the current one "
        "(`GET /api/v1/company`), else 409 `consent_policy_outdated`.",
    )
    policy_language = serializers.CharField(
        required=False,
        max_length=20,
        help_text="The language of the policy's text the person was shown (`en`, `zh-hant`); the main language "
        "when left out. One the product does not have is 400 `retention_policy_language_unknown`.",
    )
    given_at = serializers.DateTimeField(required=False, help_text="When it was given; now when left out.")


class ConsentRecordUploadSerializer(StrictFormSerializer, ConsentRecordSerializer):
    """The same, as multipart, with the signed form as the part `evidence`."""

    evidence = serializers.FileField(
        required=False, help_text="The signed form, scanned or photographed: JPEG, PNG, WebP, HEIC/HEIF, BMP or GIF."
    )


CONSENT_RECORD_DESCRIPTION = (
    "The consent names the version of the retention policy the person was shown, which must be the current one "
    "(409 `consent_policy_outdated` with `current_version` otherwise). A consent in force is replaced and stays "
    "in the history. Audited."
)


@extend_schema(tags=["consents"])
class ConsentViewSet(ImageLinksMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """A consent record, and its evidence file, served only here after the company check."""

    image_link_actions = frozenset({"retrieve"})

    model = Consent
    serializer_class = ConsentSerializer

    def scope(self, queryset):
        return queryset.select_related("policy")

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="The signed form kept as evidence")
    @action(detail=True, methods=["get"])
    def evidence(self, request, pk=None):
        consent = self.get_object()
        if not consent.evidence:
            raise KangarooError(errors.NOT_FOUND)
        face_view_check(request)
        audit_biometric_view(
            request=request, company_id=consent.company_id, subject_ref=str(consent.subject_id), kind="consent_form"
        )
        return media_response(consent.evidence)


# --- Subjects ---------------------------------------------------------------------------------


class SubjectSerializer(serializers.ModelSerializer):
    department = CompanyRelatedField(model=Department, required=False, allow_null=True)
    host = CompanyRelatedField(model=Subject, required=False, allow_null=True)
    # A method, not `source="department.name"` with a default: DRF leaves a defaulted field out
    # of a partial update's answer, which the schema (and a generated client) requires.
    department_name = serializers.SerializerMethodField()
    job_number = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="Generated for visitors and VIPs when left empty."
    )
    photos = PhotoSerializer(many=True, read_only=True)
    usable_photos = serializers.SerializerMethodField(help_text="How many photos the doors can recognise (`ok`).")
    consent_given_at = serializers.SerializerMethodField(
        help_text="When the consent in force was given; null without one (then, if the company requires "
        "consent, adding a photo answers 409 `consent_required`). History: `/subjects/{id}/consents`."
    )

    def get_department_name(self, subject) -> str | None:
        return subject.department.name if subject.department_id else None

    class Meta:
        model = Subject
        fields = [
            "id", "subject_type", "name", "english_name", "job_number", "email", "phone", "department",
            "department_name", "title", "remark", "start_date", "visit_start", "visit_end", "host", "purpose",
            "archived", "photos", "usable_photos", "consent_given_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"email": {"validators": []}}

    def get_usable_photos(self, subject) -> int:
        return sum(photo.status == PhotoStatus.OK for photo in subject.photos.all())  # prefetched

    def get_consent_given_at(self, subject) -> datetime.datetime | None:
        if hasattr(subject, "consent_given_at"):  # annotated by the list's query
            given_at = subject.consent_given_at
        else:
            consent = selectors.consent_in_force(company=subject.company_id, subject=subject)
            given_at = consent.given_at if consent is not None else None
        return serializers.DateTimeField().to_representation(given_at) if given_at is not None else None


class SubjectUploadSerializer(StrictFormSerializer, SubjectSerializer):
    """A subject created with its photos in one multipart request, with the consent that
    lets the photos be stored when the company requires it."""

    upload = serializers.ListField(
        child=serializers.FileField(),
        write_only=True,
        required=False,
        max_length=MAX_PHOTOS_PER_SUBJECT,
        help_text="Up to 5 photos, as parts named `upload`.",
    )
    consent_method = serializers.ChoiceField(
        choices=USER_CONSENT_METHODS,
        write_only=True,
        required=False,
        help_text="The person's consent, recorded with the subject: how it was given. Without it, photos "
        "answer 409 `consent_required` when the company requires consent.",
    )
    consent_policy_version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        write_only=True,
        required=False,
        help_text="With `consent_method`: the version of the retention policy the person was shown (the current one).",
    )
    consent_policy_language = serializers.CharField(
        write_only=True,
        required=False,
        max_length=20,
        help_text="With `consent_method`: the language of the policy's text the person was shown (`en`, `zh-hant`); "
        "the main language when left out.",
    )
    consent_given_at = serializers.DateTimeField(
        write_only=True, required=False, help_text="With `consent_method`: when it was given; now when left out."
    )
    consent_evidence = serializers.FileField(
        write_only=True, required=False, help_text="With `consent_method`: the signed form, as an image."
    )

    class Meta(SubjectSerializer.Meta):
        fields = [
            *SubjectSerializer.Meta.fields, "upload", "consent_method", "consent_policy_version",
            "consent_policy_language", "consent_given_at", "consent_evidence",
        ]  # fmt: skip

    def validate(self, attrs):
        attrs = super().validate(attrs)
        consent = {key: attrs.pop(key) for key in CONSENT_PARTS if key in attrs}
        if consent and ("consent_method" not in consent or "consent_policy_version" not in consent):
            missing = "consent_policy_version" if "consent_method" in consent else "consent_method"
            raise serializers.ValidationError({missing: [_required_with_consent()]})
        if consent:
            attrs["consent"] = services.ConsentGiven(
                method=consent["consent_method"],
                policy_version=consent["consent_policy_version"],
                policy_language=consent.get("consent_policy_language"),
                given_at=consent.get("consent_given_at"),
                evidence=consent.get("consent_evidence"),
            )
        return attrs


CONSENT_PARTS = (
    "consent_method", "consent_policy_version", "consent_policy_language", "consent_given_at", "consent_evidence",
)  # fmt: skip


def _required_with_consent() -> str:
    return str(serializers.Field.default_error_messages["required"])


class SubjectFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", help_text="Name, job number, e-mail or phone contains.")
    department = IdFilter(field_name="department_id")
    subject_type = filters.ChoiceFilter(choices=Subject._meta.get_field("subject_type").choices)
    job_number = filters.CharFilter(lookup_expr="exact")
    email = filters.CharFilter(lookup_expr="iexact")
    visit = filters.ChoiceFilter(choices=[(s, s) for s in selectors.VISIT_STATES], method="by_visit")
    photo_status = filters.ChoiceFilter(choices=[(s, s) for s in selectors.PHOTO_STATES], method="by_photo")

    class Meta:
        model = Subject
        fields = ["subject_type", "department", "archived", "job_number", "email"]

    def search(self, queryset, name, value):
        return selectors.subject_search(queryset, value)

    def by_visit(self, queryset, name, value):
        return selectors.filter_visit_state(queryset, value)

    def by_photo(self, queryset, name, value):
        return selectors.filter_photo_state(queryset, value)


SUBJECT_EXAMPLE = {
    "subject_type": "employee",
    "name": "陳美玲",
    "job_number": "E1024",
    "email": "meiling.chen@example.com",
    "department": 3,
    "title": "Engineer",
}


# --- Sync from an HR system -------------------------------------------------------------------

UPSERT_MAX = 500


class SubjectUpsertItemSerializer(SubjectSerializer):
    """One subject of an upsert, found by its job number; fields left out keep their value
    (or their default, for a new subject)."""

    job_number = serializers.CharField(max_length=40, help_text="Finds the subject: created if the company has none.")

    class Meta(SubjectSerializer.Meta):
        fields = [name for name in SubjectSerializer.Meta.fields if name not in ("photos", "usable_photos")]


class SubjectUpsertSerializer(StrictSerializer):
    subjects = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=UPSERT_MAX, help_text="Up to 500 subjects."
    )


class UpsertErrorSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODE_CHOICES)
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class UpsertResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's place in `subjects`, from 0.")
    job_number = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "error"])
    id = serializers.IntegerField(required=False, help_text="The subject's id, unless the item failed.")
    error = UpsertErrorSerializer(required=False, help_text="Why the item failed; the other items are unaffected.")


class SubjectUpsertAnswerSerializer(serializers.Serializer):
    results = UpsertResultSerializer(many=True)


class ArchiveMissingSerializer(StrictSerializer):
    job_numbers = serializers.ListField(
        child=serializers.CharField(max_length=40, allow_blank=True),
        max_length=200_000,
        help_text="Every job number the HR system lists now; the others are archived.",
    )
    subject_type = serializers.ChoiceField(
        choices=SubjectType.choices, default=SubjectType.EMPLOYEE, help_text="Only subjects of this type are archived."
    )


class ArchiveMissingAnswerSerializer(serializers.Serializer):
    archived = serializers.ListField(child=serializers.IntegerField(), help_text="The ids of the subjects archived.")


@extend_schema(tags=["subjects"])
class SubjectViewSet(ImageLinksMixin, viewsets.ModelViewSet, TenantViewSet):
    """Employees, visitors and VIPs. Writes go through the subject services."""

    # The answers with photos (their links) or consents (their signed forms' links).
    image_link_actions = frozenset({
        "list", "retrieve", "create", "update", "partial_update", "with_photos", "photos", "consents",
        "consents_upload", "consent_withdraw",
    })  # fmt: skip

    model = Subject
    serializer_class = SubjectSerializer
    filterset_class = SubjectFilter
    api_key_scopes = {"read": "subjects:read", "write": "subjects:write"}

    def scope(self, queryset):
        queryset = queryset.select_related("department").prefetch_related("photos").order_by("name", "id")
        return selectors.with_consent_given_at(queryset)

    @extend_schema(examples=[OpenApiExample("An employee", value=SUBJECT_EXAMPLE, request_only=True)])
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": SubjectUploadSerializer},
        responses={201: SubjectSerializer},
        summary="Create a subject with photos (at most 5), in one multipart request: all or nothing",
    )
    @action(detail=False, methods=["post"], url_path="with-photos", parser_classes=[MultiPartParser])
    def with_photos(self, request):
        serializer = SubjectUploadSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        answer = SubjectSerializer(serializer.instance, context=self.get_serializer_context())
        return Response(answer.data, status=status.HTTP_201_CREATED)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        uploads = data.pop("upload", [])
        consent = data.pop("consent", None)
        subject = services.subject_create(
            company=self.company, actor=self.actor, photos=uploads, consent=consent, **data
        )
        serializer.instance = self.get_queryset().get(pk=subject.pk)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("upload", None)
        data.pop("consent", None)
        services.subject_update(company=self.company, actor=self.actor, subject=serializer.instance, **data)
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_destroy(self, instance):
        services.subject_delete(company=self.company, actor=self.actor, subject=instance)

    @extend_schema(methods=["get"], responses=PhotoSerializer(many=True), summary="The subject's photos", request=None)
    @extend_schema(
        methods=["post"],
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoSerializer},
        summary="Upload a photo (at most 5 per subject)",
    )
    @action(
        detail=True,
        methods=["get", "post"],
        parser_classes=[MultiPartParser],
        pagination_class=None,
        filter_backends=[],
    )
    def photos(self, request, pk=None):
        subject = self.get_object()
        if request.method == "GET":
            photos = selectors.photo_list(company=self.company, subject=subject)
            return Response(PhotoSerializer(photos, many=True, context=self.get_serializer_context()).data)
        form = PhotoUploadSerializer(data=request.data)
        if not form.is_valid() and set(form.errors) != {"image"}:  # an unknown part
            raise serializers.ValidationError(form.errors)
        # The image itself is the service's to judge: a missing or unreadable one answers
        # `photo_invalid` with its reason.
        photo = services.photo_add(
            company=self.company, actor=self.actor, subject=subject, upload=request.FILES.get("image")
        )
        return Response(
            PhotoSerializer(photo, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=SubjectUpsertSerializer,
        responses=SubjectUpsertAnswerSerializer,
        summary="Create or change up to 500 subjects by job number, each answered on its own",
    )
    @action(detail=False, methods=["post"])
    def upsert(self, request):
        batch = SubjectUpsertSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        # The items as parsed from JSON (their types checked strictly), not as the list field copied them.
        items = request.data["subjects"]
        # The departments and hosts the items name, read once for the whole batch.
        named = {
            model: company_rows(model=model, company=self.company, ids=[item.get(field) for item in items])
            for field, model in (("department", Department), ("host", Subject))
        }
        # One form checks every item, as a list serializer's child does: a model serializer
        # builds its fields anew for every instance, a few milliseconds per item.
        form = SubjectUpsertItemSerializer(
            partial=True, context=self.get_serializer_context() | {"company_rows": named}
        )
        results = [self._upsert_form(form, index, item) for index, item in enumerate(items)]
        valid = [result for result in results if "data" in result]
        outcomes = services.subjects_upsert(
            company=self.company, actor=self.actor, items=[result.pop("data") for result in valid]
        )
        for result, outcome in zip(valid, outcomes, strict=True):
            if outcome.error is not None:
                error = outcome.error
                result |= {"status": "error", "error": error_body(error.code, error.message, error.fields)}
            else:
                result |= {"status": outcome.status, "id": outcome.subject.pk}
        return Response({"results": results})

    def _upsert_form(self, form: SubjectUpsertItemSerializer, index: int, item: dict) -> dict:
        """The item's answer if its form is wrong, else its checked fields under `data`."""
        number = item.get("job_number") if isinstance(item.get("job_number"), str) else None
        result = {"index": index, "job_number": number}
        form.initial_data = item  # what the JSON type checks look at (`reads_json`)
        try:
            data, problems = form.run_validation(item), {}
        except serializers.ValidationError as exc:
            data, problems = None, exc.detail
        if problems or not number or not number.strip():
            fields = {key: [str(message) for message in messages] for key, messages in problems.items()}
            if not number or not number.strip():
                fields.setdefault("job_number", [str(_("A job number is required."))])
            return result | {
                "status": "error",
                "error": error_body("validation_error", errors.VALIDATION_ERROR.message, fields),
            }
        return result | {"data": dict(data)}

    @extend_schema(
        request=ArchiveMissingSerializer,
        responses=ArchiveMissingAnswerSerializer,
        summary="Archive the subjects of a type whose job number the HR system no longer lists",
    )
    @action(detail=False, methods=["post"], url_path="archive-missing")
    def archive_missing(self, request):
        form = ArchiveMissingSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        archived = services.subjects_archive_missing(company=self.company, actor=self.actor, **form.validated_data)
        return Response({"archived": archived})

    @extend_schema(
        methods=["get"], responses=ConsentSerializer(many=True), summary="The subject's consents, latest first"
    )
    @extend_schema(
        methods=["post"],
        request=ConsentRecordSerializer,
        responses={201: ConsentSerializer},
        summary="Record the subject's consent (on paper or on the web)",
        description=CONSENT_RECORD_DESCRIPTION + " With the signed form: `/subjects/{id}/consents/upload`.",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def consents(self, request, pk=None):
        subject = self.get_object()
        if request.method == "GET":
            history = selectors.consent_history(company=self.company, subject=subject)
            return Response(ConsentSerializer(history, many=True, context=self.get_serializer_context()).data)
        return self._record_consent(subject, ConsentRecordSerializer(data=request.data))

    @extend_schema(
        request={"multipart/form-data": ConsentRecordUploadSerializer},
        responses={201: ConsentSerializer},
        summary="Record the subject's consent with the signed form (a multipart file)",
        description=CONSENT_RECORD_DESCRIPTION + " The same without a file, in JSON: `/subjects/{id}/consents`.",
    )
    @action(detail=True, methods=["post"], url_path="consents/upload", parser_classes=[MultiPartParser])
    def consents_upload(self, request, pk=None):
        return self._record_consent(self.get_object(), ConsentRecordUploadSerializer(data=request.data))

    def _record_consent(self, subject, form):
        form.is_valid(raise_exception=True)
        consent = services.consent_record(
            company=self.company, actor=self.actor, subject=subject, **form.validated_data
        )
        return Response(
            ConsentSerializer(consent, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=None,
        responses={200: ConsentSerializer},
        summary="Withdraw the subject's consent: their photos, faces and snapshots are deleted at once",
        description="Deletes the subject's photos with their faces, their events' snapshots and any link to an "
        "unknown person, and tells the recognition boxes to forget their faces; the events stay, without a "
        "snapshot. Without a consent in force answers 409 `consent_not_in_force`. Audited.",
    )
    @action(detail=True, methods=["post"], url_path="consents/withdraw")
    def consent_withdraw(self, request, pk=None):
        subject = self.get_object()
        consent = services.consent_withdraw(company=self.company, actor=self.actor, subject=subject)
        return Response(ConsentSerializer(consent, context=self.get_serializer_context()).data)


# --- Search by face ---------------------------------------------------------------------------


class FaceSearchFields(StrictSerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=face_lookup.SEARCH_MAX, required=False, help_text="How many subjects, 10 at most."
    )


class FaceHitSubjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=SubjectType.choices)
    job_number = serializers.CharField()
    department_name = serializers.CharField(allow_null=True)


class FaceHitSerializer(serializers.Serializer):
    subject = FaceHitSubjectSerializer()
    distance = serializers.FloatField(help_text="To the subject's closest photo: the smaller, the more alike.")
    match = serializers.BooleanField(
        help_text="Closer than the company's threshold: recognition would take the face for this subject."
    )
    photo_id = serializers.IntegerField(help_text="The subject's photo closest to the face.")
    thumbnail_url = serializers.CharField(
        allow_null=True,
        help_text="That photo's thumbnail (company-checked); null unless asked for with `?include=images`.",
    )


class FaceSearchAnswerSerializer(serializers.Serializer):
    results = FaceHitSerializer(many=True)


def face_hit_data(hit: face_lookup.FaceHit, *, images: bool) -> dict:
    subject = hit.subject
    return {
        "subject": {
            "id": subject.pk,
            "name": subject.name,
            "type": subject.subject_type,
            "job_number": subject.job_number,
            "department_name": subject.department.name if subject.department_id else None,
        },
        "distance": hit.distance,
        "match": hit.match,
        "photo_id": hit.photo_id,
        "thumbnail_url": reverse("photo-thumbnail", args=[hit.photo_id]) if images else None,
    }


FACE_SEARCH_DESCRIPTION = (
    "Up to `limit` (10) of your company's subjects, closest first, each with the distance to their "
    "closest photo and that photo's id (its thumbnail's link with `?include=images`); `match` marks those "
    "recognition would take the face "
    "for. Only your company's faces are searched. For admins and owners; every search is in the "
    "audit log."
)


FACE_SEARCH = image_operation(
    "FaceSearch",
    FaceSearchFields,
    what="A photo of the face to search for",
    path="/faces/search",
    summary="Search by face ({body}): your subjects who look most like the face",
    description=FACE_SEARCH_DESCRIPTION,
    responses={200: FaceSearchAnswerSerializer},
    tags=["subjects"],
)


class FaceSearchView(ImageLinksMixin, ImageBodyMixin, APIView):
    """Admins and owners (a search by face is a biometric search; every one is audited)."""

    @FACE_SEARCH.json_schema
    def post(self, request):
        fields, image = image_request(request, FACE_SEARCH.fields)
        search = face_lookup.subjects_by_face(
            company=request_company(request),
            actor=request.user,
            image=image,
            k=fields.get("limit") or face_lookup.SEARCH_MAX,
        )
        images = image_links_shown({"request": request})
        hits = [face_hit_data(hit, images=images) for hit in search.hits]
        return Response(FaceSearchAnswerSerializer({"results": hits}).data)


class FaceSearchUploadView(ImageUploadMixin, FaceSearchView):
    @FACE_SEARCH.upload_schema
    def post(self, request):
        return super().post(request)


# --- Bulk photo upload ------------------------------------------------------------------------

FILE_STATUSES = [
    (FILE_MATCHED, "`matched`: to be stored as a photo of `subject` when confirmed"),
    (FILE_STORED, "`stored`: stored as the photo `photo`"),
    *[(error.code, f"`{error.code}`: {str(error.message).rstrip('.')}") for error in photo_uploads.FILE_ERRORS],
]


class BulkUploadFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The file's path in the archive; only its name counts.")
    job_number = serializers.CharField(help_text="The job number the name was read as.")
    subject = serializers.IntegerField(allow_null=True, help_text="The matched subject, if any.")
    subject_name = serializers.CharField()
    status = serializers.ChoiceField(
        choices=[code for code, _ in FILE_STATUSES],
        help_text="; ".join(description for _, description in FILE_STATUSES),
    )
    reason = serializers.CharField(help_text="For `photo_invalid`: why (`unsupported_format`, `too_large`, ...).")
    message = serializers.SerializerMethodField(help_text="The status in words, in the caller's language.")
    photo = serializers.IntegerField(allow_null=True, help_text="The stored photo, once stored.")
    photo_status = serializers.SerializerMethodField(
        help_text="The stored photo's enrolment: `pending`, then `ok` or `rejected` (with `photo_reason`)."
    )
    photo_reason = serializers.SerializerMethodField()

    def get_message(self, entry) -> str:
        return photo_uploads.file_status_message(entry)

    def _photo(self, entry) -> tuple[str, str] | None:
        return self.context.get("photo_statuses", {}).get(entry.get("photo"))

    def get_photo_status(self, entry) -> str | None:
        found = self._photo(entry)
        return found[0] if found else None

    def get_photo_reason(self, entry) -> str:
        found = self._photo(entry)
        return found[1] if found else ""


class BulkUploadProgressSerializer(serializers.Serializer):
    files = serializers.IntegerField(help_text="Files in the archive (junk such as __MACOSX left out).")
    matched = serializers.IntegerField(help_text="Files matched to a subject (stored or to be stored).")
    refused = serializers.IntegerField(help_text="Files left out, each with its status code.")
    stored = serializers.IntegerField(help_text="Photos stored.")
    pending = serializers.IntegerField(help_text="Stored photos the face engine has not seen yet.")
    ok = serializers.IntegerField(help_text="Stored photos enrolled.")
    rejected = serializers.IntegerField(help_text="Stored photos the face engine rejected (see each file).")
    done = serializers.IntegerField(help_text="ok + rejected: enrolment is over when it equals `stored`.")


class BulkUploadJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField(help_text="queued, running, retrying, done or failed (see /jobs).")
    done = serializers.IntegerField(help_text="Files read and checked so far.")
    total = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class BulkUploadSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    job = BulkUploadJobSerializer(allow_null=True, help_text="The store job, once confirmed.")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = PhotoUpload
        fields = ["id", "file_name", "size", "state", "created_by", "created_at", "expires_at", "job", "progress"]
        read_only_fields = fields

    @extend_schema_field(BulkUploadProgressSerializer)
    def get_progress(self, upload) -> dict:
        return selectors.photo_upload_progress(upload, self.context.get("photo_statuses"))


class BulkUploadDetailSerializer(BulkUploadSerializer):
    files = serializers.SerializerMethodField()

    class Meta(BulkUploadSerializer.Meta):
        fields = [*BulkUploadSerializer.Meta.fields, "files"]
        read_only_fields = fields

    @extend_schema_field(BulkUploadFileSerializer(many=True))
    def get_files(self, upload) -> list:
        context = {"photo_statuses": selectors.photo_statuses(upload)}
        return BulkUploadFileSerializer(upload.entries, many=True, context=context).data


class BulkUploadCreateSerializer(StrictFormSerializer):
    """The archive, as the multipart part `archive`."""

    archive = serializers.FileField(
        help_text=(
            "A ZIP of photos named by job number: `E-0042.jpg`, a second one `E-0042_2.png`; folders "
            "are allowed. At most PHOTO_ZIP_MAX_MB (500 MB), PHOTO_ZIP_MAX_FILES files (1,000), each a "
            "photo of at most PHOTO_MAX_MB."
        )
    )


class ArchiveParser(MultiPartParser):
    """Multipart, refused with 413 `zip_too_large` before a byte is read when the body
    announces more than an archive may be (the photo endpoints' parts are small; an archive
    is streamed to a temporary file, so its limit is its own)."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        limit = settings.PHOTO_ZIP_MAX_BYTES
        if length > limit + 2**20:  # room for the multipart envelope around the file
            raise photo_zip.zip_too_large(limit)
        return super().parse(stream, media_type, parser_context)


@extend_schema(tags=["photo uploads"])
class BulkUploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    """Bulk photo upload: a ZIP of photos named by job number enrols a team at once.

    Upload the archive (`POST`, multipart): the answer is the preview, one result per file,
    and nothing is stored yet. `POST .../confirm` stores the matched photos in a job; read
    the upload again to follow it (`job`, then `progress` as the face engine enrols each
    photo). An unconfirmed upload expires with its archive after PHOTO_ZIP_EXPIRES_MINUTES.
    """

    model = PhotoUpload
    selector = staticmethod(selectors.photo_upload_list)
    serializer_class = BulkUploadSerializer

    def get_serializer_class(self):
        return BulkUploadSerializer if self.action == "list" else BulkUploadDetailSerializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        # The enrolment of every photo the page's uploads stored, in one query for the page.
        statuses = selectors.photo_upload_photo_statuses(company=self.company, uploads=page)
        context = {**self.get_serializer_context(), "photo_statuses": statuses}
        return self.get_paginated_response(BulkUploadSerializer(page, many=True, context=context).data)

    @extend_schema(
        request={"multipart/form-data": BulkUploadCreateSerializer},
        responses={201: BulkUploadDetailSerializer},
        summary="Upload a ZIP of photos: the preview",
    )
    def create(self, request, *args, **kwargs):
        form = BulkUploadCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = photo_uploads.photo_upload_preview(
            company=self.company, actor=self.actor, upload=form.validated_data["archive"]
        )
        upload = self.get_queryset().get(pk=upload.pk)
        return Response(BulkUploadDetailSerializer(upload).data, status=status.HTTP_201_CREATED)

    def get_parsers(self):
        if (getattr(self, "action", None) or self.action_map.get(self.request.method.lower())) == "create":
            return [ArchiveParser()]
        return super().get_parsers()

    @extend_schema(request=None, responses={202: BulkUploadDetailSerializer}, summary="Store the matched photos")
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        upload = self.get_object()
        photo_uploads.photo_upload_confirm(company=self.company, actor=self.actor, upload=upload)
        upload = self.get_queryset().get(pk=upload.pk)
        return Response(BulkUploadDetailSerializer(upload).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Drop an upload that is not being stored, with its archive")
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        photo_uploads.photo_upload_delete(company=self.company, actor=self.actor, upload=instance)
