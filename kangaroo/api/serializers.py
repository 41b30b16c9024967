"""Serializer bases shared by every app's API."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.utils import html

from kangaroo import errors
from kangaroo.api.parsers import JSONObject


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not take (400 `unknown_fields`, naming them; a read-only field
    is not taken): a device with a typo in a field name must hear about it, not have its report
    silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - {name for name, field in self.fields.items() if not field.read_only})
            if unknown:
                message = str(errors.UNKNOWN_FIELDS.message)
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail(message, code=errors.UNKNOWN_FIELDS.code)] for name in unknown}
                )
        return super().to_internal_value(data)


class FormObjectMixin:
    """Reads a multipart body as the object its schema describes, the way a JSON body is read:
    each part is its field's value (the last one if repeated, all of them for a list field), a
    blank part is a blank text, refused where the field may not be blank, and a missing part is
    not given. DRF would read it as an HTML form instead: a blank optional field as "not given"
    and a missing boolean as false, which the schema does not say."""

    def to_internal_value(self, data):
        if html.is_html_input(data):
            many = (serializers.ListField, serializers.ManyRelatedField)
            data = {key: data.getlist(key) if isinstance(self.fields.get(key), many) else data[key] for key in data}
        return super().to_internal_value(data)


class StrictFormSerializer(FormObjectMixin, StrictSerializer):
    """A multipart body of known parts only: an unknown part answers `unknown_fields`, and the
    schema says so (`additionalProperties: false`)."""


# --- JSON types ---------------------------------------------------------------------------------
# A JSON body carries its own types, and the schema documents them: a text field takes a string,
# a boolean true or false, a number a number. DRF would turn 0 into "0" and "true" into True;
# for a JSON body the API refuses that (400 `validation_error`, the field's own "invalid"
# message). A multipart body (photo uploads) has only text, so it keeps DRF's parsing, and so
# does a serializer reading a query string: only what JSONParser made is checked.
_JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), (), "invalid"),
    (serializers.CharField, (str,), (), "invalid"),
    (serializers.IntegerField, (int,), (bool,), "invalid"),
    (serializers.FloatField, (int, float), (bool,), "invalid"),
    # DRF takes anything iterable as a list of ids, an object's keys included.
    (serializers.ManyRelatedField, (list,), (), "not_a_list"),
]


def reads_json(field: serializers.Field) -> bool:
    """Whether `field` is validating (part of) an object parsed from a JSON request body."""
    data = getattr(field.root, "initial_data", None)
    if isinstance(data, list):
        return any(isinstance(item, JSONObject) for item in data)
    return isinstance(data, JSONObject)


def _strict(original, accepted: tuple[type, ...], refused: tuple[type, ...], error: str):
    def to_internal_value(self, data):
        if (not isinstance(data, accepted) or isinstance(data, refused)) and reads_json(self):
            self.fail(error, input_type=type(data).__name__)
        return original(self, data)

    to_internal_value.strict_json = True
    return to_internal_value


def install_strict_json_types() -> None:
    """Called once when the app is ready; the one place the API's JSON types are enforced."""
    for cls, accepted, refused, error in _JSON_TYPES:
        if not getattr(cls.to_internal_value, "strict_json", False):
            cls.to_internal_value = _strict(cls.to_internal_value, accepted, refused, error)
