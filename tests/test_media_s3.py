"""Media in S3-compatible object storage (MEDIA_STORAGE_URL), against a real S3 server:
moto's standalone server, started here on a loopback port, so nothing outside is needed.

Everything a web node does with biometric files goes through the bucket: uploads are
written there (nothing on the local disk), served only through the company-checked views
(never as a bucket URL), deleted with their subject, event or company.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from accounts.models import Company
from events.live import live_image_url
from events.models import Event
from kangaroo.env import envstorage
from kangaroo.media import MediaKind, media_save
from subjects.models import Photo
from tests.events.conftest import event
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes, snapshot
from tests.served import free_port
from tests.subjects.test_photos import files_in, upload

ACCESS = {"access_key": "kangaroo-test", "secret_key": "kangaroo-test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in its own process on a loopback port, for this module's tests."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to 30 s on a loaded machine
            if server.poll() is not None:
                pytest.fail(f"moto's S3 server exited with {server.returncode}")
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto's S3 server did not start")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass
class Bucket:
    client: object
    name: str

    def objects(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return sorted(item["Key"] for item in listed)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """A fresh bucket per test, made the default storage through MEDIA_STORAGE_URL's parser."""
    name = f"kangaroo-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS["access_key"],
        aws_secret_access_key=ACCESS["secret_key"],
    )
    client.create_bucket(Bucket=name)
    url = (
        f"s3://{name}/tenant-media?endpoint={s3_endpoint}&region=us-east-1&addressing_style=path"
        f"&access_key={ACCESS['access_key']}&secret_key={ACCESS['secret_key']}"
    )
    monkeypatch.setenv("MEDIA_STORAGE_URL", url)
    settings.STORAGES = {**settings.STORAGES, "default": envstorage("MEDIA_STORAGE_URL")}
    assert default_storage.__class__.__name__ == "S3Storage"

    return Bucket(client, name)


def under(keys: list[str], kind: MediaKind, company: Company) -> list[str]:
    return [key for key in keys if key.startswith(f"tenant-media/{kind}/{company.pk}/")]


@pytest.mark.django_db
def test_photos_are_stored_in_the_bucket_and_served_only_through_the_company_check(
    api, tenants, bucket, media_root, admin_client_for
):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    response = upload(api(a.admin), subject, jpeg_bytes((300, 200)))
    assert response.status_code == 201, response.content
    photo = Photo.objects.for_company(a.company).get(pk=response.json()["id"])

    keys = bucket.objects()
    assert keys == sorted([f"tenant-media/{photo.image.name}", f"tenant-media/{photo.thumbnail.name}"]), (
        "both files under the prefix"
    )
    assert len(under(keys, MediaKind.PHOTO, a.company)) == len(under(keys, MediaKind.THUMBNAIL, a.company)) == 1
    assert files_in(media_root) == []  # nothing on the web node's own disk

    for kind, name in (("image", photo.image.name), ("thumbnail", photo.thumbnail.name)):
        path = f"/api/v1/photos/{photo.pk}/{kind}"
        served = api(a.admin).get(path)
        assert served.status_code == 200
        assert served["Content-Type"] == "image/jpeg"
        assert served.content == bucket.read(f"tenant-media/{name}")
        assert served["Cache-Control"] == "private, max-age=3600"
        assert api(b.owner).get(path).status_code == 404
        assert APIClient().get(path).status_code == 401
    # No answer hands out a bucket address, signed or not.
    listing = api(a.viewer).get(f"/api/v1/subjects/{subject.pk}").content.decode()
    admin_page = admin_client_for(a.admin).get(f"/admin/subjects/subject/{subject.pk}/change/")
    assert admin_page.status_code == 200
    for text in (response.content.decode(), listing, admin_page.content.decode()):
        assert "127.0.0.1:" not in text and "X-Amz" not in text and "tenant-media" not in text


@pytest.mark.django_db
def test_snapshots_live_in_the_bucket_and_go_with_their_subject(
    api, client, tenants, door_a, bucket, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    assert upload(api(a.admin), subject, jpeg_bytes()).status_code == 201
    posted = door_a.box_client().post(
        "/api/v1/device/events",
        {
            "events": [
                event("seen", door_a.entrance, subject, snapshot=snapshot()),
                event("stranger", door_a.entrance, snapshot=snapshot()),
            ]
        },
        format="json",
    )
    seen, stranger = (result["id"] for result in posted.json()["results"])
    assert len(under(bucket.objects(), MediaKind.SNAPSHOT, a.company)) == 2

    served = api(a.admin).get(f"/api/v1/events/{seen}/snapshot")
    assert served.status_code == 200
    name = Event.objects.for_company(a.company).get(pk=seen).snapshot.name
    assert served.content == bucket.read(f"tenant-media/{name}")
    assert api(b.owner).get(f"/api/v1/events/{seen}/snapshot").status_code == 404
    # The live pages' signed links read from the bucket too, for the company they name only.
    live = client.get(live_image_url("snapshot", seen, a.company.pk))
    assert live.status_code == 200 and live.content == served.content
    assert client.get(live_image_url("snapshot", seen, b.company.pk)).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        assert api(a.admin).delete(f"/api/v1/subjects/{subject.pk}").status_code == 204

    stranger_name = Event.objects.for_company(a.company).get(pk=stranger).snapshot.name
    assert bucket.objects() == [f"tenant-media/{stranger_name}"]
    assert api(a.admin).get(f"/api/v1/events/{seen}/snapshot").status_code == 404
    assert api(a.admin).get(f"/api/v1/events/{stranger}/snapshot").status_code == 200


@pytest.mark.django_db
def test_deleting_a_company_empties_its_part_of_the_bucket(
    api, tenants, door_a, door_b, bucket, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_INLINE = True  # the purge job runs at once (the embedded shape)
    a, b = tenants
    for tenant, door in ((a, door_a), (b, door_b)):
        subject = SubjectFactory(company=tenant.company)
        assert upload(api(tenant.admin), subject, jpeg_bytes()).status_code == 201
        body = door.box_client().post(
            "/api/v1/device/events", event("x", door.entrance, subject, snapshot=snapshot()), format="json"
        )
        assert body.status_code == 201
    media_save(kind=MediaKind.EVIDENCE, company_id=a.company.pk, content=jpeg_bytes())  # named by no row
    theirs = [key for key in bucket.objects() if key.split("/")[2] == str(b.company.pk)]
    assert len(theirs) == 3 and len(bucket.objects()) == 7

    with django_capture_on_commit_callbacks(execute=True):
        Company.objects.filter(pk=a.company.pk).delete()  # tenant: the company itself

    assert bucket.objects() == theirs


@pytest.mark.django_db
def test_credentials_come_from_the_standard_aws_variables(s3_endpoint, settings, monkeypatch, tenant_a):
    name = f"kangaroo-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ACCESS["secret_key"])
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    monkeypatch.setenv("MEDIA_STORAGE_URL", f"s3://{name}?endpoint={s3_endpoint}&region=us-east-1")
    storage = envstorage("MEDIA_STORAGE_URL")
    assert "access_key" not in storage["OPTIONS"]
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    stored = media_save(kind=MediaKind.PHOTO, company_id=tenant_a.company.pk, content=b"\xff\xd8jpeg")
    with default_storage.open(stored, "rb") as handle:
        assert handle.read() == b"\xff\xd8jpeg"
    assert stored.startswith(f"photos/{tenant_a.company.pk}/")


def test_the_url_becomes_a_private_s3_storage(monkeypatch):
    monkeypatch.setenv(
        "MEDIA_STORAGE_URL",
        "s3://kangaroo-media/prod/eu?endpoint=https://s3.example.com&region=eu-west-1&addressing_style=path",
    )
    storage = envstorage("MEDIA_STORAGE_URL")
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"] == {
        "bucket_name": "kangaroo-media",
        "location": "prod/eu",
        "endpoint_url": "https://s3.example.com",
        "region_name": "eu-west-1",
        "addressing_style": "path",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
    }


def test_unset_is_the_file_system(monkeypatch):
    monkeypatch.delenv("MEDIA_STORAGE_URL", raising=False)
    assert envstorage("MEDIA_STORAGE_URL") == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://kangaroo-media/prod", "scheme must be s3"),
        ("s3://", "not a bucket name"),
        ("s3://Kangaroo_Media", "not a bucket name"),
        ("s3://key:secret@kangaroo-media", "give credentials as access_key"),
        ("s3://kangaroo-media?endpoint=s3.example.com", "endpoint must be an http(s) URL"),
        ("s3://kangaroo-media?colour=red", "unknown option 'colour'"),
        ("s3://kangaroo-media?region=a&region=b", "'region' is given twice"),
        ("s3://kangaroo-media?access_key=only", "access_key and secret_key go together"),
        ("s3://kangaroo-media?addressing_style=sideways", "addressing_style must be"),
        ("s3://kangaroo-media?region", "the query cannot be parsed"),
    ],
)
def test_a_bad_url_names_the_variable(monkeypatch, url, why):
    monkeypatch.setenv("MEDIA_STORAGE_URL", url)
    with pytest.raises(ImproperlyConfigured) as raised:
        envstorage("MEDIA_STORAGE_URL")
    assert str(raised.value).startswith("MEDIA_STORAGE_URL must look like s3://")
    assert why in str(raised.value)
