"""No disclosure by default: faces (photos, snapshots, signed forms) are served only to those
with the "view biometrics" permission (owners and admins, not viewers), only of their own
company, and every viewing is audited, batched: at most one entry per viewer (or live-page
connection) and person per hour, so a page of thumbnails does not write a row each."""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import time
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditLog, Role
from events.live import live_image_url
from events.models import Event
from events.payload import without_faces
from kangaroo.media import MediaKind, media_save
from tests.events.conftest import event
from tests.events.live_client import as_admin, post_events, receive
from tests.factories import SubjectFactory, UnknownPersonFactory, UnknownSnapshotFactory, UserFactory
from tests.images import jpeg_bytes
from tests.subjects.test_consent_withdrawal import enrol, with_biometrics

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def an_hour_later():
    later = timezone.now() + datetime.timedelta(hours=1)
    with mock.patch("accounts.services.timezone.now", return_value=later):
        yield


def face_urls(tenant, door):
    subject, seen, _person, copy = with_biometrics(tenant, door)
    photo = subject.photos.first()
    return subject, [
        f"/api/v1/photos/{photo.pk}/image",
        f"/api/v1/photos/{photo.pk}/thumbnail",
        f"/api/v1/events/{seen[0]}/snapshot",
        f"/api/v1/unknown-snapshots/{copy.pk}/image",
    ]


def test_viewers_may_not_see_faces_and_other_companies_get_404(api, tenants, door_a):
    a, b = tenants
    _subject, urls = face_urls(a, door_a)
    for url in urls:
        assert api(a.admin).get(url).status_code == 200, url
        assert api(a.owner).get(url).status_code == 200, url
        refused = api(a.viewer).get(url)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "biometrics_not_permitted"), url
        assert api(b.owner).get(url).status_code == 404, url
        assert api(b.viewer).get(url).status_code == 404, url


def test_fifty_thumbnail_views_in_an_hour_write_one_audit_entry(api, tenants, door_a):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    photo = enrol(a, subject)
    other = enrol(a, SubjectFactory(company=a.company), seed=3)
    client = api(a.admin)
    for _ in range(50):
        assert client.get(f"/api/v1/photos/{photo.pk}/thumbnail").status_code == 200
    entries = AuditLog.objects.for_company(a.company).filter(action="biometrics.view")
    assert entries.count() == 1
    entry = entries.get()
    assert (entry.actor, entry.object_id, entry.changes) == (a.admin, str(subject.pk), {
        "kind": "photo", "subject": str(subject.pk),
    })  # fmt: skip
    # Another person, or another viewer, is another entry; the same ones again are not.
    client.get(f"/api/v1/photos/{other.pk}/image")
    api(a.owner).get(f"/api/v1/photos/{photo.pk}/thumbnail")
    client.get(f"/api/v1/photos/{photo.pk}/image")
    assert entries.count() == 3
    # An hour later (the window gone), the same viewer and person are recorded again.
    with an_hour_later():
        client.get(f"/api/v1/photos/{photo.pk}/thumbnail")
    assert entries.count() == 4


def test_a_live_pages_links_are_audited_once_per_connection_and_person(tenants, door_a):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    photo = enrol(a, subject)
    screen_page, other_screen = Client(REMOTE_ADDR="10.0.0.8"), Client(REMOTE_ADDR="10.0.0.9")
    url = live_image_url("photo", photo.pk, a.company.pk)
    for _ in range(50):
        assert screen_page.get(url).status_code == 200
    entries = AuditLog.objects.for_company(a.company).filter(action="biometrics.view")
    assert [(e.actor_repr, e.object_id, e.ip_address) for e in entries] == [("live page", str(subject.pk), "10.0.0.8")]
    other_screen.get(url)
    assert entries.all().count() == 2


def test_a_consent_form_is_a_face_too(api, tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = SimpleUploadedFile("form.jpg", jpeg_bytes((200, 300)))
    consent = api(a.admin).post(
        f"/api/v1/subjects/{subject.pk}/consents/upload", {"method": "paper", "policy_version": "1", "evidence": form}
    )
    url = f"/api/v1/consents/{consent.json()['id']}/evidence"
    assert api(a.admin).get(url).status_code == 200
    assert api(a.viewer).get(url).status_code == 403
    assert api(b.owner).get(url).status_code == 404
    entry = AuditLog.objects.for_company(a.company).get(action="biometrics.view")
    assert entry.changes == {"kind": "consent_form", "subject": str(subject.pk)}


def test_a_stranger_snapshot_names_the_unknown_person_or_a_stranger(api, tenant_a, door_a):
    from tests.images import snapshot
    from tests.test_media import post_events as post_device_events

    seen = post_device_events(door_a, [event("s1", door_a.entrance, snapshot=snapshot())])[0]
    api(tenant_a.admin).get(f"/api/v1/events/{seen}/snapshot")
    person = UnknownPersonFactory(company=tenant_a.company)
    copy = UnknownSnapshotFactory(
        company=tenant_a.company,
        person=person,
        image=media_save(kind=MediaKind.SNAPSHOT, company_id=tenant_a.company.pk, content=jpeg_bytes()),
    )
    api(tenant_a.admin).get(f"/api/v1/unknown-snapshots/{copy.pk}/image")
    refs = AuditLog.objects.for_company(tenant_a.company).filter(action="biometrics.view").values_list("object_id")
    assert sorted(ref for (ref,) in refs) == ["stranger", f"unknown:{person.pk}"]


def test_a_card_without_faces_keeps_who_and_where():
    shown = {
        "id": 1,
        "snapshot_url": "/live/image/x",
        "subject": {"id": 2, "name": "林志明", "photo_url": "/live/image/y"},
        "screen": 3,
    }
    assert without_faces(shown) == {
        "id": 1, "snapshot_url": None, "subject": {"id": 2, "name": "林志明", "photo_url": None}, "screen": 3,
    }  # fmt: skip
    assert shown["snapshot_url"] == "/live/image/x"  # the shared message is not changed


def test_a_viewers_live_page_gets_no_face_links(asgi_server, client, tenant_a, door_a):
    viewer = UserFactory(company=tenant_a.company, role=Role.VIEWER, is_staff=True)
    subject = SubjectFactory(company=tenant_a.company, name="陳美玲")
    enrol(tenant_a, subject)
    snap = base64.b64encode(jpeg_bytes((200, 150))).decode()
    with as_admin(Client(), asgi_server, tenant_a.admin) as admins, as_admin(client, asgi_server, viewer) as viewers:
        receive(admins, "hello")
        receive(viewers, "hello")
        post_events(asgi_server, door_a.box_key, [event("face1", door_a.entrance, subject, snapshot=snap)])
        [theirs] = receive(viewers, "events")["events"]
        [admin_card] = receive(admins, "events")["events"]
    assert admin_card["snapshot_url"] and admin_card["subject"]["photo_url"]
    assert theirs["subject"]["name"] == "陳美玲"
    assert (theirs["snapshot_url"], theirs["subject"]["photo_url"]) == (None, None)
    assert Event.objects.for_company(tenant_a.company).get(pk=theirs["id"]).snapshot


def test_a_viewers_event_pages_link_no_snapshot(admin_client_for, tenant_a, door_a):
    from tests.images import snapshot
    from tests.test_media import post_events as post_device_events

    seen = post_device_events(door_a, [event("v1", door_a.entrance, snapshot=snapshot())])[0]
    for user, shown in ((tenant_a.viewer, False), (tenant_a.admin, True)):
        client = admin_client_for(user)
        for page in (
            "/admin/events/event/",
            f"/admin/events/event/{seen}/change/",
            f"/admin/events/event/{seen}/correct/",
        ):
            html = client.get(page).content.decode()
            assert (f"/api/v1/events/{seen}/snapshot" in html) is shown, (user.role, page)


def test_a_viewers_subject_pages_show_no_faces(admin_client_for, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    photo = enrol(tenant_a, subject)
    thumbnail = f"/api/v1/photos/{photo.pk}/thumbnail"
    pages = ("/admin/subjects/subject/", f"/admin/subjects/subject/{subject.pk}/change/", "/admin/subjects/photo/")
    for user, shown in ((tenant_a.viewer, False), (tenant_a.admin, True)):
        client = admin_client_for(user)
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, (user.role, page)
            assert (thumbnail in response.content.decode()) is shown, (user.role, page)
    # The viewer still reads who is enrolled, with a link to each record.
    listing = admin_client_for(tenant_a.viewer).get("/admin/subjects/subject/").content.decode()
    assert subject.name in listing and f"/admin/subjects/subject/{subject.pk}/change/" in listing


def test_a_viewers_unknown_people_pages_show_no_faces(admin_client_for, tenant_a):
    person = UnknownPersonFactory(company=tenant_a.company)
    copy = UnknownSnapshotFactory(
        company=tenant_a.company,
        person=person,
        image=media_save(kind=MediaKind.SNAPSHOT, company_id=tenant_a.company.pk, content=jpeg_bytes()),
    )
    image = f"/api/v1/unknown-snapshots/{copy.pk}/image"
    pages = ("/admin/events/unknownperson/", f"/admin/events/unknownperson/{person.pk}/change/")
    for user, shown in ((tenant_a.viewer, False), (tenant_a.admin, True)):
        for page in pages:
            response = admin_client_for(user).get(page)
            assert response.status_code == 200, (user.role, page)
            assert (image in response.content.decode()) is shown, (user.role, page)


def heard_for(socket, seconds: float) -> list[dict]:
    heard, until = [], time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        try:
            heard.append(json.loads(socket.recv(timeout=left)))
        except TimeoutError:
            break
    return heard


def test_a_welcome_display_greets_with_the_thumbnail_and_never_gets_a_snapshot(asgi_server, tenants, door_a, door_b):
    """A TV box is a device with no role: it shows the greeted person their own enrolment
    thumbnail and no camera snapshot, of them or of a stranger (README: Welcome displays)."""
    from websockets.sync.client import connect

    from tests.events.live_client import ws_url

    a, b = tenants
    subject = SubjectFactory(company=a.company, name="陳美玲")
    enrol(a, subject)
    enrol(b, SubjectFactory(company=b.company, name="陳美玲"))
    snap = base64.b64encode(jpeg_bytes((200, 150))).decode()
    post_events(asgi_server, door_a.box_key, [event("before", door_a.entrance, subject, snapshot=snap)])
    with connect(ws_url(asgi_server), additional_headers={"Origin": asgi_server}, open_timeout=10) as tv:
        tv.send(json.dumps({"type": "auth", "key": door_a.tv_key}))
        [recent] = receive(tv, "hello")["recent"]
        post_events(
            asgi_server,
            door_a.box_key,
            [event("face2", door_a.entrance, subject, snapshot=snap), event("who", door_a.entrance, snapshot=snap)],
        )
        pushed = receive(tv, "events")["events"]
        post_events(asgi_server, door_b.box_key, [event("b1", door_b.entrance, snapshot=snap)])
        heard = heard_for(tv, 1.0)
    assert not [m for m in heard if m["type"] == "events"], "another company's event reached the TV"
    greeted, stranger = pushed
    for card in (recent, greeted):
        assert card["subject"]["name"] == "陳美玲" and card["subject"]["photo_url"].startswith("/live/image/")
        assert card["snapshot_url"] is None
    assert (stranger["kind"], stranger["snapshot_url"]) == ("stranger", None)
    # The thumbnail opens (signed, short-lived) and its viewing is audited for the connection.
    assert Client().get(greeted["subject"]["photo_url"]).status_code == 200
    entry = AuditLog.objects.for_company(a.company).get(action="biometrics.view")
    assert (entry.actor_repr, entry.object_id) == ("live page", str(subject.pk))
    assert Event.objects.for_company(a.company).filter(kind="stranger").exclude(snapshot="").exists()


def test_a_viewers_dashboard_opens_without_face_links_and_an_admins_with_them(asgi_server, client, tenant_a, door_a):
    subject = SubjectFactory(company=tenant_a.company)
    enrol(tenant_a, subject)
    snap = base64.b64encode(jpeg_bytes((200, 150))).decode()
    post_events(asgi_server, door_a.box_key, [event("open1", door_a.entrance, subject, snapshot=snap)])
    viewer = UserFactory(company=tenant_a.company, role=Role.VIEWER, is_staff=True)
    for user, shown in ((viewer, False), (tenant_a.admin, True)):
        with as_admin(Client(), asgi_server, user) as page:
            [card] = receive(page, "hello")["recent"]
        assert bool(card["snapshot_url"]) is shown and bool(card["subject"]["photo_url"]) is shown, user.role
