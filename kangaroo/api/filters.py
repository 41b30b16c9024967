"""Filter and field types shared by the API's list endpoints."""

from datetime import datetime, timedelta

from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters import fields as filter_fields
from django_filters import filters as base_filters
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError
from rest_framework.fields import BooleanField, CharField

# Real time zones lie between UTC-12:00 and UTC+14:00; PostgreSQL refuses an offset past
# ±15:59, Python takes up to ±23:59. A date and time with an offset outside ±14:00 is a typo.
MAX_UTC_OFFSET = timedelta(hours=14)
UTC_OFFSET_MESSAGE = _("The time zone offset must be between -14:00 and +14:00.")


def utc_offset_in_range(value: datetime) -> bool:
    offset = value.utcoffset()
    return offset is None or abs(offset) <= MAX_UTC_OFFSET


# Marks an OpenApiParameter (`extensions={BLANK_IS_ABSENT: True}`) whose blank value means "not
# given", for query strings built by forms; kangaroo.api.schema turns it into `allowEmptyValue: true`.
BLANK_IS_ABSENT = "x-blank-is-absent"

# The largest id a bigint primary key can hold: a larger number is bad input, not a query.
MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(filters.NumberFilter):
    """A filter by a related row's id. Any id in range is accepted, the requester's or not,
    so that another company's id answers like a missing one (no rows), never "invalid"."""

    field_class = IdField


class IsoDateTimeField(filter_fields.IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not utc_offset_in_range(value):
            raise forms.ValidationError(UTC_OFFSET_MESSAGE, code="invalid")
        return value


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 date and time whose offset is one a real time zone can have."""

    field_class = IsoDateTimeField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("help_text", "ISO 8601 date and time; its UTC offset between -14:00 and +14:00.")
        super().__init__(*args, **kwargs)


# --- strict query strings -----------------------------------------------------------------------
# A query parameter the schema types (a boolean, a date and time, an id, a choice) is either a
# valid value or refused with 400 `validation_error`: `?archived=yes` or `?until=` must not
# quietly list everything. Only free-text filters take an empty value (it matches anything).
BOOLEAN_VALUES = {"true": True, "false": False}


class FilterBackend(filters.DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            refuse_loose_values(filterset)
        return filterset


def refuse_loose_values(filterset) -> None:
    problems: dict[str, list] = {}
    for name, filter_ in filterset.filters.items():
        if name not in filterset.data:
            continue
        values = filterset.data.getlist(name) if hasattr(filterset.data, "getlist") else [filterset.data[name]]
        for value in values:
            if isinstance(filter_, base_filters.BooleanFilter):
                if value not in BOOLEAN_VALUES:
                    problems[name] = [BooleanField.default_error_messages["invalid"]]
            elif value == "" and not isinstance(filter_, base_filters.CharFilter):
                problems[name] = [CharField.default_error_messages["blank"]]
    if problems:
        raise ValidationError(problems)
