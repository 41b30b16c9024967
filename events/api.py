"""Events over the API: devices post them; people list and read them."""

from django.db.models import Q
from django.http import FileResponse, Http404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, pagination, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from devices.api import DeviceView
from devices.models import DeviceKind
from events import services
from events.models import Event, EventKind
from kangaroo import errors
from kangaroo.api.viewsets import TenantViewSet
from kangaroo.errors import KangarooError

# --- Device-facing: ingest ---------------------------------------------------------------------

ITEM_EXAMPLE = {
    "uid": "box7-000184233",
    "happened_at": "2026-03-02T08:58:12.345+08:00",
    "subject_id": 1024,
    "screen_id": 7,
    "confidence": 0.93,
}


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


class EventIngestView(DeviceView):
    device_kinds = (DeviceKind.BOX, DeviceKind.PAD)

    @extend_schema(
        tags=["device API"],
        request=OpenApiTypes.OBJECT,
        responses={200: BatchAnswerSerializer, 201: ItemResultSerializer},
        summary="Post recognition events: one, or a batch of up to 500",
        description=(
            'Body: one event object, or `{"events": [...]}` with up to 500. Each event has a '
            "`uid` unique for this device: posting it again answers `duplicate` with the stored "
            "event's id, so retries are safe. `subject_id` null or unknown makes a stranger event. "
            "`snapshot` is an optional base64 image. A batch answers 200 with a result per item "
            "(a bad item never rejects the good ones); a single event answers 201 `created`, 200 "
            "`duplicate`, or its error envelope."
        ),
        examples=[
            OpenApiExample("One event", value=ITEM_EXAMPLE, request_only=True),
            OpenApiExample("A batch", value={"events": [ITEM_EXAMPLE]}, request_only=True),
        ],
    )
    def post(self, request):
        body = request.data
        if isinstance(body, dict) and set(body) == {"events"}:
            if not isinstance(body["events"], list):
                raise KangarooError(errors.VALIDATION_ERROR, fields={"events": ["A list of events is expected."]})
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


# --- People-facing: browse ---------------------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    subject = serializers.SerializerMethodField()
    snapshot_url = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "kind", "happened_at", "received_at", "subject", "device_kind", "device_id", "device_name",
                  "screen", "direction", "confidence", "snapshot_url"]  # fmt: skip
        read_only_fields = fields

    def get_subject(self, event) -> dict | None:
        if not event.subject_name:
            return None
        return {
            "id": event.subject_id,  # null once the subject is deleted; the names stay
            "name": event.subject_name,
            "type": event.subject_type,
            "job_number": event.subject_job_number,
        }

    def get_snapshot_url(self, event) -> str | None:
        return f"/api/v1/events/{event.pk}/snapshot" if event.snapshot else None


class EventFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=EventKind.choices)
    since = filters.IsoDateTimeFilter(field_name="happened_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="happened_at", lookup_expr="lt")
    screen = filters.NumberFilter(field_name="screen_id")
    department = filters.NumberFilter(field_name="subject__department_id")
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


class EventCursorPagination(pagination.CursorPagination):
    ordering = ("-happened_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


@extend_schema(tags=["events"])
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Who passed which door, when. Newest first, cursor-paginated (stable while events arrive)."""

    model = Event
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = EventCursorPagination

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="The event's snapshot")
    @action(detail=True, methods=["get"])
    def snapshot(self, request, pk=None):
        event = self.get_object()
        if not event.snapshot:
            raise Http404
        response = FileResponse(event.snapshot.open("rb"), content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=3600"
        return response
