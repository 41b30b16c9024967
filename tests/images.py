"""Real image files of every kind a phone or an HR folder holds, made with Pillow."""

import base64
import io
import itertools

import pillow_heif
from PIL import Image, ImageDraw

pillow_heif.register_heif_opener()


def picture(size=(120, 90), mode="RGB", color=(200, 60, 40)) -> Image.Image:
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    draw.rectangle([size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2], fill=(20, 120, 220))
    return image.convert(mode) if mode != "RGB" else image


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


_variant = itertools.count()


def jpeg_bytes(size=(64, 64)) -> bytes:
    """A JPEG that differs from the previous call's, so one subject may have several (the
    same image twice for one subject is refused as `photo_duplicate`)."""
    n = next(_variant)
    return encode(picture(size, color=((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)), "JPEG")


def snapshot(size=(160, 120)) -> str:
    """A camera snapshot as a device sends it in an event: base64 JPEG."""
    return base64.b64encode(jpeg_bytes(size)).decode()
