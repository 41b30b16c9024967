"""Serializer fields the API shares.

Related ids in a request body follow one rule (README, "Related ids"): an id that does not
exist and an id of another company get the same answer, 400 `validation_error` with
"Not found." on the field. An id in the URL that is missing or another company's is a 404
`not_found` (the view set's scoped lookup); an id in the query string only filters within
the requester's company.
"""

from __future__ import annotations

from django.db.models import Model
from rest_framework import serializers

from kangaroo import errors
from kangaroo.api.viewsets import request_company


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
        try:
            return self.get_queryset().get(pk=data)
        except (self.model.DoesNotExist, TypeError, ValueError, OverflowError):
            self.fail("does_not_exist", pk_value=data)
