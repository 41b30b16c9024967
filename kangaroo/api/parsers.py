"""The API's request parsers: every body is bounded in size and depth and holds no control
characters, before any view sees it.

- Size: a body larger than the view's `max_body_bytes` (by default Django's
  DATA_UPLOAD_MAX_MEMORY_SIZE) answers 413 `payload_too_large` with the limit, and is never
  read past the limit.
- Depth: JSON nested deeper than MAX_DEPTH answers 400 `parse_error` (Python's own parser
  would recurse until RecursionError).
- Text: NUL and the other control characters (tabs and line breaks excepted) and lone
  surrogates have no place in any text a person or a device sends; PostgreSQL refuses NUL
  outright. They answer 400 `validation_error` naming the field. A view whose items are
  answered one by one (the device event batch) sets `check_text = False` on its parser and
  checks each item with `text_problem` itself, so one bad item never rejects the others.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from kangaroo import errors
from kangaroo.errors import KangarooError

MAX_DEPTH = 32  # the deepest body the API takes is 3 levels; 32 leaves room, never a stack

# C0 controls but tab, line feed and carriage return; DEL; C1 controls; lone surrogates.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHARACTER_MESSAGE = _("Control characters (such as NUL) are not allowed.")


def text_problem(value: Any, prefix: str = "") -> str | None:
    """The dotted path of the first text (a key or a value) in `value` that holds a control
    character, or None. Walks iteratively (the depth is checked elsewhere), and checks a
    text where it finds it: a path is written only for a container to walk or a text found
    wrong, not for every value (this runs on every item of every event batch)."""
    search = CONTROL_CHARACTERS.search
    if isinstance(value, str):
        return (prefix or "non_field_errors") if search(value) else None
    stack = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in children:
            if (isinstance(key, str) and search(key)) or (isinstance(child, str) and search(child)):
                return f"{path}.{key}" if path else str(key)
            if isinstance(child, (dict, list)):
                stack.append((f"{path}.{key}" if path else str(key), child))
    return None


def refuse_control_characters(value: Any) -> None:
    path = text_problem(value)
    if path is not None:
        raise KangarooError(errors.VALIDATION_ERROR, fields={path: [str(CONTROL_CHARACTER_MESSAGE)]})


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def body_limit(parser_context: dict | None) -> int:
    view = (parser_context or {}).get("view")
    return getattr(view, "max_body_bytes", None) or settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def payload_too_large(limit: int) -> KangarooError:
    return KangarooError(errors.PAYLOAD_TOO_LARGE, extra={"limit": limit})


def read_body(stream, limit: int, content_length: int | None) -> bytes:
    """At most `limit` bytes of `stream`; more answers 413 without reading the rest."""
    if content_length is not None and content_length > limit:
        raise payload_too_large(limit)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise payload_too_large(limit)
    return body


def too_deep() -> KangarooError:
    return KangarooError(
        errors.PARSE_ERROR, _("The body is nested more than %(depth)d levels deep.") % {"depth": MAX_DEPTH}
    )


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JSONObject(dict):
    """A JSON object from a request body: serializers check its values' JSON types
    (kangaroo.api.serializers), which a form's text or a query string does not have."""


class JSONParser(parsers.BaseParser):
    """application/json, bounded (see the module docstring).

    Not a subclass of DRF's JSONParser on purpose: DRF hands those `request.body`, read
    whole under Django's one global limit; this one reads the stream itself, up to the view's
    own limit."""

    media_type = "application/json"
    renderer_class = parsers.JSONParser.renderer_class
    check_text = True

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context.get("request")
        length = None
        if request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0) or None
            except ValueError:
                length = None
        body = read_body(stream, body_limit(parser_context), length)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(body.decode(encoding), parse_constant=_refuse_constant, object_pairs_hook=JSONObject)
        except RecursionError:
            raise too_deep() from None
        except ValueError:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError() from None
        if _depth(data) > MAX_DEPTH:
            raise too_deep()
        if self.check_text:
            refuse_control_characters(data)
        return data


class ItemsJSONParser(JSONParser):
    """For views that check the text of each item themselves (and answer it per item)."""

    check_text = False


class MultiPartParser(parsers.MultiPartParser):
    """For the views that take files (photo uploads), and only those; their serializers read the
    parts as an object (kangaroo.api.serializers.FormObjectMixin)."""

    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        parts = {key: result.data.getlist(key) for key in result.data}
        refuse_control_characters({key: values[0] if len(values) == 1 else values for key, values in parts.items()})
        refuse_control_characters([upload.name for upload in result.files.values()])
        return result


class QueryTextMiddleware:
    """The query string of an API request follows the same rule as its body: no control
    characters in any parameter, names included (400 `validation_error` naming it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and request.META.get("QUERY_STRING"):
            from kangaroo.api.errors import envelope_response

            path = text_problem({key: request.GET.getlist(key) for key in request.GET})
            if path is not None:
                name = path.split(".", 1)[0]
                error = KangarooError(errors.VALIDATION_ERROR, fields={name: [str(CONTROL_CHARACTER_MESSAGE)]})
                return envelope_response(error)
        return self.get_response(request)


class BoundedMultiPartParser(MultiPartParser):
    """Multipart, for a view with its own `max_body_bytes` (an image endpoint of the device
    API): a larger body answers 413 `payload_too_large` before a byte of it is read."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        limit = body_limit(parser_context)
        if length > limit:
            raise payload_too_large(limit)
        return super().parse(stream, media_type, parser_context)
