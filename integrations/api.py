"""Webhook endpoints and their delivery log (every role reads, admins and owners write), company API
keys (every role reads, owners write)."""

from __future__ import annotations

import json

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from integrations import api_keys, services
from integrations.models import ApiKey, ApiScope, DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookType
from kangaroo.api.filters import IdFilter
from kangaroo.api.permissions import CanManageUsers, IsCompanyAdmin
from kangaroo.api.viewsets import TenantViewSet


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookType.choices),
        min_length=1,
        max_length=len(WebhookType.values),
        help_text="The types this endpoint receives (at least one).",
    )
    url = serializers.URLField(
        max_length=500,
        help_text="http(s) only; the host must resolve to public addresses (checked now and before every request).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "is_active", "failing_since", "disabled_at",
            "previous_secret_until", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "failing_since", "disabled_at", "previous_secret_until", "created_at", "updated_at"]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="`whsec_...`: verify the signatures with it. Shown only in this answer."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, read_only=True)
    body = serializers.SerializerMethodField(help_text="The message as sent: `type`, `timestamp`, `data`.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint", "message_id", "event_type", "status", "attempts", "response_status",
            "response_excerpt", "error", "duration_ms", "last_attempt_at", "next_attempt_at", "retry_until",
            "created_at", "delivered_at", "body",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_body(self, delivery) -> dict:
        return json.loads(delivery.body)


WEBHOOK_EXAMPLE = {
    "url": "https://hooks.example.com/kangaroo",
    "description": "Front desk chat",
    "event_types": ["event.stranger", "event.visitor_outside_window"],
}


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(viewsets.ModelViewSet, TenantViewSet):
    """Where the company's webhooks go, for admins and owners only (a URL is often a
    credential). The secret is in the create and rotate answers only."""

    model = WebhookEndpoint
    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsCompanyAdmin]
    api_key_scopes = {"read": "webhooks:manage", "write": "webhooks:manage"}

    def scope(self, queryset):
        return queryset.order_by("id")

    @extend_schema(
        responses={201: WebhookEndpointWithSecretSerializer},
        examples=[OpenApiExample("Strangers and late visitors to a chat", value=WEBHOOK_EXAMPLE, request_only=True)],
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(
            company=self.company, actor=self.actor, **serializer.validated_data
        )
        endpoint.secret = secret
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.webhook_endpoint_update(
            company=self.company, actor=self.actor, endpoint=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.webhook_endpoint_delete(company=self.company, actor=self.actor, endpoint=instance)

    @extend_schema(
        request=None,
        responses=WebhookEndpointWithSecretSerializer,
        summary="A new signing secret; the old one keeps signing too for 24 hours",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint, secret = services.webhook_secret_rotate(
            company=self.company, actor=self.actor, endpoint=self.get_object()
        )
        endpoint.secret = secret
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Send a test message (`webhook.ping`) now; its delivery shows how it went",
    )
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        delivery = services.webhook_ping(company=self.company, actor=self.actor, endpoint=self.get_object())
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryFilter(filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint")
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = filters.CharFilter()
    message_id = filters.CharFilter()

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type", "message_id"]


@extend_schema(tags=["webhooks"])
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The delivery log: each message, how many attempts, the last answer, the next try.
    Admins and owners only, like the endpoints it names."""

    model = WebhookDelivery
    serializer_class = WebhookDeliverySerializer
    permission_classes = [IsCompanyAdmin]
    filterset_class = WebhookDeliveryFilter
    api_key_scopes = {"read": "webhooks:manage", "write": "webhooks:manage"}

    def scope(self, queryset):
        return queryset.order_by("-created_at", "-id")

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Send the message again now (same webhook-id and body), retried for another 24 hours",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = services.webhook_redeliver(company=self.company, actor=self.actor, delivery=self.get_object())
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


# --- API keys ---------------------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiScope.choices),
        min_length=1,
        max_length=len(ApiScope.values),
        help_text="What the key may do: subjects:read, subjects:write, events:read, devices:read, webhooks:manage.",
    )
    key_hint = serializers.CharField(source="prefix", read_only=True, help_text="The public part of the key.")
    active = serializers.SerializerMethodField(help_text="Neither revoked nor expired.")

    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "scopes", "expires_at", "key_hint", "active", "revoked_at", "last_used_at",
            "last_used_ip", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "key_hint", "revoked_at", "last_used_at", "last_used_ip", "created_by", "created_at"]

    def get_active(self, api_key) -> bool:
        return api_key.is_active()


class ApiKeyWithSecretSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="`kgr_api_...`: send it as `Authorization: Bearer <key>`. Shown only in this answer."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


@extend_schema(tags=["api keys"])
class ApiKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, TenantViewSet
):
    """Keys for integrations: every role reads, owners create, change and revoke. The key itself
    is in the create answer only."""

    model = ApiKey
    serializer_class = ApiKeySerializer
    permission_classes = [CanManageUsers]

    def scope(self, queryset):
        return queryset.order_by("name", "id")

    @extend_schema(
        responses={201: ApiKeyWithSecretSerializer},
        examples=[
            OpenApiExample(
                "The HR system",
                value={"name": "HR system", "scopes": ["subjects:read", "subjects:write"]},
                request_only=True,
            )
        ],
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, text = api_keys.api_key_create(company=self.company, actor=self.actor, **serializer.validated_data)
        api_key.key = text
        return Response(ApiKeyWithSecretSerializer(api_key).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = api_keys.api_key_update(
            company=self.company, actor=self.actor, api_key=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=None, responses=ApiKeySerializer, summary="Revoke the key: it stops working at once")
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        api_key = api_keys.api_key_revoke(company=self.company, actor=self.actor, api_key=self.get_object())
        return Response(ApiKeySerializer(api_key).data)
