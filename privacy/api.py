"""A person's rights through the API: the access export and erasure."""

from __future__ import annotations

import tempfile

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from kangaroo import errors
from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.api.permissions import CanViewBiometrics
from kangaroo.api.serializers import StrictSerializer
from kangaroo.api.viewsets import request_company
from kangaroo.errors import KangarooError
from privacy.access import export_file_name, subject_access_export
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


def access_export_response(*, company, actor, subject) -> FileResponse:
    """The subject's access export as a download, built in a temporary file (deleted when
    the response is closed), so memory holds no more than a page of events."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it once sent
    try:
        subject_access_export(company=company, actor=actor, subject=subject, out=out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=export_file_name(subject), content_type="application/zip")


class SubjectAccessExportView(APIView):
    """Owners and admins (the archive holds the person's face photos and snapshots)."""

    model = Subject  # the object the route names (another company's answers 404)
    permission_classes = [CanViewBiometrics]

    @extend_schema(
        tags=["subjects"],
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            403: OpenApiResponse(ErrorEnvelopeSerializer, description="Viewers may not see biometric data"),
            404: OpenApiResponse(ErrorEnvelopeSerializer, description="No such subject"),
        },
        summary="A person's access export: everything held about the subject, as a ZIP",
        description=(
            "The right of access. A ZIP archive with `subject.json` (the record, its photos' details and the "
            "consent history), `photos/`, `consents/` (signed forms), `events.json` (every event about them), "
            "`snapshots/`, `attendance.json` (per day) and a `README.txt`. Times are ISO 8601 in the company's time "
            "zone, with their offset. Each export is recorded in the audit log (`subject.access_export`)."
        ),
    )
    def get(self, request, pk: int):
        subject = subject_or_404(request, pk)
        self.check_object_permissions(request, subject)
        return access_export_response(company=request_company(request), actor=request.user, subject=subject)
