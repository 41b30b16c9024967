"""Events over the API: devices post them; people list and read them."""

from datetime import timedelta

from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import generics, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.services import audit_biometric_view
from devices.device_api import DeviceView
from devices.models import DeviceKind
from devices.validators import DEFAULT_GREETINGS
from events import services, unknown_api
from events.attendance import attendance_days, attendance_range, purged_day_summary
from events.models import Event, EventKind, snapshot_subject_ref
from events.payload import EventSerializer
from events.selectors import with_first_photo_id
from kangaroo import errors
from kangaroo.api.disclosure import ImageLinksMixin
from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.api.filters import BLANK_IS_ABSENT, MAX_ID, IdFilter, IsoDateTimeFilter
from kangaroo.api.images import ImageBodyMixin, ImageUploadMixin, image_operation, image_request
from kangaroo.api.pagination import CursorPagination, PageNumberPagination
from kangaroo.api.parsers import ItemsJSONParser
from kangaroo.api.permissions import face_view_check
from kangaroo.api.schema import AutoSchema
from kangaroo.api.serializers import StrictSerializer
from kangaroo.api.viewsets import TenantViewSet, request_company
from kangaroo.errors import KangarooError
from kangaroo.media import media_response
from subjects.face_lookup import subject_verify
from subjects.models import SubjectType

# --- Device-facing: ingest ---------------------------------------------------------------------

ITEM_EXAMPLE = {
    "uid": "box7-000184233",
    "happened_at": "2026-03-02T08:58:12.345+08:00",  # replaced by a recent time in the schema
    "subject_id": 1024,
    "screen_id": 7,
    "confidence": 0.93,
}
BASE64 = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class EventItemSerializer(StrictSerializer):
    """One posted event (documentation: `events.parsing.parse_item` reads it)."""

    uid = serializers.CharField(min_length=1, max_length=64, help_text="Unique for this device; a retry repeats it.")
    happened_at = serializers.DateTimeField(
        help_text="With a time zone; at most 5 minutes ahead and EVENT_MAX_AGE_DAYS (30) days back."
    )
    subject_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, allow_null=True, required=False, help_text="Null or unknown: a stranger."
    )
    screen_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, allow_null=True, required=False, help_text="A box's own screen."
    )
    confidence = serializers.FloatField(min_value=0, max_value=1, allow_null=True, required=False)
    snapshot = serializers.RegexField(
        BASE64,
        allow_null=True,
        required=False,
        help_text="A JPEG, PNG or WebP image, base64-encoded, at most EVENT_SNAPSHOT_MAX_KB (64) KiB before encoding "
        "(`event_snapshot_too_large`).",
    )


class EventBatchSerializer(StrictSerializer):
    events = EventItemSerializer(many=True, max_length=services.MAX_BATCH, help_text="At most 500.")


class ItemResultSerializer(serializers.Serializer):
    uid = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "duplicate", "error"])
    id = serializers.IntegerField(required=False, help_text="The event's id (created or duplicate).")
    error = serializers.DictField(required=False, help_text="The error envelope's body, for this item.")


class BatchAnswerSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = serializers.IntegerField()
    results = ItemResultSerializer(many=True)


class EventIngestSchema(AutoSchema):
    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True  # one event or a batch: never nothing
        return body

    def get_examples(self):
        # Dated a minute ago whenever the schema is read, so that trying it is not `event_too_old`.
        recent = (timezone.now() - timedelta(minutes=1)).isoformat(timespec="milliseconds")
        item = {**ITEM_EXAMPLE, "happened_at": recent}
        return [
            OpenApiExample("One event", value=item, request_only=True),
            OpenApiExample("A batch", value={"events": [item]}, request_only=True),
        ]


class EventIngestView(DeviceView):
    device_kinds = (DeviceKind.BOX, DeviceKind.PAD)
    # Each item's text is checked with the item (a bad one never rejects the others); the
    # body may hold a full batch with snapshots.
    parser_classes = [ItemsJSONParser]
    schema = EventIngestSchema()

    @property
    def max_body_bytes(self) -> int:
        return services.batch_max_bytes()

    @extend_schema(
        tags=["device API"],
        request=PolymorphicProxySerializer(
            component_name="EventPost",
            serializers=[EventItemSerializer, EventBatchSerializer],
            resource_type_field_name=None,
        ),
        responses={
            200: PolymorphicProxySerializer(
                component_name="EventPostAnswer",
                serializers=[BatchAnswerSerializer, ItemResultSerializer],
                resource_type_field_name=None,
            ),
            201: ItemResultSerializer,
        },
        summary="Post recognition events: one, or a batch of up to 500",
        description=(
            'Body: one event object, or `{"events": [...]}` with up to 500. Each event has a '
            "`uid` unique for this device: posting it again answers `duplicate` with the stored "
            "event's id, so retries are safe. `subject_id` null or unknown makes a stranger event. "
            "`snapshot` is an optional base64 image. A batch answers 200 with a result per item "
            "(a bad item never rejects the good ones); a single event answers 201 `created`, 200 "
            "`duplicate`, or its error envelope. The body is at most 500 events with snapshots of "
            "the largest size; a larger one answers 413 `payload_too_large` with the `limit`."
        ),
    )
    def post(self, request):
        body = request.data
        if isinstance(body, dict) and set(body) == {"events"}:
            if not isinstance(body["events"], list):
                raise KangarooError(errors.VALIDATION_ERROR, fields={"events": [_("A list of events is expected.")]})
            results = services.event_ingest(device=self.device, items=body["events"])
            counts = {"created": 0, "duplicate": 0, "error": 0}
            for result in results:
                counts[result.status] += 1
            return Response(
                {
                    "created": counts["created"],
                    "duplicates": counts["duplicate"],
                    "errors": counts["error"],
                    "results": [result.as_dict() for result in results],
                }
            )
        [result] = services.event_ingest(device=self.device, items=[body])
        if result.status == "error":
            error = errors.REGISTRY[result.error["code"]]
            raise KangarooError(error, result.error["message"], fields=result.error["fields"])
        return Response(
            result.as_dict(), status=status.HTTP_201_CREATED if result.status == "created" else status.HTTP_200_OK
        )


# --- Device-facing: recognition -----------------------------------------------------------------


class RecognizeFields(StrictSerializer):
    uid = serializers.CharField(
        min_length=1,
        max_length=64,
        required=False,
        help_text="Unique for this device: a retry with the same uid answers the event stored the first time.",
    )
    screen_id = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="A box names the screen (camera) that took the frame; a pad reports for its own screen.",
    )


class PadSubjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=SubjectType.choices)
    job_number = serializers.CharField()


class RecognitionAnswerSerializer(serializers.Serializer):
    """What the pad shows."""

    event_id = serializers.IntegerField(help_text="The stored event (`/events/{id}`).")
    kind = serializers.ChoiceField(
        choices=[EventKind.RECOGNIZED, EventKind.STRANGER, EventKind.VISITOR_OUTSIDE_WINDOW],
        help_text="`recognized`; `visitor_outside_window` for a visitor outside their visit; `stranger`.",
    )
    duplicate = serializers.BooleanField(help_text="True when a retry's uid was stored already: its event.")
    subject = PadSubjectSerializer(allow_null=True, help_text="Null for a stranger.")
    distance = serializers.FloatField(
        allow_null=True, help_text="To the subject's closest photo (under the company's threshold)."
    )
    greeting = serializers.CharField(help_text="What the pad shows, in the request's language.")
    happened_at = serializers.DateTimeField()


def pad_greeting(event: Event, company_name: str) -> str:
    """What a pad shows for an event it recognised: the welcome of the subject's type (the
    TV boxes' default greetings), or what a visitor out of their window or a stranger needs
    to hear."""
    name = event.subject_name
    if event.kind == EventKind.RECOGNIZED:
        template = DEFAULT_GREETINGS.get(event.subject_type, DEFAULT_GREETINGS["employee"])
        return str(template).format(name=name, company=company_name)
    if event.kind == EventKind.VISITOR_OUTSIDE_WINDOW:
        return str(_("Welcome, {name}. Your visit is not booked for now: please ask at the reception.")).format(
            name=name
        )
    return str(_("Sorry, we do not recognise you. Please ask at the reception."))


def recognition_answer(event: Event, *, duplicate: bool, company_name: str) -> dict:
    return {
        "event_id": event.pk,
        "kind": event.kind,
        "duplicate": duplicate,
        "subject": (
            {
                "id": event.subject_id,
                "name": event.subject_name,
                "type": event.subject_type,
                "job_number": event.subject_job_number,
            }
            if event.subject_id
            else None
        ),
        "distance": event.distance,
        "greeting": pad_greeting(event, company_name),
        "happened_at": event.happened_at,
    }


RECOGNIZE_DESCRIPTION = (
    "The face in `image` is looked up among the enrolled faces of the device's company (no other "
    "company's) and stored as an event, like a posted one, shown live on the dashboards: "
    "`recognized` with the subject and the distance, or `stranger` with the snapshot. The answer "
    "is what the pad shows: the subject, a greeting and the event's id (201). With a `uid`, a "
    "retry answers the event stored the first time (200, `duplicate` true) without recognising "
    "again. A box names the screen (camera) in `screen_id`."
)
RECOGNIZE = image_operation(
    "Recognize",
    RecognizeFields,
    what="A pad's or box's camera frame to recognise",
    path="/device/recognize",
    summary="Recognise a face: the pad's snapshot ({body}) becomes an event",
    description=RECOGNIZE_DESCRIPTION,
    responses={201: RecognitionAnswerSerializer, 200: RecognitionAnswerSerializer},
    tags=["device API"],
)


class RecognizeView(ImageBodyMixin, DeviceView):
    device_kinds = (DeviceKind.PAD, DeviceKind.BOX)

    @RECOGNIZE.json_schema
    def post(self, request):
        fields, image = image_request(request, RECOGNIZE.fields)
        recognition = services.event_recognize(
            device=self.device, image=image, uid=fields.get("uid") or "", screen_id=fields.get("screen_id")
        )
        answer = recognition_answer(
            recognition.event, duplicate=not recognition.created, company_name=self.device.company.name
        )
        return Response(
            RecognitionAnswerSerializer(answer).data,
            status=status.HTTP_201_CREATED if recognition.created else status.HTTP_200_OK,
        )


class RecognizeUploadView(ImageUploadMixin, RecognizeView):
    @RECOGNIZE.upload_schema
    def post(self, request):
        return super().post(request)


class VerifyFields(StrictSerializer):
    job_number = serializers.CharField(max_length=40, help_text="Whom the person at the pad says they are.")


class VerificationSerializer(serializers.Serializer):
    match = serializers.BooleanField(help_text="The face is this subject's (closer than the threshold).")
    distance = serializers.FloatField(
        allow_null=True, help_text="To the subject's closest photo; null when the subject has no usable photo."
    )
    threshold = serializers.FloatField(help_text="The company's match threshold.")
    subject = PadSubjectSerializer()


VERIFY_DESCRIPTION = (
    "For a pad's \"check in as ...\": compares the face in `image` with the photos of the company's "
    "subject with `job_number` only, and answers whether it matches, with the distance. No event is "
    "stored; every verification is in the audit log. An unknown job number answers 404 `not_found`."
)


VERIFY = image_operation(
    "Verify",
    VerifyFields,
    what="A camera frame and whom the person says they are",
    path="/device/verify",
    summary="Verify a face ({body}): is this the subject with this job number? (1:1)",
    description=VERIFY_DESCRIPTION,
    responses={200: VerificationSerializer},
    tags=["device API"],
)


class VerifyView(ImageBodyMixin, DeviceView):
    device_kinds = (DeviceKind.PAD,)

    @VERIFY.json_schema
    def post(self, request):
        fields, image = image_request(request, VERIFY.fields)
        verification = subject_verify(
            company=self.device.company, actor=request.user, job_number=fields["job_number"], image=image
        )
        subject = verification.subject
        return Response(
            VerificationSerializer(
                {
                    "match": verification.match,
                    "distance": verification.distance,
                    "threshold": verification.threshold,
                    "subject": {
                        "id": subject.pk,
                        "name": subject.name,
                        "type": subject.subject_type,
                        "job_number": subject.job_number,
                    },
                }
            ).data
        )


class VerifyUploadView(ImageUploadMixin, VerifyView):
    @VERIFY.upload_schema
    def post(self, request):
        return super().post(request)


# --- People-facing: browse ---------------------------------------------------------------------


class EventFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=EventKind.choices)
    since = IsoDateTimeFilter(field_name="happened_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="happened_at", lookup_expr="lt")
    screen = IdFilter(field_name="screen_id")
    department = IdFilter(field_name="subject__department_id")
    subject_type = filters.CharFilter(field_name="subject_type")
    job_number = filters.CharFilter(
        field_name="subject_job_number", help_text="Events of the subject with this job number."
    )
    q = filters.CharFilter(method="search", help_text="Name or job number contains.")

    class Meta:
        model = Event
        fields = ["kind", "since", "until", "screen", "department", "subject_type", "job_number"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(subject_name__icontains=value) | Q(subject_job_number__icontains=value))


class EventCursorPagination(CursorPagination):
    ordering = ("-happened_at", "-id")
    page_size = 100


@extend_schema(tags=["events"])
class EventViewSet(ImageLinksMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Who passed which door, when. Newest first, cursor-paginated (stable while events arrive)."""

    image_link_actions = frozenset({"list", "retrieve"})

    model = Event
    serializer_class = EventSerializer
    filterset_class = EventFilter
    api_key_scopes = {"read": "events:read"}  # corrections are made by people
    pagination_class = EventCursorPagination

    def scope(self, queryset):
        return with_first_photo_id(queryset)

    @extend_schema(
        request=unknown_api.EventCorrectSerializer,
        responses={201: unknown_api.EventCorrectionSerializer},
        summary="Correct who the event is about",
    )
    @action(detail=True, methods=["post"])
    def correct(self, request, pk=None):
        """Reassign the event to the right subject, or mark it a stranger (`subject` null);
        optionally add its snapshot as a photo of that subject. The original is kept in the
        answered correction; attendance of that day follows; live pages are told."""
        return unknown_api.correct_event(self, request, self.get_object())

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="The event's snapshot")
    @action(detail=True, methods=["get"])
    def snapshot(self, request, pk=None):
        event = self.get_object()
        if not event.snapshot:
            raise Http404
        face_view_check(request)
        audit_biometric_view(
            request=request, company_id=event.company_id, subject_ref=snapshot_subject_ref(event), kind="snapshot"
        )
        return media_response(event.snapshot)


# --- Attendance --------------------------------------------------------------------------------


class ReportDateField(serializers.DateField):
    """A report date from 2000 to 2100: further out is a typo, and near the ends of the
    calendar the local-midnight arithmetic would overflow."""

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not 2000 <= day.year <= 2100:
            self.fail("invalid", format="YYYY-MM-DD, 2000 to 2100")
        return day


class AttendanceQuerySerializer(serializers.Serializer):
    """The query string; `from` is a Python keyword, hence the fields built in get_fields."""

    def get_fields(self):
        return {
            "from": ReportDateField(required=False, label=_("from")),
            "to": ReportDateField(required=False, label=_("to")),
            "department": serializers.IntegerField(
                required=False, min_value=1, max_value=MAX_ID, label=_("department")
            ),
            "subject_type": serializers.ChoiceField(choices=SubjectType.choices, required=False, label=_("type")),
            "job_number": serializers.CharField(required=False, max_length=40, label=_("job number")),
            "q": serializers.CharField(required=False, max_length=100, label=_("search")),
        }


class CompanyDateTimeField(serializers.DateTimeField):
    """An aware time shown with the offset it carries (the company's zone), not converted to
    the server's."""

    def enforce_timezone(self, value):
        return value


class AttendanceDaySerializer(serializers.Serializer):
    subject_id = serializers.IntegerField()
    name = serializers.CharField()
    job_number = serializers.CharField()
    subject_type = serializers.ChoiceField(choices=SubjectType.choices)
    department = serializers.CharField(help_text="Empty without a department.")
    date = serializers.DateField(help_text="The day in the company's time zone.")
    first_in = CompanyDateTimeField(allow_null=True, help_text="First pass in (or both ways), company time.")
    last_out = CompanyDateTimeField(allow_null=True, help_text="Last pass out (or both ways), company time.")
    passes = serializers.IntegerField(help_text="Recognized passes that day, any direction.")
    late = serializers.BooleanField(allow_null=True, help_text="First in after the company's work start.")
    left_early = serializers.BooleanField(allow_null=True, help_text="Last out before the company's work end.")


class AttendancePagination(PageNumberPagination):
    """A page of rows, and on every page the purged days of the whole range."""

    def get_paginated_response(self, data, purged=()):
        response = super().get_paginated_response(data)
        response.data["purged_days"] = purged
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["purged_days"] = {
            "type": "array",
            "description": "The days of the range whose events the retention purge deleted: no row names anyone "
            "on them (they are not absences); only these anonymous totals are left.",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date", "description": "The day, company time zone."},
                    "people": {
                        "type": "integer",
                        "nullable": True,
                        "description": "Different people recognised that day (person-days), of `subject_type` "
                        "when given; null when `department`, `job_number` or `q` is given, which anonymous "
                        "totals cannot be filtered by.",
                    },
                    "passes": {"type": "integer", "nullable": True, "description": "Recognised passes; null likewise."},
                },
                "required": ["date", "people", "passes"],
            },
        }
        schema["required"] = [*schema.get("required", []), "purged_days"]
        return schema


# Blank means "not given" (the attendance page's form sends every field): see kangaroo.api.schema.
BLANK = {"extensions": {BLANK_IS_ABSENT: True}}

ATTENDANCE_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, description="First day (company time zone). Default: `to`, or today.", **BLANK
    ),
    OpenApiParameter(
        "to", OpenApiTypes.DATE, description="Last day, included. Default: today (or `from` if later).", **BLANK
    ),
    OpenApiParameter(
        "department", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description="Department id.", **BLANK
    ),
    OpenApiParameter("subject_type", OpenApiTypes.STR, enum=SubjectType.values, **BLANK),
    OpenApiParameter("job_number", OpenApiTypes.STR, description="Exactly this job number."),
    OpenApiParameter("q", OpenApiTypes.STR, description="Name or job number contains."),
]


class AttendanceView(generics.GenericAPIView):
    """Attendance per subject and day of the company's time zone. Every role may read."""

    serializer_class = AttendanceDaySerializer
    pagination_class = AttendancePagination
    api_key_scopes = {"read": "events:read"}
    filter_backends = []

    @extend_schema(
        tags=["attendance"],
        summary="Attendance per subject and day",
        description=(
            "One row per subject and day (days of the company's time zone) with recognized passes: "
            "the first pass in and the last pass out (a screen without a direction counts both ways), "
            "the number of passes, and whether the subject came after the company's `work_start` "
            "(`late`) or left before its `work_end` (`left_early`); null without a pass in / out. "
            "Ordered by day, then name. At most 366 days per request (`attendance_range_too_long`); "
            "`to` before `from` is a `validation_error` on `to`. Days whose events the retention purge deleted "
            "have no rows (nobody can be named on them, which does not make them absences): every page lists them "
            "in `purged_days` with the anonymous totals kept of them."
        ),
        parameters=ATTENDANCE_PARAMETERS,
        responses={
            200: AttendanceDaySerializer(many=True),
            400: OpenApiResponse(ErrorEnvelopeSerializer, description="Error envelope"),
        },
    )
    def get(self, request):
        # A blank parameter (`department=`) means "no filter", as in the event list.
        query = AttendanceQuerySerializer(data={k: v for k, v in request.query_params.items() if v.strip()})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        company = request_company(request)
        date_from, date_to = attendance_range(company=company, date_from=params.get("from"), date_to=params.get("to"))
        rows = attendance_days(
            company=company,
            date_from=date_from,
            date_to=date_to,
            department=params.get("department"),
            subject_type=params.get("subject_type"),
            job_number=params.get("job_number"),
            q=params.get("q"),
        )
        page = self.paginate_queryset(rows)
        purged = purged_day_summary(
            company=company, date_from=date_from, date_to=date_to, subject_type=params.get("subject_type")
        )
        # Anonymous totals cannot be narrowed to a department or a person.
        narrowed = any(params.get(name) for name in ("department", "job_number", "q"))
        purged_days = [
            {
                "date": day.day.isoformat(),
                "people": None if narrowed else day.people,
                "passes": None if narrowed else day.passes,
            }
            for day in purged
        ]
        return self.paginator.get_paginated_response(self.get_serializer(page, many=True).data, purged_days)
