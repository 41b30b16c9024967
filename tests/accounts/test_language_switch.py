"""The admin header's language switch saves the pick to the user's own setting."""

import pytest

from accounts.models import AuditLog

pytestmark = pytest.mark.django_db


def test_the_header_offers_both_languages_each_named_in_itself(client, tenant_a):
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="language-switch"' in page
    assert ">English</button>" in page and ">繁體中文</button>" in page


def test_picking_chinese_saves_it_and_every_page_after_is_chinese(client, tenant_a):
    user = tenant_a.viewer
    client.force_login(user)
    response = client.post("/admin/language/", {"language": "zh-hant", "next": "/admin/subjects/subject/?q=1"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/subjects/subject/?q=1"
    user.refresh_from_db()
    assert user.language == "zh-hant"
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="zh-hant"' in page
    assert AuditLog.objects.filter(action="user.update", object_id=str(user.pk)).exists()
    client.post("/admin/language/", {"language": "en", "next": "/admin/"})
    user.refresh_from_db()
    assert user.language == "en"
    assert 'lang="en"' in client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-Hant").content.decode()


def test_platform_staff_may_switch_too(client, platform_admin):
    client.force_login(platform_admin)
    assert client.post("/admin/language/", {"language": "zh-hant"})["Location"] == "/admin/"
    platform_admin.refresh_from_db()
    assert platform_admin.language == "zh-hant"


def test_another_sites_address_is_not_followed(client, tenant_a):
    client.force_login(tenant_a.viewer)
    response = client.post("/admin/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/admin/"


def test_an_unknown_language_is_refused_and_nothing_changes(client, tenant_a):
    client.force_login(tenant_a.viewer)
    assert client.post("/admin/language/", {"language": "klingon"}).status_code == 400
    tenant_a.viewer.refresh_from_db()
    assert tenant_a.viewer.language == ""


def test_signed_out_visitors_and_get_requests_change_nothing(client, tenant_a):
    assert client.post("/admin/language/", {"language": "zh-hant"}).status_code == 302  # to the sign-in page
    client.force_login(tenant_a.viewer)
    assert client.get("/admin/language/?language=zh-hant").status_code == 405
    tenant_a.viewer.refresh_from_db()
    assert tenant_a.viewer.language == ""


def test_the_favicon_is_served_by_the_app(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("kangaroo/favicon.svg")
