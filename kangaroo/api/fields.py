"""Serializer fields the API shares.

Related ids in a request body follow one rule (README, "Related ids"): an id that does not
exist and an id of another company get the same answer, 400 `validation_error` with
"Not found." on the field. An id in the URL that is missing or another company's is a 404
`not_found` (the view set's scoped lookup); an id in the query string only filters within
the requester's company.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Model
from rest_framework import serializers

from kangaroo import errors
from kangaroo.api.viewsets import request_company

MAX_ID = 2**63 - 1


def _as_id(model: type[Model], data) -> int:
    if isinstance(data, bool):
        raise TypeError("a boolean is not an id")
    return model._meta.pk.to_python(data)


def company_rows(*, model: type[Model], company, ids: Iterable) -> dict[int, Model]:
    """The rows of `model` of `company` among `ids` (as request bodies give them), by id, in
    one query: a batch's items check their related ids against these (`CompanyRelatedField`
    with `{"company_rows": {model: rows}}` in its context) instead of one query per item."""
    wanted = set()
    for data in ids:
        try:
            pk = _as_id(model, data)
        except (TypeError, ValueError, OverflowError, ValidationError):
            continue
        if pk is not None and 0 < pk <= MAX_ID:
            wanted.add(pk)
    return {row.pk: row for row in model.objects.for_company(company).filter(pk__in=wanted)} if wanted else {}


class CompanyRelatedField(serializers.PrimaryKeyRelatedField):
    """The id of a row of the requester's company; any other id is "Not found."."""

    default_error_messages = {
        "does_not_exist": errors.NOT_FOUND.message,
        "incorrect_type": errors.NOT_FOUND.message,
    }

    def __init__(self, *, model: type[Model], **kwargs):
        self.model = model
        kwargs.setdefault("queryset", model.objects.none())  # the real scope needs the request
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.for_company(request_company(self.context["request"]))

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("incorrect_type", data_type=type(data).__name__)
        rows = self.context.get("company_rows", {}).get(self.model)
        try:
            if rows is not None:
                return rows[_as_id(self.model, data)]
            return self.get_queryset().get(pk=data)
        except (self.model.DoesNotExist, KeyError, TypeError, ValueError, OverflowError, ValidationError):
            self.fail("does_not_exist", pk_value=data)
