"""Devices API, in two parts that never mix.

- Admin-facing (`/boxes`, `/screens`, `/pads`, `/tv-boxes`): people with a user token
  register and manage devices. Viewers read; admins and owners write.
- Device-facing (`/device/...`): the devices themselves, with `Authorization: Device <key>`,
  send heartbeats and read their configuration. Built on `devices.device_api`: only device
  keys are accepted there, and a device key is accepted nowhere else.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.services import retention_policy_current
from devices import selectors, services
from devices.device_api import DeviceView
from devices.models import (
    BOX_MAX_SCREENS,
    Box,
    CameraStatus,
    Device,
    DeviceKind,
    Pad,
    Screen,
    Status,
    TVBox,
)
from devices.validators import mask_camera_url
from kangaroo.api.fields import CompanyRelatedField
from kangaroo.api.filters import MAX_ID, IdFilter
from kangaroo.api.schema import AutoSchema
from kangaroo.api.serializers import StrictSerializer
from kangaroo.api.viewsets import TenantViewSet
from subjects.models import ConsentMethod
from subjects.selectors import gallery_sequence, subject_by_job_number
from subjects.services import consent_record

# --- fields -----------------------------------------------------------------------------------


class CameraUrlField(serializers.CharField):
    """Written in full; read with the password masked (`rtsp://user:***@host/...`)."""

    def to_representation(self, value):
        return mask_camera_url(super().to_representation(value))


# --- admin-facing serializers -----------------------------------------------------------------

DEVICE_FIELDS = [
    "id",
    "name",
    "location",
    "status",
    "last_seen_at",
    "software_version",
    "address",
    "uptime_seconds",
    "key_hint",
    "key_active",
    "key_issued_at",
    "key_revoked_at",
    "created_at",
    "updated_at",
]
DEVICE_READ_ONLY = [f for f in DEVICE_FIELDS if f not in ("name", "location")]


class DeviceSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(help_text="From the last heartbeat; the device is never contacted.")
    key_hint = serializers.CharField(read_only=True, help_text="The public part of the key, to tell keys apart.")
    key_active = serializers.BooleanField(source="key_is_active", read_only=True)

    @extend_schema_field(serializers.ChoiceField(choices=Status.choices))
    def get_status(self, device: Device) -> str:
        return device.get_status()


class GalleryLagSerializer(serializers.Serializer):
    changes = serializers.IntegerField(help_text="Gallery changes the box has not applied (by its last heartbeat).")
    since = serializers.DateTimeField(
        allow_null=True, help_text="When the first change it has not applied happened; null when up to date."
    )
    lagging = serializers.BooleanField(
        help_text="More than GALLERY_LAG_CHANGES changes behind for longer than GALLERY_LAG_SECONDS."
    )


class BoxSerializer(DeviceSerializer):
    class Meta:
        model = Box
        fields = [
            *DEVICE_FIELDS,
            "serial",
            "hardware_model",
            "max_screens",
            "screen_count",
            "gallery_cursor",
            "gallery_lag",
        ]
        # The version a box is installed with can be entered; its heartbeats keep it current.
        read_only_fields = [f for f in [*DEVICE_READ_ONLY, "gallery_cursor"] if f != "software_version"]

    screen_count = serializers.SerializerMethodField()
    gallery_lag = serializers.SerializerMethodField()

    @extend_schema_field(GalleryLagSerializer)
    def get_gallery_lag(self, box: Box) -> dict:
        return GalleryLagSerializer(selectors.gallery_lag(box)).data

    def get_screen_count(self, box: Box) -> int:
        if hasattr(box, "screen_count"):
            return box.screen_count
        return selectors.box_screen_count(box=box)


class ScreenSerializer(DeviceSerializer):
    camera_url = CameraUrlField(
        max_length=500,
        validators=Screen._meta.get_field("camera_url").validators,
        help_text="rtsp(s):// or http(s):// with a host. Read back with the password as `***`; "
        "sending the masked address back keeps the stored password.",
    )
    box = CompanyRelatedField(model=Box, allow_null=True, required=False)

    class Meta:
        model = Screen
        fields = [*DEVICE_FIELDS, "camera_url", "direction", "box", "is_active", "camera_status"]
        read_only_fields = [*DEVICE_READ_ONLY, "camera_status"]


class PadSerializer(DeviceSerializer):
    screen = CompanyRelatedField(model=Screen, allow_null=True, required=False)

    class Meta:
        model = Pad
        fields = [*DEVICE_FIELDS, "screen", "mode", "welcome_text"]
        read_only_fields = DEVICE_READ_ONLY


class TVBoxSerializer(DeviceSerializer):
    screens = CompanyRelatedField(model=Screen, many=True, required=False)

    class Meta:
        model = TVBox
        fields = [
            *DEVICE_FIELDS,
            "screens",
            "greeting_employee",
            "greeting_visitor",
            "greeting_vip",
            "theme",
            "greet_again_after",
        ]
        read_only_fields = DEVICE_READ_ONLY


def _with_key(serializer_class):
    """The serializer of a newly created device: its fields plus the key, shown this once."""
    return type(
        serializer_class.__name__.replace("Serializer", "CreatedSerializer"),
        (serializer_class,),
        {
            "api_key": serializers.CharField(
                read_only=True, help_text="Shown only now: store it on the device. Only its hash is kept."
            ),
            "Meta": type("Meta", (serializer_class.Meta,), {"fields": [*serializer_class.Meta.fields, "api_key"]}),
        },
    )


class DeviceKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    api_key = serializers.CharField(help_text="Shown only now; the previous key stopped working.")
    key_hint = serializers.CharField()
    key_issued_at = serializers.DateTimeField()


class AttachScreenSerializer(serializers.Serializer):
    screen = CompanyRelatedField(model=Screen)


# --- admin-facing filters ---------------------------------------------------------------------


class DeviceFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Status.choices, method="filter_status", label="status")
    location = filters.CharFilter(lookup_expr="iexact")
    name = filters.CharFilter(lookup_expr="icontains")

    def filter_status(self, queryset, name, value):
        return selectors.with_status(queryset, value)


class BoxFilter(DeviceFilter):
    class Meta:
        model = Box
        fields = ["status", "location", "name"]


class ScreenFilter(DeviceFilter):
    # By id: the list is already the requester's company, so another company's box id
    # simply matches nothing.
    box = IdFilter(field_name="box_id")

    class Meta:
        model = Screen
        fields = ["status", "location", "name", "box", "direction", "is_active"]


class PadFilter(DeviceFilter):
    screen = IdFilter(field_name="screen_id")
    box = IdFilter(field_name="screen__box_id")

    class Meta:
        model = Pad
        fields = ["status", "location", "name", "screen", "box", "mode"]


class TVBoxFilter(DeviceFilter):
    screen = IdFilter(field_name="screens", distinct=True)

    class Meta:
        model = TVBox
        fields = ["status", "location", "name", "screen", "theme"]


# --- admin-facing view sets -------------------------------------------------------------------


class DeviceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Shared by the four kinds: create answers the key once; rotate-key and revoke-key."""

    api_key_scopes = {"read": "devices:read"}  # company API keys read; only people register devices

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, key = services.device_create(
            company=self.company, actor=self.actor, kind=self.model.kind, **serializer.validated_data
        )
        return Response({**self.get_serializer(device).data, "api_key": key}, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.device_update(
            company=self.company, actor=self.actor, device=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.device_delete(company=self.company, actor=self.actor, device=instance)

    @extend_schema(
        request=None,
        responses=DeviceKeySerializer,
        summary="Issue a new key; the old one stops working at once",
        description="The new key is in this answer only. Also lifts a revocation.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        device, key = services.device_key_rotate(company=self.company, actor=self.actor, device=self.get_object())
        return Response(
            {"id": device.pk, "api_key": key, "key_hint": device.key_hint, "key_issued_at": device.key_issued_at}
        )

    @extend_schema(
        request=None,
        summary="Revoke the key: the device is refused (401 `device_key_revoked`) until a new key is issued",
    )
    @action(detail=True, methods=["post"], url_path="revoke-key")
    def revoke_key(self, request, pk=None):
        device = services.device_key_revoke(company=self.company, actor=self.actor, device=self.get_object())
        return Response(self.get_serializer(device).data)


BOX_EXAMPLE = {"name": "Lobby box", "location": "Lobby", "serial": "KB-2026-0042", "max_screens": 4}


@extend_schema(tags=["devices: boxes"])
@extend_schema_view(
    create=extend_schema(
        responses={201: _with_key(BoxSerializer)},
        examples=[OpenApiExample("A box", request_only=True, value=BOX_EXAMPLE)],
        summary="Register a recognition box; the answer holds its key, once",
    )
)
class BoxViewSet(DeviceViewSet):
    """Recognition boxes. A box serves at most `max_screens` screens."""

    model = Box
    selector = staticmethod(selectors.box_list)
    serializer_class = BoxSerializer
    filterset_class = BoxFilter

    @extend_schema(
        request=AttachScreenSerializer,
        responses=ScreenSerializer,
        summary="Attach a screen to this box",
        description="Answers 400 `box_screen_limit` with `count` and `limit` when the box is full.",
    )
    @action(detail=True, methods=["post"], url_path="attach-screen")
    def attach_screen(self, request, pk=None):
        box = self.get_object()
        data = AttachScreenSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        screen = services.screen_attach(
            company=self.company, actor=self.actor, screen=data.validated_data["screen"], box=box
        )
        return Response(ScreenSerializer(screen, context=self.get_serializer_context()).data)


SCREEN_EXAMPLE = {
    "name": "Front door",
    "location": "Lobby",
    "camera_url": "rtsp://viewer:secret@10.0.0.21:554/stream1",
    "direction": "in",
    "box": 1,
}


@extend_schema(tags=["devices: screens"])
@extend_schema_view(
    create=extend_schema(
        responses={201: _with_key(ScreenSerializer)},
        examples=[OpenApiExample("A camera at the front door", request_only=True, value=SCREEN_EXAMPLE)],
        summary="Register a screen (camera); the answer holds its key, once",
    )
)
class ScreenViewSet(DeviceViewSet):
    """Screens (cameras). The camera URL's password is never shown."""

    model = Screen
    selector = staticmethod(selectors.screen_list)
    serializer_class = ScreenSerializer
    filterset_class = ScreenFilter


@extend_schema(tags=["devices: pads"])
@extend_schema_view(
    create=extend_schema(
        responses={201: _with_key(PadSerializer)},
        examples=[
            OpenApiExample(
                "A check-in pad",
                request_only=True,
                value={"name": "Reception pad", "screen": 1, "mode": "check_in", "welcome_text": "Hello!"},
            )
        ],
        summary="Register a pad; the answer holds its key, once",
    )
)
class PadViewSet(DeviceViewSet):
    """Check-in pads, each bound to a screen."""

    model = Pad
    selector = staticmethod(selectors.pad_list)
    serializer_class = PadSerializer
    filterset_class = PadFilter


@extend_schema(tags=["devices: TV boxes"])
@extend_schema_view(
    create=extend_schema(
        responses={201: _with_key(TVBoxSerializer)},
        examples=[
            OpenApiExample(
                "A welcome display",
                request_only=True,
                value={"name": "Lobby TV", "screens": [1], "greeting_vip": "Welcome, {name}!", "theme": "dark"},
            )
        ],
        summary="Register a TV box; the answer holds its key, once",
    )
)
class TVBoxViewSet(DeviceViewSet):
    """Welcome displays: they greet the people recognised by their screens."""

    model = TVBox
    selector = staticmethod(selectors.tvbox_list)
    serializer_class = TVBoxSerializer
    filterset_class = TVBoxFilter


# --- device-facing ----------------------------------------------------------------------------


def heartbeat_every() -> int:
    """Seconds between heartbeats we ask for: a third of the grace period, so one or two
    lost heartbeats do not make a device look offline."""
    return max(settings.DEVICE_OFFLINE_AFTER // 3, 1)


class CameraReportSerializer(StrictSerializer):
    screen_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=CameraStatus.choices)


class HeartbeatSerializer(StrictSerializer):
    sent_at = serializers.DateTimeField(required=False, help_text="The device's clock; at most 5 minutes ahead.")
    version = serializers.CharField(max_length=64, required=False, allow_blank=True)
    address = serializers.IPAddressField(required=False, help_text="The device's own IP address.")
    uptime = serializers.IntegerField(
        min_value=0, max_value=MAX_ID, required=False, help_text="Seconds since the device started."
    )
    cameras = CameraReportSerializer(
        many=True,
        required=False,
        max_length=BOX_MAX_SCREENS,
        help_text="Boxes only: each of the box's screens, once; at most the box's `max_screens`.",
    )
    gallery_cursor = serializers.IntegerField(
        min_value=0, max_value=MAX_ID, required=False, help_text="Boxes only: the last gallery change applied."
    )

    BOX_ONLY = ("cameras", "gallery_cursor")

    def __init__(self, *args, kind: str | None = None, max_cameras: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if kind is not None and kind != DeviceKind.BOX:
            for name in self.BOX_ONLY:
                self.fields.pop(name)
        elif max_cameras is not None:
            # Checked before any item is: a list longer than the box's cameras is refused at once.
            self.fields["cameras"].max_length = max_cameras

    def validate_cameras(self, cameras):
        seen: set[int] = set()
        for index, camera in enumerate(cameras):
            if camera["screen_id"] in seen:
                raise serializers.ValidationError({index: {"screen_id": [_("This camera is already in the list.")]}})
            seen.add(camera["screen_id"])
        return cameras


class HeartbeatAnswerSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    server_time = serializers.DateTimeField()
    next_heartbeat_in = serializers.IntegerField(help_text="Seconds until the next heartbeat is due.")
    gallery_sequence = serializers.IntegerField(
        required=False,
        help_text="Boxes only: the company's latest gallery change. Higher than your cursor: pull the gallery.",
    )
    match_threshold = serializers.FloatField(
        required=False,
        help_text="Boxes only: the company's face match threshold. A box takes a face for a subject when the "
        "distance between their embeddings is under it, as the portal does.",
    )


class HeartbeatSchema(AutoSchema):
    def get_examples(self):
        # Sent a few seconds ago whenever the schema is read, so an example tried is a fresh one.
        sent = (timezone.now() - timedelta(seconds=5)).isoformat(timespec="seconds")
        pad = {"sent_at": sent, "version": "1.8.0", "address": "10.0.0.31", "uptime": 3600}
        box = {**pad, "version": "2.4.1", "address": "10.0.0.20", "uptime": 86400,
               "cameras": [{"screen_id": 7, "status": "ok"}], "gallery_cursor": 1532}  # fmt: skip
        return [
            OpenApiExample("A box", value=box, request_only=True),
            OpenApiExample("A pad or a TV box", value=pad, request_only=True),
        ]


class HeartbeatView(DeviceView):
    schema = HeartbeatSchema()

    @extend_schema(
        tags=["device API"],
        request=HeartbeatSerializer,
        responses=HeartbeatAnswerSerializer,
        summary="Report that this device is alive (any kind of device)",
        description=(
            "Send every `next_heartbeat_in` seconds. Unknown fields answer 400 `unknown_fields`; "
            "a `sent_at` more than 5 minutes ahead answers 400 `heartbeat_from_future`. "
            "`cameras` and `gallery_cursor` are for boxes only, and only a box's answer carries "
            "`gallery_sequence` and `match_threshold`; a camera that is not one of the "
            "box's screens answers 400 `validation_error` naming `cameras.<n>.screen_id`."
        ),
    )
    def post(self, request):
        device = self.device
        data = HeartbeatSerializer(
            data=request.data, kind=device.kind, max_cameras=getattr(device, "max_screens", None)
        )
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        now = timezone.now()
        device = services.device_heartbeat_record(
            device=self.device,
            now=now,
            sent_at=values.get("sent_at"),
            version=values.get("version"),
            address=values.get("address"),
            uptime=values.get("uptime"),
            cameras=values.get("cameras"),
            gallery_cursor=values.get("gallery_cursor"),
        )
        answer = {"status": device.get_status(now), "server_time": now, "next_heartbeat_in": heartbeat_every()}
        if device.kind == DeviceKind.BOX:
            answer["gallery_sequence"] = gallery_sequence(device.company_id)
            # The authenticated device came with its company: no query. A box recognises on
            # its own, so it must use the company's threshold, which owners may change.
            answer["match_threshold"] = self.device.company.face_match_threshold
        return Response(answer)


class PadRetentionPolicySerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="Send it as `policy_version` with a consent (`/device/consent`).")
    text = serializers.CharField(help_text="The text in the main language (`retention_policy_language`).")


class PadConfigSerializer(serializers.ModelSerializer):
    screen_id = serializers.IntegerField(allow_null=True, read_only=True)
    heartbeat_every = serializers.SerializerMethodField(help_text="Seconds between heartbeats.")
    consent_required = serializers.BooleanField(
        source="company.consent_required", help_text="Whether the company needs consent before enrolment."
    )
    retention_policy = serializers.SerializerMethodField(
        help_text="The company's current retention policy: what a person is shown before consenting on the pad."
    )
    retention_policy_language = serializers.SerializerMethodField(
        help_text="The policy's main language: show its text to a person whose language has none in "
        "`retention_policy_texts`."
    )
    retention_policy_texts = serializers.SerializerMethodField(
        help_text="The current version's text in each language it is written in, by language code (`en`, "
        "`zh-hant`), the main one included. Show the person the text in their language, else the main one, and "
        "send the language of the text shown as `policy_language` with the consent."
    )

    class Meta:
        model = Pad
        fields = [
            "id", "name", "screen_id", "location", "mode", "welcome_text", "heartbeat_every", "consent_required",
            "retention_policy", "retention_policy_language", "retention_policy_texts",
        ]  # fmt: skip
        read_only_fields = fields

    def get_heartbeat_every(self, pad) -> int:
        return heartbeat_every()

    def _policy(self, pad):
        # One read of the current version for the three fields that show it.
        if getattr(self, "_current_policy", None) is None:
            self._current_policy = retention_policy_current(company=pad.company)
        return self._current_policy

    @extend_schema_field(PadRetentionPolicySerializer)
    def get_retention_policy(self, pad) -> dict:
        policy = self._policy(pad)
        return {"version": policy.version, "text": policy.text}

    def get_retention_policy_language(self, pad) -> str:
        return self._policy(pad).language

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_retention_policy_texts(self, pad) -> dict:
        return self._policy(pad).texts


class PadLocationSerializer(StrictSerializer):
    location = serializers.CharField(max_length=200, allow_blank=True)


class PadConfigView(DeviceView):
    device_kinds = (DeviceKind.PAD,)

    @extend_schema(
        tags=["device API"],
        responses=PadConfigSerializer,
        summary="Pad login: the pad's configuration (its screen, location and mode)",
    )
    def get(self, request):
        return Response(PadConfigSerializer(self.device).data)


class PadConsentSerializer(StrictSerializer):
    job_number = serializers.CharField(max_length=40, help_text="The job number of the person consenting.")
    policy_version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text="The version of the retention policy the pad showed (`retention_policy.version` of "
        "`/device/pad/config`).",
    )
    policy_language = serializers.CharField(
        required=False,
        max_length=20,
        help_text="The language of the policy's text the pad showed (a key of `retention_policy_texts`); the main "
        "language when left out. One the product does not have is 400 `retention_policy_language_unknown`.",
    )


class PadConsentSubjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    job_number = serializers.CharField()


class PadConsentAnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The consent record's id.")
    subject = PadConsentSubjectSerializer()
    given_at = serializers.DateTimeField()
    method = serializers.CharField(help_text="Always `pad`.")
    policy_version = serializers.IntegerField()
    policy_language = serializers.CharField(help_text="The language of the text the person agreed to.")


class PadConsentView(DeviceView):
    device_kinds = (DeviceKind.PAD,)

    @extend_schema(
        tags=["device API"],
        request=PadConsentSerializer,
        responses={201: PadConsentAnswerSerializer},
        summary="A person consents on the pad to the retention policy it showed",
        description="Recorded as given now, on this pad (`pad`), for the subject of the pad's company with this "
        "job number, naming the version and the language of the text shown (`policy_language`: the main language "
        "when left out, or when the version has no text in the one named). An unknown job number (or another "
        "company's) answers 404 `not_found`; a language the product does not have 400 "
        "`retention_policy_language_unknown`; a policy version that "
        "is not the current one 409 `consent_policy_outdated` with `current_version`: show the current text "
        "(`/device/pad/config`) and ask again. Audited.",
    )
    def post(self, request):
        data = PadConsentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        company = self.device.company
        subject = subject_by_job_number(company=company, job_number=data.validated_data["job_number"])
        consent = consent_record(
            company=company,
            actor=request.user,
            subject=subject,
            method=ConsentMethod.PAD,
            policy_version=data.validated_data["policy_version"],
            policy_language=data.validated_data.get("policy_language"),
        )
        answer = {
            "id": consent.pk,
            "subject": {"id": subject.pk, "name": subject.name, "job_number": subject.job_number},
            "given_at": consent.given_at,
            "method": consent.method,
            "policy_version": consent.policy.version,
            "policy_language": consent.policy_language,
        }
        return Response(PadConsentAnswerSerializer(answer).data, status=status.HTTP_201_CREATED)


class PadLocationView(DeviceView):
    device_kinds = (DeviceKind.PAD,)
    http_method_names = ["patch", "options"]

    @extend_schema(
        tags=["device API"],
        request=PadLocationSerializer,
        responses=PadConfigSerializer,
        summary="The pad sets where it stands",
    )
    def patch(self, request):
        data = PadLocationSerializer(data=request.data, partial=True)  # PATCH: an empty body changes nothing
        data.is_valid(raise_exception=True)
        pad = self.device
        if "location" in data.validated_data:
            pad = services.pad_location_set(
                company=pad.company, actor=request.user, pad=pad, location=data.validated_data["location"]
            )
        return Response(PadConfigSerializer(pad).data)


class TVBoxConfigSerializer(serializers.ModelSerializer):
    screen_ids = serializers.SerializerMethodField()
    heartbeat_every = serializers.SerializerMethodField(help_text="Seconds between heartbeats.")

    class Meta:
        model = TVBox
        fields = [
            "id",
            "name",
            "location",
            "screen_ids",
            "greeting_employee",
            "greeting_visitor",
            "greeting_vip",
            "theme",
            "greet_again_after",
            "heartbeat_every",
        ]
        read_only_fields = fields

    def get_screen_ids(self, tvbox) -> list[int]:
        return sorted(tvbox.screens.values_list("pk", flat=True))

    def get_heartbeat_every(self, tvbox) -> int:
        return heartbeat_every()


class TVBoxConfigView(DeviceView):
    device_kinds = (DeviceKind.TVBOX,)

    @extend_schema(
        tags=["device API"],
        responses=TVBoxConfigSerializer,
        summary="TV box login: the screens it greets for, its greetings and theme",
    )
    def get(self, request):
        return Response(TVBoxConfigSerializer(self.device).data)
