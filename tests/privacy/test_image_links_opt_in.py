"""No disclosure by default, in the API and the webhooks: an answer links to photos,
thumbnails, snapshots and signed forms only when the caller asks (`?include=images`) and may
see faces (owners, admins). Not asked, those fields are null for everyone; asked by a viewer
or an API key, 403 `biometrics_not_permitted`; another value, 400. (Webhooks:
tests/integrations/test_webhook_no_faces.py.)"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from integrations import api_keys
from subjects.models import Subject
from tests.events.conftest import event
from tests.factories import PhotoFactory, SubjectFactory, UnknownPersonFactory, UnknownSnapshotFactory
from tests.images import jpeg_bytes, snapshot
from tests.subjects.test_consent_withdrawal import with_biometrics
from tests.test_media import post_events as post_device_events

pytestmark = pytest.mark.django_db

IMAGE_FIELDS = {"image_url", "thumbnail_url", "snapshot_url", "photo_url", "evidence_url"}


def image_values(data) -> list:
    """Every value of an image field anywhere in an answer."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in IMAGE_FIELDS:
                found.append(value)
            else:
                found += image_values(value)
    elif isinstance(data, list):
        for item in data:
            found += image_values(item)
    return found


@pytest.fixture
def faces_of_a(api, tenants, door_a):
    """Company A's subject with photos, events with snapshots, an unknown person who kept a
    snapshot, and a signed consent form; the GET answers that show any of them."""
    a, _ = tenants
    subject, seen, person, _copy = with_biometrics(a, door_a)
    post_device_events(door_a, [event("stranger", door_a.entrance, snapshot=snapshot())])
    consent = api(a.admin).post(
        f"/api/v1/subjects/{subject.pk}/consents/upload",
        {"method": "paper", "policy_version": "1", "evidence": SimpleUploadedFile("form.jpg", jpeg_bytes((200, 300)))},
    )
    assert consent.status_code == 201, consent.content
    photo = subject.photos.first()
    return [
        "/api/v1/subjects",
        f"/api/v1/subjects/{subject.pk}",
        f"/api/v1/subjects/{subject.pk}/photos",
        f"/api/v1/photos/{photo.pk}",
        f"/api/v1/subjects/{subject.pk}/consents",
        f"/api/v1/consents/{consent.json()['id']}",
        "/api/v1/events",
        f"/api/v1/events/{seen[0]}",
        "/api/v1/events?kind=stranger",
        "/api/v1/unknown-people",
        f"/api/v1/unknown-people/{person.pk}",
    ]


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def test_no_answer_links_a_face_unless_asked(api, tenants, faces_of_a):
    a, _ = tenants
    for user in a.users():
        for url in faces_of_a:
            response = api(user).get(url)
            assert response.status_code == 200, (user.role, url)
            values = image_values(response.json())
            assert values and set(values) == {None}, (user.role, url, values)


def test_owners_and_admins_who_ask_get_links_that_open(api, tenants, faces_of_a):
    a, _ = tenants
    for user in (a.owner, a.admin):
        client = api(user)
        for url in faces_of_a:
            response = client.get(with_query(url, "include=images"))
            assert response.status_code == 200, (user.role, url)
            links = [value for value in image_values(response.json()) if value]
            assert links, (user.role, url)
            for link in links:
                served = client.get(link)
                assert (served.status_code, served["Content-Type"]) == (200, "image/jpeg"), (url, link)


def test_asking_without_the_permission_is_refused(api, tenants, faces_of_a):
    a, _ = tenants
    _key, text = api_keys.api_key_create(
        company=a.company, actor=a.owner, name="hr-sync", scopes=["subjects:read", "events:read"]
    )
    with_key = APIClient()
    with_key.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    asked = 0
    for client in (api(a.viewer), with_key):
        for url in faces_of_a:
            if client.get(url).status_code != 200:
                continue  # not the key's to read at all (its scopes)
            refused = client.get(with_query(url, "include=images"))
            assert refused.status_code == 403, url
            assert refused.json()["error"]["code"] == "biometrics_not_permitted", url
            asked += 1
    assert asked >= len(faces_of_a) + 5


def test_another_value_is_a_validation_error_and_writes_nothing(api, tenants):
    a, _ = tenants
    listed = api(a.admin).get("/api/v1/subjects?include=embeddings")
    assert listed.status_code == 400
    assert (listed.json()["error"]["code"], list(listed.json()["error"]["fields"])) == ("validation_error", ["include"])
    created = api(a.admin).post("/api/v1/subjects?include=faces", {"name": "林志明"}, format="json")
    assert created.status_code == 400
    assert not Subject.objects.for_company(a.company).exists()
    # The value is taken as written: padded, it is another value.
    assert api(a.admin).get("/api/v1/subjects?include=%20images").status_code == 400
    # A blank value is no question at all, as the schema says.
    assert api(a.admin).get("/api/v1/subjects?include=").status_code == 200


def test_a_write_answers_links_only_when_asked(api, tenants):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    upload = SimpleUploadedFile("me.jpg", jpeg_bytes((400, 400)))
    added = api(a.admin).post(f"/api/v1/subjects/{subject.pk}/photos", {"image": upload})
    assert added.status_code == 201, added.content
    assert (added.json()["image_url"], added.json()["thumbnail_url"]) == (None, None)
    upload = SimpleUploadedFile("me2.jpg", jpeg_bytes((420, 400)))
    added = api(a.admin).post(f"/api/v1/subjects/{subject.pk}/photos?include=images", {"image": upload})
    assert added.json()["thumbnail_url"] == f"/api/v1/photos/{added.json()['id']}/thumbnail"


def test_another_companys_owner_asking_sees_only_their_own(api, tenants, door_b, faces_of_a):
    _, b = tenants
    with_biometrics(b, door_b, name="王小明")
    for url in faces_of_a:
        response = api(b.owner).get(with_query(url, "include=images"))
        if "/api/v1/subjects/" in url or url.rstrip("0123456789") in (
            "/api/v1/photos/", "/api/v1/consents/", "/api/v1/events/", "/api/v1/unknown-people/",
        ):  # fmt: skip
            assert response.status_code == 404, url
            continue
        ids = json.dumps(response.json())
        assert "林志明" not in ids, url


def test_the_lists_cost_the_same_queries_asked_or_not(api, tenants):
    a, b = tenants
    for tenant in (a, b):
        for _ in range(20):
            PhotoFactory(company=tenant.company)
        for _ in range(5):
            person = UnknownPersonFactory(company=tenant.company)
            UnknownSnapshotFactory(company=tenant.company, person=person)
    expected = {
        # 1. the user (+company), 2. count, 3. page of subjects (+department, consent given at), 4. their photos
        "/api/v1/subjects?page_size=100": 4,
        # 1. the user, 2. count, 3. page of people, 4. their snapshots, 5. the screens that saw them
        "/api/v1/unknown-people?page_size=100": 5,
    }
    client = api(a.admin)
    for url, count in expected.items():
        for query in ("", "&include=images"):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url + query)
            assert response.status_code == 200
            assert len(queries) == count, (url + query, [q["sql"] for q in queries])
            assert bool(query) == all(image_values(response.json())), url + query


def test_the_photo_and_consent_lists_cost_the_same_queries_asked_or_not(api, tenants):
    a, b = tenants
    subjects = {}
    for tenant in (a, b):
        subjects[tenant.company.pk] = SubjectFactory(company=tenant.company)
        for _ in range(4):
            PhotoFactory(company=tenant.company, subject=subjects[tenant.company.pk])
    client = api(a.admin)
    for _ in range(3):
        assert (
            client.post(
                f"/api/v1/subjects/{subjects[a.company.pk].pk}/consents/upload",
                {"method": "paper", "policy_version": "1", "evidence": SimpleUploadedFile("f.jpg", jpeg_bytes())},
            ).status_code
            == 201
        )
    pk = subjects[a.company.pk].pk
    expected = {
        # 1. the user (+company), 2. the subject (+department, consent given at), 3. its photos
        # (prefetched by the subjects' scope for `usable_photos`), 4. its photos, in order
        f"/api/v1/subjects/{pk}/photos": 4,
        # 1. the user (+company), 2. the subject, 3. its photos (the scope's prefetch), 4. its
        # consents (+policy)
        f"/api/v1/subjects/{pk}/consents": 4,
    }
    for url, count in expected.items():
        for query in ("", "?include=images"):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url + query)
            assert response.status_code == 200
            assert len(queries) == count, (url + query, [q["sql"] for q in queries])
            values = image_values(response.json())
            # 4 photos with 2 links each; 3 signed forms (the factory's consent has none)
            assert sum(bool(v) for v in values) == (8 if "photos" in url else 3) * bool(query), url + query


def test_the_spreadsheet_exports_have_no_image_column(tenants, door_a):
    """Nothing to opt in to: neither export names a photo, snapshot or face, even for an owner."""
    from events.admin import EventResource
    from subjects.resources import EXPORT_COLUMNS, SubjectResource

    a, _ = tenants
    with_biometrics(a, door_a)
    post_device_events(door_a, [event("x1", door_a.entrance, snapshot=snapshot())])
    columns = [column for column, *_ in EXPORT_COLUMNS] + [column for column, _ in EventResource.COLUMNS]
    assert not [c for c in columns if any(word in c for word in ("photo", "snapshot", "image", "url", "embedding"))]
    for resource in (SubjectResource(company=a.company, actor=a.owner), EventResource(company=a.company)):
        exported = resource.export().csv
        assert exported.count("\n") > 1
        for word in ("/photos/", "/snapshot", "/thumbnail", "/live/image", "media/"):
            assert word not in exported, (type(resource).__name__, word)
