"""Usernames are unique within a company only, and a login names its company
(`username@company`), so choosing a username tells a company nothing about other
companies' users."""

import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from tests.conftest import answer_without_request_id
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Another-passphrase-2026"


def create_user(api, owner, username):
    return api(owner).post(
        "/api/v1/users", {"username": username, "role": "viewer", "password": NEW_PASSWORD}, format="json"
    )


def token_login(login_name, password=NEW_PASSWORD, ip="10.9.0.1"):
    return APIClient().post(
        "/api/v1/auth/token", {"username": login_name, "password": password}, format="json", REMOTE_ADDR=ip
    )


def shape(response):
    """An answer without the parts that name the new user."""
    body = dict(response.json())
    for key in ("id", "username", "login", "date_joined"):
        body.pop(key, None)
    return response.status_code, body


def test_a_username_used_in_another_company_answers_like_a_never_used_one(api, tenants):
    a, b = tenants
    elsewhere = create_user(api, b.owner, "A-ADMIN")  # a-admin exists in company A
    never_used = create_user(api, b.owner, "never-used-anywhere")
    assert elsewhere.status_code == never_used.status_code == 201
    assert shape(elsewhere) == shape(never_used)
    assert elsewhere.json()["login"] == "A-ADMIN@b"
    # Company A's user is untouched, and each signs in to their own company.
    assert User.objects.for_company(a.company).get(username="a-admin").check_password(PASSWORD)
    theirs = token_login("a-admin@a", PASSWORD)
    ours = token_login("A-ADMIN@b")
    assert theirs.status_code == ours.status_code == 200
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {ours.json()['access']}")
    assert me.get("/api/v1/me").json()["company"]["slug"] == "b"


def test_a_username_taken_in_the_same_company_is_refused_whatever_its_case(api, tenants):
    _, b = tenants
    response = create_user(api, b.owner, "B-Viewer")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"


def test_the_admin_add_form_checks_the_username_inside_the_company_only(admin_client_for, tenants):
    _, b = tenants
    client = admin_client_for(b.owner)

    def add(username):
        return client.post(
            "/admin/accounts/user/add/",
            {"username": username, "email": "", "role": "viewer", "usable_password": "false"},
        )

    assert add("a-owner").status_code == 302  # a-owner exists in company A only
    assert User.objects.for_company(b.company).filter(username="a-owner").exists()
    refused = add("b-admin")
    assert refused.status_code == 200
    assert "This username is already taken." in refused.content.decode()


def test_a_plain_username_does_not_sign_a_company_user_in(tenant_a):
    plain, unknown = token_login("a-owner", PASSWORD), token_login("nobody-at-all", PASSWORD)
    assert plain.status_code == unknown.status_code == 401
    assert answer_without_request_id(plain) == answer_without_request_id(unknown)
    assert token_login("a-owner@a", PASSWORD).status_code == 200
    assert token_login("A-Owner@A", PASSWORD).status_code == 200  # names and slugs ignore case


def test_platform_staff_sign_in_with_their_plain_username_even_if_a_company_uses_it(
    api, tenants, platform_admin, client
):
    _, b = tenants
    assert create_user(api, b.owner, "platform").status_code == 201
    page = client.post("/admin/login/", {"username": "platform", "password": "platform-pass-2026"})
    assert page.status_code == 302
    assert client.session["_auth_user_id"] == str(platform_admin.pk)
    assert token_login("platform@b").status_code == 200  # company B's own "platform"


def test_the_admin_login_takes_the_login_name(client, tenant_a):
    assert "Username@company" in client.get("/admin/login/").content.decode()
    page = client.post("/admin/login/", {"username": "a-owner@a", "password": PASSWORD})
    assert page.status_code == 302
    assert client.session["_auth_user_id"] == str(tenant_a.owner.pk)


def test_the_reset_mail_tells_the_login_name(client, tenant_a):
    client.post("/admin/password_reset/", {"email": tenant_a.owner.email})
    assert re.search(r"\ba-owner@a\b", mail.outbox[0].body)
