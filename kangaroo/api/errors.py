"""The one error envelope of the API: {"error": {"code", "message", "fields", "request_id"}}."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from kangaroo import errors
from kangaroo.errors import ERROR_CODE_CHOICES, REGISTRY, ErrorCode, KangarooError
from kangaroo.logs import current_request_id

logger = logging.getLogger(__name__)

# DRF's own exceptions, by class, for the ones that carry no code of ours.
_BY_CLASS: list[tuple[type[Exception], ErrorCode]] = [
    (exceptions.NotAuthenticated, errors.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, errors.TOKEN_INVALID),
    (exceptions.PermissionDenied, errors.PERMISSION_DENIED),
    (exceptions.NotFound, errors.NOT_FOUND),
    (exceptions.MethodNotAllowed, errors.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, errors.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, errors.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.ParseError, errors.PARSE_ERROR),
    (exceptions.Throttled, errors.THROTTLED),
    (exceptions.ValidationError, errors.VALIDATION_ERROR),
    (Http404, errors.NOT_FOUND),
    (DjangoPermissionDenied, errors.PERMISSION_DENIED),
]


def error_body(code: str, message: Any, fields: dict | None = None, **extra: Any) -> dict:
    """An error as the envelope holds it; also one item's error in a batch's answer."""
    body = {"code": code, "message": str(message), "fields": fields or {}}
    body.update(extra)
    return body


def envelope(code: str, message: Any, fields: dict | None = None, **extra: Any) -> dict:
    # The request's id, as the X-Request-ID header answers it: a client that reports the
    # error quotes it, and it finds the request's lines in the server's logs.
    return {"error": error_body(code, message, fields, **extra) | {"request_id": current_request_id() or ""}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"a": {"b": ["msg"]}} -> {"a.b": ["msg"]}; list items get their index; a nested
    object's own errors ({"a": {"non_field_errors": [...]}}) go under its path ("a")."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY and prefix:
                out.update(_flatten(value, prefix))  # a nested object's or list's own errors
            else:
                out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def _declared_codes(codes: Any):
    """Every code in a DRF get_codes() tree that is one of ours, depth first."""
    if isinstance(codes, dict):
        for value in codes.values():
            yield from _declared_codes(value)
    elif isinstance(codes, list):
        for value in codes:
            yield from _declared_codes(value)
    elif isinstance(codes, str) and codes in REGISTRY:
        yield REGISTRY[codes]


# The database is down, restarting, or every pooled connection is busy (a pool timeout is
# an OperationalError too): nothing is wrong with the request, so the client should retry.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def _known_failure(exc: BaseException) -> tuple[KangarooError, dict[str, str]] | None:
    """Exceptions from below the API that are not server bugs, as a coded error and the
    headers to send with it. One table for DRF views and for Django's own handlers."""
    if isinstance(exc, KangarooError):
        return exc, {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else {}
    if isinstance(exc, RequestDataTooBig):
        return KangarooError(errors.PAYLOAD_TOO_LARGE, extra={"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}), {}
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return KangarooError(errors.PARSE_ERROR), {}
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.warning("Database unavailable: %s", exc)
        return KangarooError(errors.SERVICE_UNAVAILABLE), {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return None


def exception_handler(exc: Exception, context: dict) -> Response:
    known = _known_failure(exc)
    if known is not None:
        error, headers = known
        return Response(
            envelope(error.code, error.message, error.fields, **error.extra), status=error.status, headers=headers
        )

    response = drf_exception_handler(exc, context)  # sets WWW-Authenticate, Retry-After
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response(envelope(errors.SERVER_ERROR.code, errors.SERVER_ERROR.message), status=500)

    error = next((e for cls, e in _BY_CLASS if isinstance(exc, cls)), errors.SERVER_ERROR)
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    declared = next(_declared_codes(codes), None)
    if declared is not None:
        error = declared

    fields: dict[str, list[str]] = {}
    message: Any = error.message
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        non_field = fields.pop("non_field_errors", None)
        if non_field:
            message = non_field[0]
        elif declared is not None:
            message = next(iter(next(iter(fields.values()), [])), error.message)
    elif isinstance(exc, exceptions.APIException) and declared is not None:
        message = exc.detail if isinstance(exc.detail, str) else error.message
    elif isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        message = f"{error.message} ({int(exc.wait)} s)"
    response.data = envelope(error.code, message, fields)
    return response


# --- Django's own error handlers, for what happens outside a DRF view under /api/ ------------
# (an unknown route, a failure in a middleware): the same envelope as everywhere in the API.


def is_api_request(request) -> bool:
    return request.path.startswith("/api/")


def envelope_response(error: KangarooError, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(envelope(error.code, error.message, error.fields, **error.extra), status=error.status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@csrf_exempt  # any method answers 404, never a CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Every path under /api/ that no route matches."""
    return envelope_response(KangarooError(errors.NOT_FOUND))


def handler400(request, exception=None):
    if is_api_request(request):
        known = _known_failure(exception) if exception is not None else None
        return envelope_response(*(known or (KangarooError(errors.PARSE_ERROR), {})))
    return defaults.bad_request(request, exception)


def handler404(request, exception=None):
    if is_api_request(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if is_api_request(request):
        failure = sys.exc_info()[1]  # Django calls this inside its `except` block
        known = _known_failure(failure) if failure is not None else None
        return envelope_response(*(known or (KangarooError(errors.SERVER_ERROR), {})))
    return defaults.server_error(request)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODE_CHOICES, help_text="Stable, machine-readable code.")
    message = serializers.CharField(help_text="Human-readable, in the request's language.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input field (dotted paths for nested input).",
    )
    request_id = serializers.CharField(
        help_text="The request's id, as the `X-Request-ID` answer header gives it: quote it when reporting an error."
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorBodySerializer()
