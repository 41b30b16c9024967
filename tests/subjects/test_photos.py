"""Photo upload: any photo a phone or an HR folder holds is accepted and normalised; any
bad file is refused with `photo_invalid`, fast, leaving neither a row nor a file."""

import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from subjects.models import Photo
from tests.factories import SubjectFactory
from tests.images import encode, jpeg_bytes, picture

pytestmark = pytest.mark.django_db


def upload(client, subject, data: bytes, name="photo.jpg"):
    return client.post(f"/api/v1/subjects/{subject.pk}/photos", {"image": SimpleUploadedFile(name, data)})


def files_in(media_root):
    return (
        sorted(p.relative_to(media_root) for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []
    )


def stored(photo: Photo) -> Image.Image:
    with photo.image.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
        return image


def exif_jpeg(orientation: int) -> bytes:
    image = picture((120, 60))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N", 2: (25.0, 2.0, 0.0), 3: "E", 4: (121.0, 33.0, 0.0)}
    exif[0x8825] = gps  # GPSInfo
    return encode(image, "JPEG", exif=exif.tobytes())


def png_16_bit() -> bytes:
    image = Image.new("I;16", (50, 40))
    image.putdata([40000] * (50 * 40))
    return encode(image, "PNG")


def animated_gif() -> bytes:
    frames = [picture((40, 40), color=(255, 0, 0)), picture((40, 40), color=(0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def palette_with_transparency() -> bytes:
    image = picture((40, 40)).convert("P")
    return encode(image, "PNG", transparency=0)


ACCEPTED = {
    "jpeg": lambda: jpeg_bytes((80, 60)),
    "png_rgba": lambda: encode(Image.new("RGBA", (60, 50), (10, 20, 30, 0)), "PNG"),
    "png_palette_transparent": palette_with_transparency,
    "png_16_bit": png_16_bit,
    "png_greyscale_alpha": lambda: encode(picture((30, 30), mode="LA"), "PNG"),
    "webp": lambda: encode(picture(), "WEBP"),
    "heic": lambda: encode(picture(), "HEIF"),
    "bmp": lambda: encode(picture(), "BMP"),
    "gif_animated": animated_gif,
    "jpeg_cmyk": lambda: encode(picture(mode="CMYK"), "JPEG"),
}


@pytest.mark.parametrize("kind", sorted(ACCEPTED))
def test_every_common_photo_format_is_accepted_and_stored_as_plain_jpeg(api, tenant_a, kind):
    subject = SubjectFactory(company=tenant_a.company)
    response = upload(api(tenant_a.admin), subject, ACCEPTED[kind](), name=f"x.{kind}")
    assert response.status_code == 201, response.json()
    photo = Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    image = stored(photo)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert not image.getexif() and "icc_profile" not in image.info
    assert photo.status == "pending" and (photo.width, photo.height) == image.size


def test_a_transparent_png_is_flattened_on_white(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    response = upload(api(tenant_a.admin), subject, encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "PNG"))
    pixel = stored(Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])).getpixel((10, 10))
    assert all(channel > 245 for channel in pixel)


def test_a_16_bit_png_keeps_its_grey_instead_of_turning_white(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    response = upload(api(tenant_a.admin), subject, png_16_bit())
    pixel = stored(Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])).getpixel((5, 5))
    assert 140 < pixel[0] < 170  # 40000 / 65535 of white


def test_the_exif_orientation_is_applied_and_all_metadata_including_gps_removed(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    response = upload(api(tenant_a.admin), subject, exif_jpeg(orientation=6))  # rotate 90° clockwise
    photo = Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    image = stored(photo)
    assert image.size == (60, 120)
    assert not image.getexif()
    with photo.image.open("rb") as handle:
        raw = handle.read()
    assert b"PhoneMaker" not in raw and b"Exif" not in raw


def test_a_large_photo_is_scaled_down_and_gets_a_thumbnail(api, tenant_a, settings):
    settings.PHOTO_MAX_SIDE = 400
    subject = SubjectFactory(company=tenant_a.company)
    response = upload(api(tenant_a.admin), subject, jpeg_bytes((1200, 800)))
    photo = Photo.objects.for_company(tenant_a.company).get(pk=response.json()["id"])
    assert (photo.width, photo.height) == (400, 267)
    with photo.thumbnail.open("rb") as handle:
        assert max(Image.open(handle).size) == 256


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height`, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")
    )


REFUSED = {
    "not_an_image": (lambda: b"just some text, not a picture", "unsupported_format"),
    "pdf_named_jpg": (lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "unsupported_format"),
    "tiff_is_not_accepted": (lambda: encode(picture(), "TIFF"), "unsupported_format"),
    "truncated_jpeg": (lambda: (lambda data: data[: len(data) // 2])(jpeg_bytes((400, 300))), "truncated"),
    "empty_file": (lambda: b"", "empty"),
    "decompression_bomb": (lambda: png_header_only(30000, 30000), "too_many_pixels"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_bad_file_is_refused_with_its_reason_and_nothing_is_stored(api, tenant_a, media_root, kind):
    subject = SubjectFactory(company=tenant_a.company)
    make, reason = REFUSED[kind]
    response = upload(api(tenant_a.admin), subject, make())
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["reason"]) == ("photo_invalid", reason)
    assert error["fields"]["image"]
    assert not Photo.objects.for_company(tenant_a.company).exists()
    assert files_in(media_root) == []


def test_a_file_over_the_size_limit_is_refused_before_decoding(api, tenant_a, media_root, settings):
    settings.PHOTO_MAX_BYTES = 50_000
    subject = SubjectFactory(company=tenant_a.company)
    response = upload(api(tenant_a.admin), subject, b"\xff\xd8" + b"\0" * 60_000)
    assert response.json()["error"]["reason"] == "too_large"
    assert files_in(media_root) == []


def test_an_upload_without_a_file_is_refused(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    response = api(tenant_a.admin).post(f"/api/v1/subjects/{subject.pk}/photos", {}, format="multipart")
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["reason"]) == ("photo_invalid", "missing")


def test_a_subject_has_at_most_five_photos(api, tenant_a, media_root):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    for _ in range(5):
        assert upload(client, subject, jpeg_bytes()).status_code == 201
    before = files_in(media_root)
    response = upload(client, subject, jpeg_bytes())
    assert response.json()["error"]["code"] == "subject_photo_limit"
    assert files_in(media_root) == before


def test_photos_are_served_only_to_their_company(api, tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    photo_id = upload(api(a.admin), subject, jpeg_bytes()).json()["id"]
    for path in (f"/api/v1/photos/{photo_id}/image", f"/api/v1/photos/{photo_id}/thumbnail"):
        mine = api(a.admin).get(path)
        assert mine.status_code == 200 and mine["Content-Type"] == "image/jpeg"
        assert mine.content[:2] == b"\xff\xd8"
        assert api(b.owner).get(path).status_code == 404
        from rest_framework.test import APIClient

        assert APIClient().get(path).status_code == 401


def test_media_files_have_no_public_url(client, api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    photo_id = upload(api(tenant_a.admin), subject, jpeg_bytes()).json()["id"]
    name = Photo.objects.for_company(tenant_a.company).get(pk=photo_id).image.name
    for prefix in ("/media/", "/"):
        assert client.get(prefix + name).status_code == 404


def test_deleting_a_photo_removes_its_files_after_commit(api, tenant_a, media_root, django_capture_on_commit_callbacks):
    subject = SubjectFactory(company=tenant_a.company)
    photo_id = upload(api(tenant_a.admin), subject, jpeg_bytes()).json()["id"]
    assert len(files_in(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert api(tenant_a.admin).delete(f"/api/v1/photos/{photo_id}").status_code == 204
    assert files_in(media_root) == []


def test_deleting_a_subject_removes_all_its_photo_files(api, tenant_a, media_root, django_capture_on_commit_callbacks):
    subject = SubjectFactory(company=tenant_a.company)
    client = api(tenant_a.admin)
    for _ in range(3):
        upload(client, subject, jpeg_bytes())
    assert len(files_in(media_root)) == 6
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/v1/subjects/{subject.pk}").status_code == 204
    assert files_in(media_root) == []
    assert not Photo.objects.for_company(tenant_a.company).exists()


def test_a_viewer_cannot_upload(api, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    assert upload(api(tenant_a.viewer), subject, jpeg_bytes()).status_code == 403
