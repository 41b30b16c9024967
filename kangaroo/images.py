"""Turning whatever photo a phone or an HR folder holds into one safe, normalised JPEG.

Every upload is decoded by content (never by its name or Content-Type), refused before
decoding if its header announces more pixels than we accept (decompression bombs), fully
decoded (so a truncated file fails here, not later), turned upright by its EXIF
orientation, flattened to RGB on white (transparent PNGs), scaled down and re-encoded
without any metadata (no EXIF, no GPS, no ICC profile). Photos and event snapshots alike
pass through here before `kangaroo.media` stores them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pillow_heif
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

from kangaroo import errors
from kangaroo.errors import KangarooError

pillow_heif.register_heif_opener()

# The JPEG opener also reads MPO, the JPEG variant many phones write.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "BMP", "GIF")
THUMBNAIL_SIDE = 256


@dataclass(frozen=True)
class NormalisedImage:
    image: bytes
    thumbnail: bytes
    width: int
    height: int
    sha256: str


def base64_max_chars(limit: int) -> int:
    """The longest base64 text of `limit` bytes."""
    return 4 * -(-limit // 3)


def photo_invalid(reason: str, message) -> KangarooError:
    return KangarooError(errors.PHOTO_INVALID, message, fields={"image": [str(message)]}, extra={"reason": reason})


def _too_large(limit: int) -> KangarooError:
    if limit >= 2**20:
        return photo_invalid("too_large", _("The photo is larger than %(mb)d MB.") % {"mb": limit // 2**20})
    return photo_invalid("too_large", _("The photo is larger than %(kb)d KB.") % {"kb": limit // 2**10})


def _read_limited(upload, limit: int) -> bytes:
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise _too_large(limit)
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    if not data:
        raise photo_invalid("empty", _("The file is empty."))
    return data


def _too_many_pixels() -> KangarooError:
    return photo_invalid(
        "too_many_pixels",
        _("The image has more than %(mp)d megapixels.") % {"mp": settings.PHOTO_MAX_PIXELS // 1_000_000},
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of letting convert() clip to white.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def jpeg_of(image: Image.Image, quality: int = 90) -> bytes:
    """`image` (from `open_photo`) as a JPEG without metadata."""
    return _jpeg(image, quality)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)  # no exif=, no icc_profile=: metadata stays out
    return out.getvalue()


def _open_checked(data: bytes) -> Image.Image:
    """The image in `data`, its header read and its size checked, not yet decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise photo_invalid(
            "unsupported_format", _("The file is not a JPEG, PNG, WebP, HEIC, BMP or GIF image.")
        ) from None
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except (OSError, ValueError, SyntaxError):
        raise photo_invalid("unreadable", _("The image could not be read.")) from None
    width, height = image.size
    if width * height > settings.PHOTO_MAX_PIXELS:
        raise _too_many_pixels()
    return image


def photo_probe(data: bytes) -> tuple[int, int]:
    """The width and height of the photo in `data`, from its header only, or `photo_invalid`
    with the reason `normalise_photo` would give for a wrong format or size. A fast check of
    many files (a bulk upload's preview): a file damaged past its header fails only in
    `normalise_photo`."""
    if not data:
        raise photo_invalid("empty", _("The file is empty."))
    if len(data) > settings.PHOTO_MAX_BYTES:
        raise _too_large(settings.PHOTO_MAX_BYTES)
    return _open_checked(data).size


def open_photo(upload, *, max_bytes: int | None = None) -> Image.Image:
    """Validate an uploaded image (a file, or bytes) and decode it: upright, RGB, scaled down
    to PHOTO_MAX_SIDE; or raise `photo_invalid` with a reason. `max_bytes` defaults to
    PHOTO_MAX_BYTES. Nothing is stored: a face to recognise or search for needs no JPEG."""
    if isinstance(upload, (bytes, bytearray)):
        upload = io.BytesIO(upload)
    image = _open_checked(_read_limited(upload, max_bytes or settings.PHOTO_MAX_BYTES))
    try:
        image.seek(0)  # first frame of an animated GIF or WebP
        image.load()
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise photo_invalid("truncated", _("The image is damaged or incomplete.")) from None
    max_side = settings.PHOTO_MAX_SIDE
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def normalise_photo(upload) -> NormalisedImage:
    """Validate and normalise an uploaded photo, or raise `photo_invalid` with a reason."""
    image = open_photo(upload)
    encoded = _jpeg(image, quality=90)
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return NormalisedImage(
        image=encoded,
        thumbnail=_jpeg(thumb, quality=82),
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )
