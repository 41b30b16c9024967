"""No log line carries a secret: a whole working day through the API and the admin, logged at
DEBUG, and neither a password, a token, a key, a reset link's token nor an image's bytes
appears in any line, in either shape."""

import base64
import logging
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from kangaroo.logs import JsonFormatter, PlainFormatter
from tests.devices.conftest import device_client
from tests.factories import PASSWORD, SubjectFactory
from tests.images import jpeg_bytes
from tests.log_capture import json_lines

WRONG_PASSWORD = "Not-the-password-4711"
NEW_PASSWORD = "Fresh-passphrase-for-the-log-test-93"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def image_traces(data: bytes) -> list[str]:
    """How an image's bytes would show in a line: base64 (a device's snapshot), hex, or the
    repr of a run of them."""
    middle = data[len(data) // 2 : len(data) // 2 + 24]
    return [base64.b64encode(data).decode()[8:72], middle.hex(), repr(middle)[2:-1]]


def working_day(client, tenant) -> list[str]:
    """Every way a secret enters the portal; returns the secrets in the order they appeared."""
    secrets = [PASSWORD, WRONG_PASSWORD, NEW_PASSWORD]
    login = f"{tenant.owner.username}@{tenant.company.slug}"

    # Logging in over the API: a wrong password, then the right one, then a refresh.
    wrong = APIClient().post("/api/v1/auth/token", {"username": login, "password": WRONG_PASSWORD}, format="json")
    assert wrong.status_code == 401
    tokens = APIClient().post("/api/v1/auth/token", {"username": login, "password": PASSWORD}, format="json").json()
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200, refreshed.content
    secrets += [tokens["access"], tokens["refresh"], refreshed.json()["access"], refreshed.json()["refresh"]]
    owner = bearer(refreshed.json()["access"])

    # A box and its screen, the box's key, a new one; the device uses it, with a snapshot.
    box = owner.post("/api/v1/boxes", {"name": "Lobby box"}, format="json").json()
    camera_password = "camera-password-5521"
    screen = owner.post(
        "/api/v1/screens",
        {
            "name": "Lobby in",
            "box": box["id"],
            "direction": "in",
            "camera_url": f"rtsp://cam:{camera_password}@10.0.0.5/",
        },
        format="json",
    )
    assert screen.status_code == 201, screen.content
    rotated = owner.post(f"/api/v1/boxes/{box['id']}/rotate-key").json()
    secrets += [box["api_key"], rotated["api_key"], camera_password]
    snapshot = jpeg_bytes((160, 120))
    device = device_client(rotated["api_key"])
    assert device.post("/api/v1/device/heartbeat", {}, format="json").status_code == 200
    posted = device.post(
        "/api/v1/device/events",
        {
            "events": [
                {
                    "uid": "log-test-1",
                    "happened_at": timezone.now().isoformat(),
                    "screen_id": screen.json()["id"],
                    "snapshot": base64.b64encode(snapshot).decode(),
                }
            ]
        },
        format="json",
    )
    assert posted.status_code in (200, 201), posted.content
    assert device_client(box["api_key"]).post("/api/v1/device/heartbeat", {}, format="json").status_code == 401

    # A photo uploaded; its enrolment job runs inline.
    subject = SubjectFactory(company=tenant.company)
    photo = jpeg_bytes((200, 200))
    uploaded = owner.post(f"/api/v1/subjects/{subject.pk}/photos", {"image": SimpleUploadedFile("me.jpg", photo)})
    assert uploaded.status_code == 201, uploaded.content

    # A company API key, used, and one that is not quite it.
    created = owner.post("/api/v1/api-keys", {"name": "HR", "scopes": ["subjects:read"]}, format="json").json()
    secrets.append(created["key"])
    assert bearer(created["key"]).get("/api/v1/subjects").status_code == 200
    assert bearer(created["key"][:-4] + "0000").get("/api/v1/subjects").status_code == 401

    # A password reset by e-mail: the link, the new password, the used link again.
    assert client.post("/admin/password_reset/", {"email": tenant.owner.email}).status_code == 302
    link = re.search(r"https?://testserver(/reset/\S+/)", mail.outbox[-1].body).group(1)
    secrets.append(link.rstrip("/").rsplit("/", 1)[1])  # the token; the first part is the user's id
    form = client.get(link, follow=True)
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert client.get(link).status_code == 200  # "this link is no longer valid"

    # The admin's login form: a wrong password, then the new one.
    client.post("/admin/login/", {"username": login, "password": WRONG_PASSWORD})
    assert client.post("/admin/login/", {"username": login, "password": NEW_PASSWORD}).status_code == 302
    return secrets + image_traces(snapshot) + image_traces(photo)


@pytest.mark.django_db(transaction=True)  # jobs run after their transaction commits, as in production
def test_no_log_line_of_a_working_day_carries_a_secret(client, tenant_a, settings, caplog):
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False
    caplog.set_level(logging.DEBUG)
    with json_lines() as captured:
        secrets = working_day(client, tenant_a)

    assert len(captured.access()) >= 20  # the day was logged, request by request
    plain, as_json = PlainFormatter(), JsonFormatter()
    written = "\n".join(
        [caplog.text, captured.text]
        + [plain.format(record) for record in caplog.records]
        + [as_json.format(record) for record in caplog.records]
    )
    for secret in secrets:
        assert secret and secret not in written, f"a log line carries {secret[:12]}..."
