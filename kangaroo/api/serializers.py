"""Serializer bases shared by every app's API."""

from __future__ import annotations

from rest_framework import serializers

from kangaroo import errors
from kangaroo.api.parsers import JSONObject


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (400 `unknown_fields`, naming them): a device with a
    typo in a field name must hear about it, not have its report silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                message = str(errors.UNKNOWN_FIELDS.message)
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail(message, code=errors.UNKNOWN_FIELDS.code)] for name in unknown}
                )
        return super().to_internal_value(data)


# --- JSON types ---------------------------------------------------------------------------------
# A JSON body carries its own types, and the schema documents them: a text field takes a string,
# a boolean true or false, a number a number. DRF would turn 0 into "0" and "true" into True;
# for a JSON body the API refuses that (400 `validation_error`, the field's own "invalid"
# message). A form or multipart body (photo uploads) has only text, so it keeps DRF's parsing,
# and so does a serializer reading a query string: only what JSONParser made is checked.
_JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], tuple[type, ...]]] = [
    (serializers.BooleanField, (bool,), ()),
    (serializers.CharField, (str,), ()),
    (serializers.IntegerField, (int,), (bool,)),
    (serializers.FloatField, (int, float), (bool,)),
]


def reads_json(field: serializers.Field) -> bool:
    """Whether `field` is validating (part of) an object parsed from a JSON request body."""
    data = getattr(field.root, "initial_data", None)
    if isinstance(data, list):
        return any(isinstance(item, JSONObject) for item in data)
    return isinstance(data, JSONObject)


def _strict(original, accepted: tuple[type, ...], refused: tuple[type, ...]):
    def to_internal_value(self, data):
        if (not isinstance(data, accepted) or isinstance(data, refused)) and reads_json(self):
            self.fail("invalid")
        return original(self, data)

    to_internal_value.strict_json = True
    return to_internal_value


def install_strict_json_types() -> None:
    """Called once when the app is ready; the one place the API's JSON types are enforced."""
    for cls, accepted, refused in _JSON_TYPES:
        if not getattr(cls.to_internal_value, "strict_json", False):
            cls.to_internal_value = _strict(cls.to_internal_value, accepted, refused)
