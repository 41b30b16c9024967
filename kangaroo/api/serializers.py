"""Serializer bases shared by every app's API."""

from __future__ import annotations

from rest_framework import serializers

from kangaroo import errors


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
