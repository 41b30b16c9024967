"""Typed readers for settings that come from the environment.

Each helper fails loudly (ImproperlyConfigured) on a value it cannot parse, so a typo in a
deployment stops the process at start-up instead of silently running with a default.
`envsecret` also reads `<NAME>_FILE`, the usual way container platforms hand over secrets.
"""

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def envfloat(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value != value or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be a number from {minimum} to {maximum}, got {raw!r}")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def envsecret(name: str, default: str | None = None) -> str | None:
    """The value of NAME, or the contents of the file named by NAME_FILE."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from None
    return os.environ.get(name, default)


_S3_QUERY = {"endpoint", "region", "access_key", "secret_key", "addressing_style"}
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def envstorage(name: str) -> dict[str, Any]:
    """The STORAGES entry for biometric files: the file system (MEDIA_ROOT) when NAME is unset,
    else the S3-compatible bucket of `s3://bucket/prefix?endpoint=https://...&region=...`.

    Query options: `endpoint` (any S3-compatible service; AWS when left out), `region`,
    `addressing_style` (`path` for most self-hosted services), and `access_key` with
    `secret_key`; without them boto3 finds credentials the standard way (AWS_ACCESS_KEY_ID
    and AWS_SECRET_ACCESS_KEY, a profile, an instance role). Objects are private: files are
    only ever served through the company-checked views, never by a bucket URL.
    """
    raw = envsecret(name)
    if not raw:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}

    def bad(why: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{name} must look like s3://bucket/prefix?endpoint=https://...: {why}")

    try:
        url = urlsplit(raw.strip())
    except ValueError as exc:
        raise bad(str(exc)) from None
    if url.scheme != "s3":
        raise bad(f"the scheme must be s3, got {url.scheme!r}")
    if "@" in url.netloc:
        raise bad("give credentials as access_key and secret_key in the query, or in the AWS variables")
    bucket = url.netloc
    if not _S3_BUCKET.fullmatch(bucket):
        raise bad(f"{bucket!r} is not a bucket name")
    try:
        pairs = parse_qsl(url.query, keep_blank_values=True, strict_parsing=bool(url.query))
    except ValueError:
        raise bad("the query cannot be parsed") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key not in _S3_QUERY:
            raise bad(f"unknown option {key!r} (known: {', '.join(sorted(_S3_QUERY))})")
        if key in query:
            raise bad(f"{key!r} is given twice")
        query[key] = value
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": url.path.strip("/"),
        "default_acl": None,  # the bucket's own (private) policy; no public-read objects
        "querystring_auth": True,  # never an unsigned URL, should one ever be made
        "file_overwrite": True,  # names are random: no existence check before each write
    }
    if "endpoint" in query:
        endpoint = urlsplit(query["endpoint"])
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
            raise bad(f"endpoint must be an http(s) URL, got {query['endpoint']!r}")
        options["endpoint_url"] = query["endpoint"]
    if "region" in query:
        options["region_name"] = query["region"]
    if "addressing_style" in query:
        if query["addressing_style"] not in ("path", "virtual", "auto"):
            raise bad("addressing_style must be path, virtual or auto")
        options["addressing_style"] = query["addressing_style"]
    if ("access_key" in query) != ("secret_key" in query):
        raise bad("access_key and secret_key go together")
    if "access_key" in query:
        options["access_key"] = query["access_key"]
        options["secret_key"] = query["secret_key"]
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
