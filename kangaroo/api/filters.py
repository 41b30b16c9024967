"""Filter and field types shared by the API's list endpoints."""

from django import forms
from django_filters import rest_framework as filters

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
