"""The API of unknown people and of corrections (`events.unknown_people`, `events.corrections`).

Thin: each operation reads through `events.selectors` or writes through a service. Images of
unknown people are served only by `unknown-snapshots/{id}/image`, after the company check.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.services import audit_biometric_view
from events import selectors
from events.corrections import event_correct
from events.models import CorrectionKind, EventCorrection, UnknownPerson, UnknownSnapshot
from events.unknown_people import (
    unknown_person_add_to_subject,
    unknown_person_delete,
    unknown_person_enrol,
    unknown_person_ignore,
    unknown_person_merge,
)
from kangaroo.api.disclosure import ImageLinksMixin, image_links_shown
from kangaroo.api.fields import CompanyRelatedField
from kangaroo.api.permissions import face_view_check
from kangaroo.api.serializers import StrictSerializer
from kangaroo.api.viewsets import TenantViewSet
from kangaroo.media import media_response
from subjects.api import USER_CONSENT_METHODS, SubjectSerializer
from subjects.models import Subject, SubjectType
from subjects.services import ConsentGiven


def unknown_snapshot_url(snapshot: UnknownSnapshot) -> str:
    return reverse("unknown-snapshot-image", args=[snapshot.pk])


class UnknownSnapshotSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = UnknownSnapshot
        fields = ["id", "quality", "happened_at", "event", "image_url"]
        read_only_fields = fields

    def get_image_url(self, snapshot) -> str | None:
        """Null unless asked for with `?include=images` (owners and admins)."""
        return unknown_snapshot_url(snapshot) if image_links_shown(self.context) else None


class UnknownPersonSerializer(serializers.ModelSerializer):
    """Someone the cameras keep seeing who is not enrolled: their face's sightings, grouped."""

    screens = serializers.SerializerMethodField(help_text="Names of the devices (screens, pads) that saw them.")
    snapshots = UnknownSnapshotSerializer(many=True, read_only=True, help_text="The best snapshots, best first.")

    class Meta:
        model = UnknownPerson
        fields = ["id", "first_seen_at", "last_seen_at", "sightings", "ignored", "screens", "snapshots"]
        read_only_fields = fields

    def get_screens(self, person) -> list[str]:
        return self.context.get("screens", {}).get(person.pk, [])


class SnapshotChoiceMixin(serializers.Serializer):
    snapshots = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=10,
        help_text="Ids of the person's snapshots that become photos (at most 5 a subject); left out: the best one.",
    )


class UnknownEnrolSerializer(SnapshotChoiceMixin, StrictSerializer):
    name = serializers.CharField(max_length=100)
    subject_type = serializers.ChoiceField(choices=SubjectType.choices, default=SubjectType.EMPLOYEE)
    job_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    consent_method = serializers.ChoiceField(
        choices=USER_CONSENT_METHODS,
        required=False,
        help_text="The person's consent, recorded with the new subject: how it was given. Without it the "
        "snapshots cannot become photos when the company requires consent (409 `consent_required`).",
    )
    consent_policy_version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        help_text="With `consent_method`: the version of the retention policy the person was shown (the current one).",
    )
    consent_given_at = serializers.DateTimeField(
        required=False, help_text="With `consent_method`: when it was given; now when left out."
    )

    def validate(self, attrs):
        consent = {key: attrs.pop(key) for key in list(attrs) if key.startswith("consent_")}
        if consent and ("consent_method" not in consent or "consent_policy_version" not in consent):
            missing = "consent_policy_version" if "consent_method" in consent else "consent_method"
            raise serializers.ValidationError({missing: [str(serializers.Field.default_error_messages["required"])]})
        if consent:
            attrs["consent"] = ConsentGiven(
                method=consent["consent_method"],
                policy_version=consent["consent_policy_version"],
                given_at=consent.get("consent_given_at"),
            )
        return attrs


class UnknownAddToSubjectSerializer(SnapshotChoiceMixin, StrictSerializer):
    subject = CompanyRelatedField(model=Subject)


class UnknownMergeSerializer(StrictSerializer):
    into = CompanyRelatedField(model=UnknownPerson, help_text="The unknown person who stays.")


class UnknownIgnoreSerializer(StrictSerializer):
    ignored = serializers.BooleanField(default=True)


@extend_schema(tags=["unknown people"])
class UnknownPersonViewSet(
    ImageLinksMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Unknown people of the company, last seen first. Deleting one deletes their snapshots
    (their best ones and their events'); the events stay."""

    image_link_actions = frozenset({"list", "retrieve", "enrol", "add_to_subject", "merge", "ignore"})

    model = UnknownPerson
    serializer_class = UnknownPersonSerializer

    def scope(self, queryset):
        return queryset.prefetch_related("snapshots").order_by("-last_seen_at", "-id")

    def _data(self, people, many: bool):
        listed = list(people) if many else [people]
        context = {
            **self.get_serializer_context(),
            "screens": selectors.unknown_people_screens(company=self.company, people=listed),
        }
        return UnknownPersonSerializer(people, many=many, context=context).data

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._data(page, many=True))

    def retrieve(self, request, *args, **kwargs):
        return Response(self._data(self.get_object(), many=False))

    def perform_destroy(self, instance):
        unknown_person_delete(company=self.company, actor=self.actor, person=instance)

    def _fresh(self, person):
        return self._data(self.get_queryset().get(pk=person.pk), many=False)

    @extend_schema(request=UnknownEnrolSerializer, responses={201: SubjectSerializer}, summary="Enrol as a new subject")
    @action(detail=True, methods=["post"])
    def enrol(self, request, pk=None):
        """The chosen snapshots become the new subject's photos (and enrol); the person's
        stranger events become the subject's recognitions; the unknown person is deleted."""
        person = self.get_object()
        form = UnknownEnrolSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        snapshots = data.pop("snapshots", None)
        subject = unknown_person_enrol(
            company=self.company, actor=self.actor, person=person, snapshot_ids=snapshots, **data
        )
        answer = SubjectSerializer(subject, context=self.get_serializer_context())
        return Response(answer.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=UnknownAddToSubjectSerializer,
        responses={200: SubjectSerializer},
        summary="Add to an existing subject",
    )
    @action(detail=True, methods=["post"], url_path="add-to-subject")
    def add_to_subject(self, request, pk=None):
        """As enrol, into an existing subject of the company."""
        person = self.get_object()
        form = UnknownAddToSubjectSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        subject = unknown_person_add_to_subject(
            company=self.company,
            actor=self.actor,
            person=person,
            subject=form.validated_data["subject"],
            snapshot_ids=form.validated_data.get("snapshots"),
        )
        return Response(SubjectSerializer(subject, context=self.get_serializer_context()).data)

    @extend_schema(
        request=UnknownMergeSerializer, responses={200: UnknownPersonSerializer}, summary="Merge into another"
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """This person's sightings, events and snapshots join `into`; this person is deleted."""
        person = self.get_object()
        form = UnknownMergeSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        into = unknown_person_merge(
            company=self.company, actor=self.actor, person=person, into=form.validated_data["into"]
        )
        return Response(self._fresh(into))

    @extend_schema(request=UnknownIgnoreSerializer, responses={200: UnknownPersonSerializer}, summary="Ignore or not")
    @action(detail=True, methods=["post"])
    def ignore(self, request, pk=None):
        """An ignored person's sightings raise no stranger alert on the dashboards."""
        person = self.get_object()
        form = UnknownIgnoreSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        person = unknown_person_ignore(
            company=self.company, actor=self.actor, person=person, ignored=form.validated_data["ignored"]
        )
        return Response(self._fresh(person))


@extend_schema(tags=["unknown people"])
class UnknownSnapshotViewSet(TenantViewSet):
    """An unknown person's snapshot image, after the company check."""

    model = UnknownSnapshot
    serializer_class = UnknownSnapshotSerializer

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY}, summary="An unknown person's snapshot")
    @action(detail=True, methods=["get"])
    def image(self, request, pk=None):
        snapshot = self.get_object()
        face_view_check(request)
        audit_biometric_view(
            request=request,
            company_id=snapshot.company_id,
            subject_ref=f"unknown:{snapshot.person_id}",
            kind="snapshot",
        )
        return media_response(snapshot.image)


# --- Corrections --------------------------------------------------------------------------------


class EventCorrectSerializer(StrictSerializer):
    subject = CompanyRelatedField(
        model=Subject,
        allow_null=True,
        help_text="The subject the event was really about; null: it was a stranger.",
    )
    add_photo = serializers.BooleanField(
        default=False, help_text="Also add the event's snapshot as a photo of `subject`."
    )


class EventCorrectionSerializer(serializers.ModelSerializer):
    """One correction of an event: what the event said before, and what it says now."""

    kind = serializers.ChoiceField(choices=CorrectionKind.choices, read_only=True)

    class Meta:
        model = EventCorrection
        fields = [
            "id",
            "event",
            "kind",
            "screen",
            "original_kind",
            "original_subject",
            "original_subject_name",
            "original_confidence",
            "subject",
            "subject_name",
            "photo",
            "actor_repr",
            "created_at",
        ]
        read_only_fields = fields


def correct_event(view, request, event):
    """POST /events/{id}/correct, for `EventViewSet.correct`."""
    form = EventCorrectSerializer(data=request.data, context=view.get_serializer_context())
    form.is_valid(raise_exception=True)
    correction = event_correct(
        company=view.company,
        actor=view.actor,
        event=event,
        subject=form.validated_data["subject"],
        add_photo=form.validated_data["add_photo"],
    )
    return Response(EventCorrectionSerializer(correction).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["events"])
class EventCorrectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Corrections of the company's events, newest first: each keeps what the event said before."""

    model = EventCorrection
    serializer_class = EventCorrectionSerializer
    api_key_scopes = {"read": "events:read"}

    def scope(self, queryset):
        return queryset.order_by("-created_at", "-id")
