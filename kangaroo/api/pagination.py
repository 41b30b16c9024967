from django.utils.translation import gettext_lazy as _
from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError


class StrictPageSizeMixin:
    """`page_size` is a whole number from 1 to `max_page_size`; anything else is a
    validation error, not silently the default page size."""

    page_size_query_param = "page_size"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            message = _("Enter a whole number from 1 to %(max)d.") % {"max": self.max_page_size}
            raise ValidationError({self.page_size_query_param: [message]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == getattr(self, "page_query_param", None):
                parameter["schema"]["minimum"] = 1
        return parameters


class PageNumberPagination(StrictPageSizeMixin, pagination.PageNumberPagination):
    max_page_size = 500

    def get_page_number(self, request, paginator):
        # DRF reads a blank `page` as the first page and takes "last"; the schema says a whole
        # number from 1, so anything else is a validation error. A page past the end is 404.
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            message = serializers.IntegerField.default_error_messages["invalid"]
            raise ValidationError({self.page_query_param: [message]})
        return super().get_page_number(request, paginator)


class CursorPagination(StrictPageSizeMixin, pagination.CursorPagination):
    max_page_size = 1000
