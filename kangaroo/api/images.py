"""Endpoints that take one image to look at (recognise, verify, search by face), not to
store: JSON with the image base64-encoded, or, at the same path with `/upload`, multipart
with the file as the part `image`.

Whatever is wrong with the image itself answers `photo_invalid` with a `reason`, like a photo
upload, so the image is handed to the service as sent (`image_request`); the other fields
are validated as usual. The body is bounded by the view's `max_body_bytes` for both content
types (`ImageBodyMixin`).

An operation declares its fields and its documentation once (`image_operation`), which gives
both bodies' serializers and both views' schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from kangaroo import errors
from kangaroo.api.parsers import BoundedMultiPartParser, JSONObject, JSONParser
from kangaroo.api.serializers import StrictFormSerializer
from kangaroo.errors import KangarooError
from kangaroo.images import base64_max_chars

IMAGE_HELP = (
    "A picture with one face: JPEG or PNG (WebP, HEIC, BMP and GIF are read too), at most "
    "FACE_SNAPSHOT_MAX_KB (2048) KiB. Anything that is not such an image answers `photo_invalid` "
    "with a `reason`; an image without a face answers `no_face`."
)


MAX_CHARS = base64_max_chars(settings.FACE_SNAPSHOT_MAX_BYTES)


@extend_schema_field({"type": "string", "format": "byte", "maxLength": MAX_CHARS})
class Base64ImageField(serializers.CharField):
    """An image as base64 text, in a JSON body (documentation: `image_request` reads it)."""


def image_request(request, fields_serializer) -> tuple[dict, object]:
    """The body's fields but `image`, validated with `fields_serializer`, and the image as
    sent (an uploaded file, base64 text, or whatever else a client put there)."""
    body = request.data
    if html.is_html_input(body):
        rest = {key: body[key] for key in body if key != "image"}
    elif isinstance(body, dict):
        rest = JSONObject((key, value) for key, value in body.items() if key != "image")
    else:
        raise KangarooError(errors.VALIDATION_ERROR, _("A JSON object is expected."))
    form = fields_serializer(data=rest)
    form.is_valid(raise_exception=True)
    return dict(form.validated_data), body.get("image")


class ImageBodyMixin:
    """A view whose body is one image and a few fields, as JSON with the image base64-encoded.
    Its `.../upload` twin (`ImageUploadMixin`) takes the same as multipart: one body type per
    operation, so the schema, and a client generated from it, says exactly what is sent."""

    parser_classes = [JSONParser]

    @property
    def max_body_bytes(self) -> int:
        return base64_max_chars(settings.FACE_SNAPSHOT_MAX_BYTES) + 4096


class ImageUploadMixin(ImageBodyMixin):
    """The same fields as multipart, the image as the file part `image`."""

    parser_classes = [BoundedMultiPartParser]


@dataclass(frozen=True)
class ImageOperation:
    """The two forms of one operation that takes an image: `json` and `upload` are the
    serializers of the bodies (documentation: the views read them with `image_request`),
    `json_schema` and `upload_schema` decorate the two views' `post`."""

    fields: type[serializers.Serializer]
    json: type[serializers.Serializer]
    upload: type[serializers.Serializer]
    json_schema: Any
    upload_schema: Any


def image_operation(
    name: str,
    fields: type[serializers.Serializer],
    *,
    what: str,
    path: str,
    summary: str,
    description: str,
    responses: dict,
    tags: list[str],
) -> ImageOperation:
    """An operation at `path` (JSON, the image base64-encoded) and `path/upload` (multipart),
    whose body is `fields` and `image`; `what` says what the body is, `summary` names the
    body's form where it has `{body}`.

    The serializers are named `<name>Serializer` and `<name>UploadSerializer`: the schema's
    component names, which generated clients are built on, come from them.
    """
    module = fields.__module__
    json_body = type(
        f"{name}Serializer",
        (fields,),
        {
            "__module__": module,
            "__doc__": f"{what}, the image base64-encoded in JSON.",
            "image": Base64ImageField(help_text=IMAGE_HELP + " Base64-encoded."),
        },
    )
    upload_body = type(
        f"{name}UploadSerializer",
        (StrictFormSerializer, fields),
        {
            "__module__": module,
            "__doc__": f"{what}, the image as the multipart part `image`.",
            "image": serializers.FileField(help_text=IMAGE_HELP),
        },
    )
    json_schema = extend_schema(
        tags=tags,
        request=json_body,
        responses=responses,
        summary=summary.format(body="base64 in JSON"),
        description=f"{description} The same as multipart: `{path}/upload`.",
    )
    upload_schema = extend_schema(
        tags=tags,
        request={"multipart/form-data": upload_body},
        responses=responses,
        summary=summary.format(body="a multipart file"),
        description=f"{description} The same with the image base64-encoded in JSON: `{path}`.",
    )
    return ImageOperation(fields, json_body, upload_body, json_schema, upload_schema)
