"""The one error envelope of the API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from kangaroo import errors
from kangaroo.errors import ERROR_CODE_CHOICES, REGISTRY, ErrorCode, KangarooError

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


def envelope(code: str, message: Any, fields: dict | None = None, **extra: Any) -> dict:
    body = {"code": code, "message": str(message), "fields": fields or {}}
    body.update(extra)
    return {"error": body}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"a": {"b": ["msg"]}} -> {"a.b": ["msg"]}; list items get their index."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
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


def exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, KangarooError):
        return Response(envelope(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status)

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


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ERROR_CODE_CHOICES, help_text="Stable, machine-readable code.")
    message = serializers.CharField(help_text="Human-readable, in the request's language.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input field (dotted paths for nested input).",
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorBodySerializer()
