"""Camera addresses and greeting templates: what is accepted, and how a camera address is shown.

A camera address usually carries the camera's password (`rtsp://admin:secret@10.0.0.5/...`).
It is stored as given, because the box needs it to open the stream, but everything that
shows it to a person (API output, admin lists and forms, exports, the audit log) shows it
through `mask_camera_url`. A form or API client that sends the masked address back keeps
the stored password (`unmask_camera_url`), so editing the location of a screen never
requires retyping its camera password.
"""

from __future__ import annotations

import string
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from kangaroo import errors

CAMERA_URL_SCHEMES = ("rtsp", "rtsps", "http", "https")  # http(s): MJPEG cameras
PASSWORD_MASK = "***"
GREETING_PLACEHOLDERS = ("name", "company")


def validate_camera_url(value: str) -> None:
    invalid = ValidationError(errors.CAMERA_URL_INVALID.message, code=errors.CAMERA_URL_INVALID.code)
    if not value or any(ch.isspace() for ch in value):
        raise invalid
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  raises ValueError for a port that is not a number in range
    except ValueError:
        raise invalid from None
    if parts.scheme.lower() not in CAMERA_URL_SCHEMES or not parts.hostname:
        raise invalid


def _with_password(value: str, password: str | None) -> str:
    parts = urlsplit(value)
    host = parts.netloc.rpartition("@")[2]
    userinfo = parts.username or ""
    if password is not None:
        userinfo = f"{userinfo}:{password}"
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_camera_url(value: str) -> str:
    """`rtsp://user:secret@host/x` -> `rtsp://user:***@host/x`; no password, no change."""
    if not value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return PASSWORD_MASK  # unparseable: show nothing of it rather than a secret
    if parts.password is None:
        return value
    return _with_password(value, PASSWORD_MASK)


def unmask_camera_url(new: str, stored: str) -> str:
    """`new` with the stored password put back where the client sent the mask."""
    try:
        if urlsplit(new).password != PASSWORD_MASK:
            return new
        return _with_password(new, urlsplit(stored).password)
    except ValueError:
        return new  # validation reports it


def validate_greeting(value: str) -> None:
    """Only `{name}` and `{company}`; a typo like `{nmae}` would fail at every greeting."""
    invalid = ValidationError(errors.GREETING_TEMPLATE_INVALID.message, code=errors.GREETING_TEMPLATE_INVALID.code)
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError:  # an unmatched brace
        raise invalid from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in GREETING_PLACEHOLDERS or spec or conversion:
            raise invalid


DEFAULT_GREETINGS = {
    "employee": _("Welcome, {name}!"),
    # Says nothing of a host being told: nothing notifies one yet.
    "visitor": _("Welcome to {company}, {name}!"),
    "vip": _("Welcome, {name}! It is an honour to have you at {company}."),
}
