"""OpenAPI: every operation documents the error envelope for the statuses it can answer."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse

from kangaroo.api.errors import ErrorEnvelopeSerializer


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
        if method in ("POST", "PUT", "PATCH"):
            extra["400"] = error
        if self._is_detail_path() or method in ("PUT", "PATCH", "DELETE"):
            extra["404"] = error
        extra["429"] = error
        for status, body in extra.items():
            responses.setdefault(status, body)
        return responses

    def _is_detail_path(self) -> bool:
        return "{" in self.path
