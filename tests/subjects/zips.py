"""ZIP archives as HR teams make them (and as attackers do), built in memory."""

from __future__ import annotations

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.faces import portraits
from tests.images import encode, picture


def zip_bytes(files: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def uploaded(data: bytes, name: str = "photos.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")


def astronaut_jpeg() -> bytes:
    return portraits.jpeg(portraits.astronaut())


def hopper_png() -> bytes:
    return portraits.png(portraits.grace_hopper())


def other_jpeg(color=(30, 160, 90)) -> bytes:
    return encode(picture((200, 160), color=color), "JPEG")
