"""A person's rights through the API: erasure (and the access export)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from kangaroo import errors
from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.api.serializers import StrictSerializer
from kangaroo.api.viewsets import request_company
from kangaroo.errors import KangarooError
from privacy.erasure import REASON_MAX_LENGTH, subject_erase
from subjects.models import Subject


def subject_or_404(request, pk) -> Subject:
    """The requester's company's subject, or 404 (`not_found`) for a missing one and for
    another company's alike."""
    subject = Subject.objects.for_company(request_company(request)).filter(pk=pk).first()
    if subject is None:
        raise KangarooError(errors.NOT_FOUND)
    return subject


class EraseSerializer(StrictSerializer):
    # Checked by the service (required, trimmed), so every entry path gives the same answer.
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=REASON_MAX_LENGTH,
        help_text="Why the person is erased (their request, say). Required; kept in the audit log.",
    )


class ErasureSerializer(serializers.Serializer):
    subject = serializers.IntegerField(source="subject_id", help_text="The erased subject's former id.")
    photos_deleted = serializers.IntegerField(source="photos")
    consents_deleted = serializers.IntegerField(source="consents")
    events_anonymised = serializers.IntegerField()


class SubjectEraseView(APIView):
    """Admins and owners. One request: the subject and all their biometric data are gone."""

    model = Subject  # the object the route names (another company's answers 404)

    @extend_schema(
        tags=["subjects"],
        request=EraseSerializer,
        responses={
            200: ErasureSerializer,
            400: OpenApiResponse(ErrorEnvelopeSerializer, description="`validation_error` on `reason`"),
            404: OpenApiResponse(ErrorEnvelopeSerializer, description="No such subject"),
        },
        summary="Erase a subject: delete them with all their biometric data; their events stay, anonymous",
        description=(
            "The right to erasure. Deletes the subject with their photos and face embeddings, their consents and "
            "signed forms, their events' snapshots and unknown-person links (files once the erasure is committed); "
            "the recognition boxes forget the face through the gallery feed. The subject's events stay for "
            "attendance totals but lose name, job number and snapshot: they read `kind: recognized` with "
            "`subject: null`, shown as an erased person. `reason` is required and kept, with who erased whom and "
            "when, in the audit log (`subject.erase`). Cannot be undone."
        ),
    )
    def post(self, request, pk: int):
        subject = subject_or_404(request, pk)
        form = EraseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        erasure = subject_erase(
            company=request_company(request),
            actor=request.user,
            subject=subject,
            reason=form.validated_data.get("reason", ""),
        )
        return Response(ErasureSerializer(erasure).data)
