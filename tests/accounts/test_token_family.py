"""Refresh token rotation with reuse detection: a spent refresh token presented again is
taken as theft, and every token of that login (its family) stops working."""

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditLog
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(username="a-owner@a"):
    response = APIClient().post("/api/v1/auth/token", {"username": username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    return response.json()


def refresh(token):
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")


def me(access):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/v1/me")


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(tenant_a):
    first = login()
    second = refresh(first["refresh"]).json()
    third = refresh(second["refresh"]).json()  # the family's live pair
    assert me(third["access"]).status_code == 200

    replay = refresh(first["refresh"])  # an old copy comes back: someone else has the family
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "token_invalid"

    # The family's live refresh token and its access token are dead too.
    assert refresh(third["refresh"]).json()["error"]["code"] == "token_invalid"
    assert me(third["access"]).json()["error"]["code"] == "token_invalid"
    assert me(second["access"]).json()["error"]["code"] == "token_invalid"
    assert AuditLog.objects.filter(action="user.token_reuse", object_id=str(tenant_a.owner.pk)).count() == 1


def test_the_thiefs_rotation_is_revoked_when_the_owner_comes_back(tenant_a):
    stolen = login()
    thief = refresh(stolen["refresh"]).json()  # the thief rotates first
    assert refresh(stolen["refresh"]).status_code == 401  # the owner's copy is now spent: reuse
    assert refresh(thief["refresh"]).status_code == 401
    assert me(thief["access"]).status_code == 401


def test_other_logins_of_the_same_user_keep_working(tenant_a):
    phone, laptop = login(), login()
    rotated = refresh(phone["refresh"]).json()
    assert refresh(phone["refresh"]).status_code == 401  # reuse in the phone's family
    assert me(rotated["access"]).status_code == 401

    assert me(laptop["access"]).status_code == 200
    laptop_next = refresh(laptop["refresh"])
    assert laptop_next.status_code == 200
    assert me(laptop_next.json()["access"]).status_code == 200


def test_other_users_families_are_untouched(tenant_a):
    owner, viewer = login("a-owner@a"), login("a-viewer@a")
    refresh(owner["refresh"])
    refresh(owner["refresh"])  # reuse
    assert me(viewer["access"]).status_code == 200
    assert refresh(viewer["refresh"]).status_code == 200


def test_a_forged_or_garbage_refresh_token_revokes_nothing(tenant_a):
    pair = login()
    assert refresh("garbage").status_code == 401
    assert refresh(pair["access"]).status_code == 401  # an access token is not a refresh token
    assert refresh(pair["refresh"] + "x").status_code == 401  # bad signature
    assert me(pair["access"]).status_code == 200
    assert refresh(pair["refresh"]).status_code == 200
    assert not AuditLog.objects.filter(action="user.token_reuse").exists()


def test_a_spent_token_after_logout_is_refused_without_a_reuse_alarm(tenant_a):
    pair = login()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert refresh(pair["refresh"]).status_code == 401
    assert not AuditLog.objects.filter(action="user.token_reuse").exists()
