"""The retention purge over the API: what the next run will remove, and "purge now".

(The access export and erasure are in `privacy.api`.)"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import JobSerializer
from accounts.models import RETENTION_FIELDS
from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.api.permissions import CanManageUsers
from kangaroo.api.viewsets import request_company
from privacy import services
from privacy.selectors import RULE_WINDOWS, RULES, purge_last_run, purge_preview


class PurgeRuleSerializer(serializers.Serializer):
    rule = serializers.ChoiceField(choices=list(RULES), help_text="The rule's stable code.")
    label = serializers.CharField(help_text="What the rule removes, in the requester's language.")
    window = serializers.ChoiceField(choices=list(RETENTION_FIELDS), help_text="The company setting it follows.")
    window_days = serializers.IntegerField()
    count = serializers.IntegerField(help_text="How many rows the purge would remove now.")


class PurgeRunSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    trigger = serializers.ChoiceField(choices=["schedule", "manual"])
    actor = serializers.CharField(help_text="Who asked for it; `system` for the schedule.")
    removed = serializers.DictField(child=serializers.IntegerField(), help_text="Rows removed per rule.")


class PurgePreviewSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    rules = PurgeRuleSerializer(many=True)
    last_run = PurgeRunSerializer(allow_null=True, help_text="The latest run that removed something or was asked for.")


def preview_data(company) -> dict:
    """The preview as the API and the admin page show it."""
    now = timezone.now()
    counts = purge_preview(company=company, now=now)
    last = purge_last_run(company=company)
    return {
        "as_of": now,
        "rules": [
            {
                "rule": rule,
                "label": str(label),
                "window": RULE_WINDOWS[rule],
                "window_days": getattr(company, RULE_WINDOWS[rule]),
                "count": counts[rule],
            }
            for rule, label in RULES.items()
        ],
        "last_run": None
        if last is None
        else {
            "at": last.created_at,
            "trigger": last.changes.get("trigger", "schedule"),
            "actor": last.actor_repr,
            "removed": last.changes.get("removed", {}),
        },
    }


class PurgePreviewView(APIView):
    permission_classes = [CanManageUsers]

    @extend_schema(
        tags=["privacy"],
        summary="What the next retention purge will remove",
        description="Per rule, how many rows are past the company's retention window now, counted by the same "
        "selectors the purge deletes by; and the latest run. Every role may read.",
        responses={200: PurgePreviewSerializer},
    )
    def get(self, request):
        return Response(PurgePreviewSerializer(preview_data(request_company(request))).data)


class PurgeView(APIView):
    permission_classes = [CanManageUsers]

    @extend_schema(
        tags=["privacy"],
        summary="Run the retention purge now (owners)",
        description="Deletes everything past the company's retention windows, as a job: follow it at "
        "/api/v1/jobs/{id}; its result is the preview's `last_run`. One at a time: while one is unfinished, "
        "another answers 409 `job_already_queued`.",
        request=None,
        responses={
            202: JobSerializer,
            403: OpenApiResponse(ErrorEnvelopeSerializer, description="Not an owner"),
            409: OpenApiResponse(ErrorEnvelopeSerializer, description="`job_already_queued`"),
        },
    )
    def post(self, request):
        job = services.purge_start(company=request_company(request), actor=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
