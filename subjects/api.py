"""Subjects, their photos, and departments over the API."""

from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import JobSerializer
from kangaroo.api.fields import CompanyRelatedField
from kangaroo.api.filters import IdFilter
from kangaroo.api.images import IMAGE_HELP, Base64ImageField, ImageBodyMixin, ImageUploadMixin, image_request
from kangaroo.api.parsers import MultiPartParser
from kangaroo.api.serializers import StrictFormSerializer, StrictSerializer
from kangaroo.api.viewsets import TenantViewSet, request_company
from kangaroo.media import media_response
from subjects import face_lookup, selectors, services
from subjects.models import MAX_PHOTOS_PER_SUBJECT, Department, Photo, PhotoStatus, Subject, SubjectType

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

    def get_image_url(self, photo) -> str:
        return reverse("photo-image", args=[photo.pk])

    def get_thumbnail_url(self, photo) -> str:
        return reverse("photo-thumbnail", args=[photo.pk])


class PhotoUploadSerializer(StrictFormSerializer):
    """One photo, as the multipart part `image`."""

    image = serializers.FileField(
        help_text="JPEG, PNG, WebP, HEIC/HEIF, BMP or GIF; at most 10 MB. Stored normalised as JPEG."
    )


@extend_schema(tags=["photos"])
class PhotoViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    """A face photo. Image and thumbnail are served only here, after the company check."""

    model = Photo
    serializer_class = PhotoSerializer

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
        return media_response(getattr(self.get_object(), field))

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="The normalised photo")
    @action(detail=True, methods=["get"])
    def image(self, request, pk=None):
        return self._file("image")

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="A 256-pixel thumbnail")
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        return self._file("thumbnail")


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

    def get_department_name(self, subject) -> str | None:
        return subject.department.name if subject.department_id else None

    class Meta:
        model = Subject
        fields = [
            "id", "subject_type", "name", "english_name", "job_number", "email", "phone", "department",
            "department_name", "title", "remark", "start_date", "visit_start", "visit_end", "host", "purpose",
            "archived", "photos", "usable_photos", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"email": {"validators": []}}

    def get_usable_photos(self, subject) -> int:
        return sum(photo.status == PhotoStatus.OK for photo in subject.photos.all())  # prefetched


class SubjectUploadSerializer(StrictFormSerializer, SubjectSerializer):
    """A subject created with its photos in one multipart request."""

    upload = serializers.ListField(
        child=serializers.FileField(),
        write_only=True,
        required=False,
        max_length=MAX_PHOTOS_PER_SUBJECT,
        help_text="Up to 5 photos, as parts named `upload`.",
    )

    class Meta(SubjectSerializer.Meta):
        fields = [*SubjectSerializer.Meta.fields, "upload"]


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


@extend_schema(tags=["subjects"])
class SubjectViewSet(viewsets.ModelViewSet, TenantViewSet):
    """Employees, visitors and VIPs. Writes go through the subject services."""

    model = Subject
    serializer_class = SubjectSerializer
    filterset_class = SubjectFilter

    def scope(self, queryset):
        return queryset.select_related("department").prefetch_related("photos").order_by("name", "id")

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
        return Response(SubjectSerializer(serializer.instance).data, status=status.HTTP_201_CREATED)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        uploads = data.pop("upload", [])
        subject = services.subject_create(company=self.company, actor=self.actor, photos=uploads, **data)
        serializer.instance = self.get_queryset().get(pk=subject.pk)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("upload", None)
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
            return Response(PhotoSerializer(photos, many=True).data)
        form = PhotoUploadSerializer(data=request.data)
        if not form.is_valid() and set(form.errors) != {"image"}:  # an unknown part
            raise serializers.ValidationError(form.errors)
        # The image itself is the service's to judge: a missing or unreadable one answers
        # `photo_invalid` with its reason.
        photo = services.photo_add(
            company=self.company, actor=self.actor, subject=subject, upload=request.FILES.get("image")
        )
        return Response(PhotoSerializer(photo).data, status=status.HTTP_201_CREATED)


# --- Search by face ---------------------------------------------------------------------------


class FaceSearchFields(StrictSerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=face_lookup.SEARCH_MAX, required=False, help_text="How many subjects, 10 at most."
    )


class FaceSearchSerializer(FaceSearchFields):
    """A photo of the face to search for, base64-encoded in JSON."""

    image = Base64ImageField(help_text=IMAGE_HELP + " Base64-encoded.")


class FaceSearchUploadSerializer(StrictFormSerializer, FaceSearchFields):
    """A photo of the face to search for, as the multipart part `image`."""

    image = serializers.FileField(help_text=IMAGE_HELP)


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
    thumbnail_url = serializers.CharField(help_text="That photo's thumbnail (company-checked).")


class FaceSearchAnswerSerializer(serializers.Serializer):
    results = FaceHitSerializer(many=True)


def face_hit_data(hit: face_lookup.FaceHit) -> dict:
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
        "thumbnail_url": reverse("photo-thumbnail", args=[hit.photo_id]),
    }


FACE_SEARCH_DESCRIPTION = (
    "Up to `limit` (10) of your company's subjects, closest first, each with the distance to their "
    "closest photo and that photo's thumbnail; `match` marks those recognition would take the face "
    "for. Only your company's faces are searched. For admins and owners; every search is in the "
    "audit log."
)


class FaceSearchView(ImageBodyMixin, APIView):
    """Admins and owners (a search by face is a biometric search; every one is audited)."""

    @extend_schema(
        tags=["subjects"],
        request=FaceSearchSerializer,
        responses={200: FaceSearchAnswerSerializer},
        summary="Search by face (base64 in JSON): your subjects who look most like the face",
        description=FACE_SEARCH_DESCRIPTION + " The same as multipart: `/faces/search/upload`.",
    )
    def post(self, request):
        fields, image = image_request(request, FaceSearchFields)
        search = face_lookup.subjects_by_face(
            company=request_company(request),
            actor=request.user,
            image=image,
            k=fields.get("limit") or face_lookup.SEARCH_MAX,
        )
        return Response(FaceSearchAnswerSerializer({"results": [face_hit_data(hit) for hit in search.hits]}).data)


class FaceSearchUploadView(ImageUploadMixin, FaceSearchView):
    @extend_schema(
        tags=["subjects"],
        request={"multipart/form-data": FaceSearchUploadSerializer},
        responses={200: FaceSearchAnswerSerializer},
        summary="Search by face (a multipart file): your subjects who look most like the face",
        description=FACE_SEARCH_DESCRIPTION + " The same with the image base64-encoded in JSON: `/faces/search`.",
    )
    def post(self, request):
        return super().post(request)
