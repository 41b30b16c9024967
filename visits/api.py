"""Visits over the API: invite, list (by day, host, status), read, cancel, re-send the
invitation, check the visitor in and mark them left at reception. The same rules as the
admin: every role reads, owners and admins invite, cancel, re-send, check in and mark left
(`services.visit_may_invite`); another company's visit answers 404. People only:
a company API key is refused (`api_key_scope_missing`), since an invitation is sent in the
name of the person who made it.

The personal link is never in an answer: only its holder, the visitor, has it (from the
invitation e-mail, or from the admin's "show a new link to hand over").
"""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.api.fields import CompanyRelatedField
from kangaroo.api.filters import IdFilter
from kangaroo.api.serializers import StrictSerializer
from kangaroo.api.viewsets import TenantViewSet
from subjects.models import Subject
from visits import selectors, services
from visits.models import LANGUAGES, Visit, VisitStatus


class VisitSerializer(serializers.ModelSerializer):
    """A visit as the API answers it (and as webhooks carry it): no link, no token."""

    host_name = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField(
        help_text="`invited`; `photo_ready` (the visitor has a photo the doors recognise); `face_declined` "
        "(`face_declined_at`: the visitor chose no photo on their page, reception checks them in); `arrived` "
        "(`arrived_at`: first recognised at a door within the window, or checked in by reception; `arrived_via` "
        "says which); `left` (`left_at`: recognised at an exit after arriving, or marked by reception); `cancelled`."
    )

    class Meta:
        model = Visit
        fields = [
            "id", "visitor", "visitor_name", "visitor_email", "visitor_phone", "visitor_company", "purpose",
            "host", "host_name", "language", "starts_at", "ends_at", "status", "state", "arrived_at", "arrived_via",
            "left_at", "face_declined_at", "invitation_sent_at", "link_revoked_at", "invited_by", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "arrived_via": {
                "help_text": "How the arrival was recorded: `door` (recognised at a door) or `reception` (checked "
                "in by hand); blank before the visitor arrives."
            }
        }

    def get_host_name(self, visit) -> str | None:
        return visit.host.name if visit.host_id else None

    @extend_schema_field(serializers.ChoiceField(choices=selectors.VisitState.ALL))
    def get_state(self, visit) -> str:
        return selectors.visit_state(visit)


class VisitCreateSerializer(StrictSerializer):
    visitor_name = serializers.CharField(max_length=100)
    visitor_email = serializers.EmailField(
        max_length=254,
        required=False,
        allow_blank=True,
        default="",
        help_text="The company's visitor with this address (case aside) is invited again, with their photo and "
        "consent; an address an employee or VIP of the company holds answers 409 `visit_email_not_visitor`.",
    )
    visitor_phone = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    visitor_company = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    purpose = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    host = CompanyRelatedField(
        model=Subject, required=False, allow_null=True, default=None, help_text="An employee of the company."
    )
    language = serializers.ChoiceField(
        choices=LANGUAGES, required=False, default="en", help_text="Of the invitation and the visitor's page."
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    send_invitation = serializers.BooleanField(
        required=False, default=True, help_text="E-mail the invitation with the personal link (with an e-mail address)."
    )


class VisitFilter(filters.FilterSet):
    date = filters.DateFilter(
        method="on_date", help_text="Visits whose window meets this day, in the company's time zone (YYYY-MM-DD)."
    )
    host = IdFilter(field_name="host")
    status = filters.ChoiceFilter(choices=VisitStatus.choices)

    class Meta:
        model = Visit
        fields = ["date", "host", "status"]

    def on_date(self, queryset, name, value):
        start, end = selectors.company_day_bounds(self.request.user.company, value)
        return queryset.filter(starts_at__lt=end, ends_at__gt=start)


VISIT_EXAMPLE = {
    "visitor_name": "林怡君",
    "visitor_email": "yijun.lin@example.com",
    "visitor_company": "Acme Taiwan",
    "purpose": "Contract review",
    "host": 42,
    "language": "zh-hant",
    "starts_at": "2026-12-01T10:00:00+08:00",
    "ends_at": "2026-12-01T12:00:00+08:00",
}


def _reception_responses(conflicts: str) -> dict:
    """The answers of an action reception takes on a visit; `conflicts` names its 409 codes."""
    return {
        200: VisitSerializer,
        403: OpenApiResponse(ErrorEnvelopeSerializer, description="`permission_denied`: viewers only read"),
        404: OpenApiResponse(ErrorEnvelopeSerializer, description="`not_found`: no such visit in the company"),
        409: OpenApiResponse(ErrorEnvelopeSerializer, description=conflicts),
    }


@extend_schema(tags=["visits"])
class VisitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Visits: a visitor invited to see one of the company's people within a window."""

    model = Visit
    selector = staticmethod(selectors.visit_list)
    serializer_class = VisitSerializer
    filterset_class = VisitFilter

    def scope(self, queryset):
        return selectors.with_photo_ready(queryset).order_by("-starts_at", "-id")

    def _answer(self, visit: Visit, code: int = status.HTTP_200_OK) -> Response:
        return Response(VisitSerializer(self.get_queryset().get(pk=visit.pk)).data, status=code)

    def _act(self, service) -> Response:
        """Run a visit action's service on the visit in the URL, then answer with the visit as
        it now is (read again, so its state and photo readiness are current)."""
        visit = self.get_object()
        service(company=self.company, actor=self.actor, visit=visit)
        return self._answer(visit)

    @extend_schema(
        request=VisitCreateSerializer,
        responses={
            201: VisitSerializer,
            400: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="`validation_error`, `visit_window_invalid`, `visit_in_past`, `visit_contact_required`, "
                "`subject_host_invalid` (the host is not an employee)",
            ),
            403: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="`permission_denied`: viewers only read; `api_key_scope_missing`: people invite, "
                "not API keys",
            ),
            409: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="`visit_email_not_visitor`: an employee or VIP of the company has this e-mail address",
            ),
        },
        summary="Invite a visitor; the invitation goes to their e-mail address",
        description="The visitor at the doors is the company's visitor with this e-mail address (case aside) if "
        "there is one, else a new visitor: inviting the same person again, for another day or by another host, "
        "adds a visit to the same visitor, whose photo and consent still count (`state` `photo_ready` at once if "
        "the doors already recognise them). The visitor's name, and phone when one is given, become this "
        "invitation's; their window at the doors follows their next visit. Two invitations of one new address at "
        "the same moment also end as one visitor with two visits. An address that an employee or VIP of the "
        "company holds is refused (409 `visit_email_not_visitor`): an invitation never turns the company's own "
        "people into visitors. Only the company's own people are looked at: an address used in another company "
        "makes a new visitor here and is never shown.",
        examples=[OpenApiExample("A visitor for the afternoon", value=VISIT_EXAMPLE, request_only=True)],
    )
    def create(self, request, *args, **kwargs):
        form = VisitCreateSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        visit = services.visit_create(company=self.company, actor=self.actor, **form.validated_data)
        return self._answer(visit, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=VisitSerializer, summary="Cancel the visit: the doors and the link close")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(services.visit_cancel)

    @extend_schema(
        request=None,
        responses=VisitSerializer,
        summary="Send the invitation again, with a new link (the previous one stops working)",
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        return self._act(services.visit_invitation_resend)

    @extend_schema(
        request=None,
        responses=_reception_responses(
            "`visit_cancelled`; `visit_not_started` (the visit's day, in the company's time zone, has not come); "
            "`visit_ended`"
        ),
        summary="Check the visitor in at reception, now",
        description="Marks the visit arrived now, by reception (`arrived_via`: `reception`; audited as "
        "`visit.check_in`): `visit.arrived` goes to the webhooks and the host gets the arrival e-mail, each once "
        "per visit. A visit already arrived (at a door, or checked in before) answers as it is, unchanged.",
    )
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request, pk=None):
        return self._act(services.visit_check_in)

    @extend_schema(
        request=None,
        responses=_reception_responses(
            "`visit_cancelled`; `visit_not_arrived` (neither a door nor reception has seen the visitor arrive: "
            "check them in first); `visit_left_before_arrival` (the recorded arrival is not before now, as when a "
            "door's clock runs ahead)"
        ),
        summary="Mark the visitor as left, now",
        description="Marks the visit left now, by reception (audited as `visit.mark_left`): `visit.left` goes to "
        "the webhooks once. A visit already left answers as it is, unchanged.",
    )
    @action(detail=True, methods=["post"], url_path="mark-left")
    def mark_left(self, request, pk=None):
        return self._act(services.visit_mark_left)
