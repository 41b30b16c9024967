"""Search by face: `POST /api/v1/faces/search` and the admin page, on real faces, inside the
searcher's company only."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from accounts.models import AuditLog
from tests.faces import portraits
from tests.faces.enrolled import enrol, snapshot_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/faces/search"
PAGE = "/admin/subjects/search-by-face/"


@pytest.fixture
def people(tenant_a):
    eileen = enrol(tenant_a, "Eileen Collins", portraits.astronaut(), job_number="E-0001")
    grace = enrol(tenant_a, "Grace Hopper", portraits.grace_hopper(), job_number="E-0002")
    return eileen, grace


def search(client, picture_bytes: bytes, query: str = "?include=images", **fields):
    upload = SimpleUploadedFile("face.jpg", picture_bytes, content_type="image/jpeg")
    return client.post(f"{URL}/upload{query}", {"image": upload, **fields}, format="multipart")


def test_the_right_subject_comes_first_with_a_thumbnail(tenant_a, people, api):
    eileen, grace = people
    client = api(tenant_a.admin)
    response = search(client, snapshot_of(portraits.astronaut()))
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [hit["subject"]["id"] for hit in results] == [eileen.pk, grace.pk]
    first, second = results
    assert first["match"] is True and second["match"] is False
    assert first["distance"] < tenant_a.company.face_match_threshold < second["distance"]
    assert first["photo_id"] == eileen.photos.get().pk
    assert first["subject"]["job_number"] == "E-0001" and first["subject"]["type"] == "employee"
    thumbnail = client.get(first["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/jpeg"
    # Not asked for, the thumbnail's link is not given.
    unasked = search(client, snapshot_of(portraits.astronaut()), query="").json()["results"]
    assert [(hit["photo_id"], hit["thumbnail_url"]) for hit in unasked] == [
        (first["photo_id"], None),
        (second["photo_id"], None),
    ]


def test_base64_json_and_a_limit(tenant_a, people, api):
    eileen, _ = people
    body = {"image": base64.b64encode(snapshot_of(portraits.astronaut())).decode(), "limit": 1}
    results = api(tenant_a.owner).post(URL, body, format="json").json()["results"]
    assert [hit["subject"]["id"] for hit in results] == [eileen.pk]


def test_every_search_is_audited_without_the_image(tenant_a, people, api):
    eileen, grace = people
    search(api(tenant_a.admin), snapshot_of(portraits.grace_hopper()))
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="subject.search_by_face")
    assert entry.actor_id == tenant_a.admin.pk
    assert [found[0] for found in entry.changes["found"]] == [grace.pk, eileen.pk]


def test_viewers_may_not_search_by_face(tenant_a, people, api):
    response = search(api(tenant_a.viewer), snapshot_of(portraits.astronaut()))
    assert response.status_code == 403


def test_only_the_searchers_company_is_searched(tenant_a, tenant_b, people, api):
    """The same person is enrolled in both companies: each admin finds only their own record."""
    in_b = enrol(tenant_b, "Eileen in B", portraits.astronaut(), job_number="B-0001")
    from_b = search(api(tenant_b.admin), snapshot_of(portraits.astronaut())).json()["results"]
    assert [hit["subject"]["id"] for hit in from_b] == [in_b.pk]
    from_a = search(api(tenant_a.admin), snapshot_of(portraits.astronaut())).json()["results"]
    assert in_b.pk not in [hit["subject"]["id"] for hit in from_a]
    # and B's photo is not A's to fetch
    assert api(tenant_a.admin).get(from_b[0]["thumbnail_url"]).status_code == 404


def test_no_face_and_bad_files_have_their_codes(tenant_a, people, api):
    client = api(tenant_a.admin)
    assert search(client, portraits.jpeg(portraits.landscape())).json()["error"]["code"] == "no_face"
    error = search(client, b"\x89PNG broken").json()["error"]
    assert (error["code"], error["reason"]) == ("photo_invalid", "unsupported_format")


# --- The admin page -------------------------------------------------------------------------


def post_page(client, picture_bytes: bytes, **headers):
    upload = SimpleUploadedFile("face.jpg", picture_bytes, content_type="image/jpeg")
    return client.post(PAGE, {"image": upload}, **headers)


def test_the_admin_page_shows_the_same_result_as_cards(tenant_a, people, admin_client_for):
    eileen, grace = people
    client = admin_client_for(tenant_a.admin)
    assert client.get(PAGE).status_code == 200
    page = post_page(client, snapshot_of(portraits.astronaut()))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index(f'data-subject-id="{eileen.pk}"') < html.index(f'data-subject-id="{grace.pk}"')
    assert "face-card face-card-match" in html and f"/api/v1/photos/{eileen.photos.get().pk}/thumbnail" in html
    assert "<script>" not in html and 'src="data:image/jpeg;base64,' in html  # the face searched for


def test_the_admin_page_is_translated_and_explains_a_bad_file(tenant_a, people, admin_client_for):
    client = admin_client_for(tenant_a.admin)
    page = post_page(client, portraits.jpeg(portraits.landscape()), HTTP_ACCEPT_LANGUAGE="zh-Hant")
    html = page.content.decode()
    with translation.override("zh-hant"):
        assert translation.gettext("Search by face") in html
        assert str(translation.gettext("No face was found in the photo.")) in html
    translation.deactivate()


def test_viewers_and_platform_staff_do_not_search_on_the_page(tenant_a, people, admin_client_for, platform_admin):
    assert admin_client_for(tenant_a.viewer).get(PAGE).status_code == 403
    staff = admin_client_for(platform_admin).get(PAGE)
    assert staff.status_code == 200 and b"face-search-form" not in staff.content


def test_the_subject_list_links_to_the_page_for_admins_only(tenant_a, admin_client_for):
    assert PAGE.encode() in admin_client_for(tenant_a.admin).get("/admin/subjects/subject/").content
    assert PAGE.encode() not in admin_client_for(tenant_a.viewer).get("/admin/subjects/subject/").content
