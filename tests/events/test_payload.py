"""One shape of an event for the REST API, the live pages and the hooks' listeners; every
image link in it, and on the admin's event pages, answers with the image when fetched."""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.request

from django.urls import set_script_prefix
from PIL import Image

from accounts.authentication import token_pair_for
from events.live import LiveLinks
from events.models import Event
from events.payload import API_LINKS, EventSerializer, event_payload, event_payloads
from tests.events.conftest import event
from tests.events.live_client import as_admin, post_events, receive
from tests.factories import EventFactory, PhotoFactory, SubjectFactory
from tests.images import jpeg_bytes

LINKS = {"snapshot_url", "photo_url"}


def without_links(payload: dict) -> dict:
    out = {key: value for key, value in payload.items() if key not in LINKS}
    if isinstance(payload.get("subject"), dict):
        out["subject"] = without_links(payload["subject"])
    return out


def is_jpeg(body: bytes) -> bool:
    return Image.open(io.BytesIO(body)).format == "JPEG"


def fetch(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:  # only the local test server
        return response.status, response.read()


def test_the_live_pages_and_the_api_show_an_event_in_the_same_shape(asgi_server, client, tenant_a, door_a):
    mei = SubjectFactory(company=tenant_a.company, name="陳美玲", job_number="E7")
    PhotoFactory(company=tenant_a.company, subject=mei)
    shot = base64.b64encode(jpeg_bytes((160, 120))).decode()
    with as_admin(client, asgi_server, tenant_a.admin) as socket:
        receive(socket, "hello")
        post_events(asgi_server, door_a.box_key, [event("same", door_a.entrance, mei, confidence=0.9, snapshot=shot)])
        [live] = receive(socket, "events")["events"]

    token = {"Authorization": f"Bearer {token_pair_for(tenant_a.admin)['access']}"}
    [listed] = json.loads(fetch(f"{asgi_server}/api/v1/events?include=images", token)[1])["results"]
    detail = json.loads(fetch(f"{asgi_server}/api/v1/events/{live['id']}?include=images", token)[1])

    assert listed == detail
    assert without_links(live) == without_links(detail)
    assert set(detail) == set(EventSerializer().fields)
    assert set(detail["subject"]) == set(EventSerializer().fields["subject"].fields)
    assert (detail["screen"], detail["device_name"], detail["subject"]["job_number"]) == (
        door_a.entrance.pk,
        door_a.box.name,
        "E7",
    )
    # Each audience's links answer with the image: the API's for a signed-in caller, the
    # live page's signed ones for anyone holding them.
    for url, headers in [
        (detail["snapshot_url"], token),
        (detail["subject"]["photo_url"], token),
        (live["snapshot_url"], {}),
        (live["subject"]["photo_url"], {}),
    ]:
        status, body = fetch(asgi_server + url, headers)
        assert status == 200 and is_jpeg(body), url


def test_an_event_without_subject_or_snapshot_has_no_links(api, tenant_a):
    stranger = EventFactory(company=tenant_a.company, subject=None, kind="stranger")
    row = api(tenant_a.viewer).get(f"/api/v1/events/{stranger.pk}").json()
    assert (row["subject"], row["snapshot_url"]) == (None, None)


def test_the_admin_event_page_links_a_snapshot_that_opens(client, tenants, door_a):
    a, b = tenants
    body = door_a.box_client().post(
        "/api/v1/device/events",
        {"events": [event("shot", door_a.entrance, snapshot=base64.b64encode(jpeg_bytes((90, 60))).decode())]},
        format="json",
    )
    stored = Event.objects.for_company(a.company).get(pk=body.json()["results"][0]["id"])
    client.force_login(a.admin)  # faces are for owners and admins ("view biometrics")
    for page in ("/admin/events/event/", f"/admin/events/event/{stored.pk}/change/"):
        html = client.get(page).content.decode()
        links = [href for href in re.findall(r'href="([^"]+)"', html) if "snapshot" in href or ".jpg" in href]
        assert links, page
        for href in links:
            response = client.get(href)
            assert response.status_code == 200, (page, href)
            assert is_jpeg(b"".join(response.streaming_content) if response.streaming else response.content)
    client.force_login(b.owner)
    assert client.get(f"/api/v1/events/{stored.pk}/snapshot").status_code == 404


def test_the_api_list_costs_the_same_queries_for_any_page(api, tenant_a, door_a, django_assert_num_queries):
    for _ in range(30):
        subject = SubjectFactory(company=tenant_a.company)
        PhotoFactory(company=tenant_a.company, subject=subject)
        EventFactory(company=tenant_a.company, subject=subject, screen=door_a.entrance)
    admin, viewer = api(tenant_a.admin), api(tenant_a.viewer)
    # 1. the signed-in user (token check), 2. the page of events, each with its subject's
    # first photo's id from a correlated subquery. Asking for the image links costs nothing more.
    with django_assert_num_queries(2):
        rows = admin.get("/api/v1/events?page_size=30&include=images").json()["results"]
    assert len(rows) == 30 and all(row["subject"]["photo_url"] for row in rows)
    with django_assert_num_queries(2):
        rows = viewer.get("/api/v1/events?page_size=30").json()["results"]
    assert len(rows) == 30 and not any(row["subject"]["photo_url"] for row in rows)


def test_links_follow_the_deployments_url_prefix(api, tenant_a, door_a):
    shot = base64.b64encode(jpeg_bytes((90, 60))).decode()
    body = door_a.box_client().post(
        "/api/v1/device/events", event("pre", door_a.entrance, snapshot=shot), format="json"
    )
    set_script_prefix("/kangaroo/")  # as the WSGI/ASGI handler does for a SCRIPT_NAME / root_path
    try:
        row = api(tenant_a.admin).get(f"/api/v1/events/{body.json()['id']}?include=images").json()
    finally:
        set_script_prefix("/")
    assert row["snapshot_url"] == f"/kangaroo/api/v1/events/{row['id']}/snapshot"


def test_a_batchs_shapes_are_each_events_own_shape(tenant_a, door_a):
    """`event_payloads` writes a shared received_at once; every shape is still the event's own,
    in the company's zone, with each audience's links."""
    from datetime import timedelta

    from django.utils import timezone

    mei = SubjectFactory(company=tenant_a.company, name="陳美玲")
    photo = PhotoFactory(company=tenant_a.company, subject=mei)
    now = timezone.now()
    events = [
        EventFactory(company=tenant_a.company, subject=mei, received_at=now, happened_at=now - timedelta(seconds=n))
        for n in range(3)
    ] + [EventFactory(company=tenant_a.company, subject=None, kind="stranger", received_at=now + timedelta(hours=1))]
    for stored in events:
        stored.first_photo_id = photo.pk if stored.subject_id else None
    with timezone.override("Asia/Taipei"):
        for links in (API_LINKS, LiveLinks()):
            batch = event_payloads(events, links=links)
            assert batch == [event_payload(stored, links=links) for stored in events]
        assert batch[0]["received_at"].endswith("+08:00") and batch[3]["received_at"] != batch[0]["received_at"]
        assert batch[0]["subject"]["photo_url"] and batch[3]["subject"] is None
