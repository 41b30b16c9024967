"""OpenAPI: every operation documents the error envelope for the statuses it can answer, and
request schemas say what the parsers and strict serializers refuse (unknown fields, control
characters), so a client generated from the schema, or a fuzzer, sends what is accepted."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from kangaroo.api.disclosure import INCLUDE_IMAGES_PARAMETER, ImageLinksMixin
from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.api.filters import BLANK_IS_ABSENT, MAX_ID, IdFilter
from kangaroo.api.serializers import StrictSerializer

# What DRF's TimeField reads ("08:30", "08:30:00", "08:30:00.5") and writes ("08:30:00"):
# OpenAPI's `format: time` is RFC 3339's, which requires a UTC offset no working hour has.
TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?$"

# Text without the control characters kangaroo.api.parsers refuses (tab and line breaks allowed).
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"

# Escapes whose meaning differs between Python's patterns (Unicode) and ECMA-262's (ASCII).
PYTHON_ONLY_ESCAPES = ("\\w", "\\W", "\\d", "\\D", "\\b", "\\B")


def _plain_text(schema: dict) -> bool:
    return schema.get("type") == "string" and not ({"format", "enum", "pattern"} & set(schema))


def _model_field_allows_blank(field) -> bool:
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return model._meta.get_field(field.source).blank
    except Exception:  # not a model field (a method, a property)
        return False


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        method = self.method.upper()
        error = self._get_response_for_code(
            OpenApiResponse(ErrorEnvelopeSerializer, description="Error envelope"), "4XX"
        )
        extra = {}
        if self.get_auth():
            extra["401"] = error
        extra["403"] = error
        extra["400"] = error  # a bad body, or a bad query parameter on any method
        extra["404"] = error  # an id in the path or the body that is not the company's
        if method in ("POST", "PUT", "PATCH"):
            extra["409"] = error  # a conflict with stored data: a name already taken, a job already queued
            extra["413"] = error  # payload_too_large
            extra["415"] = error  # unsupported_media_type
        extra["429"] = error
        extra["503"] = self._get_response_for_code(
            OpenApiResponse(ErrorEnvelopeSerializer, description="service_unavailable: retry after Retry-After"),
            "503",
        )
        for status, body in extra.items():
            responses.setdefault(status, body)
        return responses

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        for prop in schema.get("properties", {}).values():
            if any(escape in prop.get("pattern", "") for escape in PYTHON_ONLY_ESCAPES):
                # A model field's validator written for Python's `re`, where \w and \d take
                # every script's letters and digits (a username may be 陳美玲); OpenAPI's patterns
                # are ECMA-262's, where they are ASCII only, so a client would refuse what the
                # API accepts and answers. The description says the rule; the server checks it.
                del prop["pattern"]
                if direction == "request" and _plain_text(prop):
                    prop["pattern"] = TEXT_PATTERN
            # drf-spectacular offers a blank text as a second branch, `oneOf`; a pattern that
            # takes "" too would make "" match both, which `oneOf` forbids: either will do.
            if prop.get("oneOf", [None])[-1] == {"type": "string", "maxLength": 0}:
                prop["anyOf"] = prop.pop("oneOf")
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False  # unknown fields answer `unknown_fields`
        if type(serializer).__doc__ is None:
            # drf-spectacular falls back on a base class's docstring (StrictSerializer's contract),
            # which says nothing about this object to a client's reader.
            schema.pop("description", None)
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if not isinstance(schema, dict):
            return schema
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
            if field.min_length is not None:
                schema["minItems"] = field.min_length
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            del schema["format"]
            schema["pattern"] = TIME_PATTERN
        elif direction == "request" and isinstance(field, serializers.CharField) and _plain_text(schema):
            schema["pattern"] = TEXT_PATTERN
        elif (
            isinstance(field, serializers.ChoiceField)
            and "" not in schema.get("enum", [""])
            and _model_field_allows_blank(field)
        ):
            # A read-only choice of a model field that may be blank answers "" (no value yet).
            schema["enum"] = [*schema["enum"], ""]
        return schema

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if isinstance(self.view, ImageLinksMixin) and self.view.answers_image_links():
            parameters = [*parameters, INCLUDE_IMAGES_PARAMETER]  # image links are opt-in
        return parameters

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.pop(BLANK_IS_ABSENT, False):
                parameter["allowEmptyValue"] = True  # `?department=` is no filter, not an error
        filters = getattr(getattr(self.view, "filterset_class", None), "base_filters", {})
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter.get("in") != "query":
                continue
            if isinstance(filters.get(parameter["name"]), IdFilter):
                schema.update(type="integer", minimum=1, maximum=MAX_ID)
            elif _plain_text(schema):
                schema["pattern"] = TEXT_PATTERN
        return parameters

    def _is_detail_path(self) -> bool:
        return "{" in self.path
