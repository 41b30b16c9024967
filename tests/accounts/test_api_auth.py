"""Logging in over the API, token lifetimes and revocation, throttled guessing."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.authentication import token_pair_for
from tests.conftest import answer_without_request_id
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(username, password=PASSWORD, client=None, ip="10.0.0.1"):
    client = client or APIClient()
    return client.post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def bearer(access):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def error_code(response):
    return response.json()["error"]["code"]


def test_it_issues_a_token_pair_that_opens_the_api(tenant_a):
    response = login("a-owner@a")
    assert response.status_code == 200
    me = bearer(response.json()["access"]).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["username"] == "a-owner"
    assert me.json()["login"] == "a-owner@a"
    assert me.json()["company"]["slug"] == "a"


def test_a_wrong_password_is_401_login_failed(tenant_a):
    response = login("a-owner@a", "nope")
    assert response.status_code == 401
    assert error_code(response) == "login_failed"


def test_an_unknown_username_answers_like_a_wrong_password(tenant_a):
    unknown, wrong = login("nobody", "nope"), login("a-owner@a", "nope")
    assert unknown.status_code == wrong.status_code == 401
    assert answer_without_request_id(unknown) == answer_without_request_id(wrong)


def test_repeated_failures_lock_the_guessing_address_for_that_username_even_for_the_right_password(tenant_a, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert login("a-owner@a", "wrong", ip="10.0.1.1").status_code == 401
    locked = login("a-owner@a", ip="10.0.1.1")
    assert locked.status_code == 429
    assert error_code(locked) == "login_throttled"
    assert 0 < int(locked["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW
    # The account itself is not locked: its owner, elsewhere, still gets in.
    assert login("a-owner@a", ip="10.0.9.9").status_code == 200
    # Another user is not locked out by someone guessing a-owner's password.
    assert login("a-admin@a", ip="10.0.9.9").status_code == 200


def test_repeated_failures_from_one_address_lock_that_address(tenant_a, settings):
    for attempt in range(settings.LOGIN_FAILURE_LIMIT):
        assert login(f"guess{attempt}", "wrong", ip="10.0.2.2").status_code == 401
    assert login("a-owner@a", ip="10.0.2.2").status_code == 429
    assert login("a-owner@a", ip="10.0.2.3").status_code == 200


def test_a_missing_token_is_401_not_authenticated(tenant_a):
    response = APIClient().get("/api/v1/me")
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Bearer", "Bearer x y"])
def test_a_bad_token_is_401_token_invalid(tenant_a, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert error_code(response) == "token_invalid"


def test_an_expired_token_is_401_token_expired(tenant_a):
    token = AccessToken(token_pair_for(tenant_a.owner)["access"])
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = bearer(str(token)).get("/api/v1/me")
    assert response.status_code == 401
    assert error_code(response) == "token_expired"


def test_a_token_signed_with_another_key_is_invalid(tenant_a, settings):
    from rest_framework_simplejwt.backends import TokenBackend

    forged = TokenBackend("HS256", "another-key-" * 5).encode(
        {"token_type": "access", "user_id": str(tenant_a.owner.pk), "exp": 9999999999, "jti": "x"}
    )
    response = bearer(forged).get("/api/v1/me")
    assert error_code(response) == "token_invalid"


def test_refresh_rotates_and_the_old_refresh_token_is_spent(tenant_a):
    pair = login("a-owner@a").json()
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh"] != pair["refresh"]
    assert bearer(new["access"]).get("/api/v1/me").status_code == 200
    replay = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert replay.status_code == 401
    assert error_code(replay) == "token_invalid"


def test_an_access_token_is_not_a_refresh_token(tenant_a):
    pair = login("a-owner@a").json()
    response = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["access"]}, format="json")
    assert error_code(response) == "token_invalid"


def test_logout_revokes_every_token_of_the_user(tenant_a):
    first, second = login("a-owner@a").json(), login("a-owner@a").json()
    assert bearer(first["access"]).post("/api/v1/auth/logout").status_code == 204
    for pair in (first, second):
        assert error_code(bearer(pair["access"]).get("/api/v1/me")) == "token_invalid"
        refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
        assert error_code(refreshed) == "token_invalid"
    # Logging in again works.
    assert bearer(login("a-owner@a").json()["access"]).get("/api/v1/me").status_code == 200


def test_a_password_change_revokes_tokens_and_the_new_password_works(tenant_a):
    pair = login("a-viewer@a").json()
    response = bearer(pair["access"]).post(
        "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": "a-New-passphrase-42"}, format="json"
    )
    assert response.status_code == 204
    assert error_code(bearer(pair["access"]).get("/api/v1/me")) == "token_invalid"
    assert login("a-viewer@a", PASSWORD).status_code == 401
    assert login("a-viewer@a", "a-New-passphrase-42").status_code == 200


def test_a_password_change_needs_the_current_password(tenant_a):
    pair = login("a-viewer@a").json()
    response = bearer(pair["access"]).post(
        "/api/v1/auth/password", {"old_password": "wrong", "new_password": "a-New-passphrase-42"}, format="json"
    )
    assert response.status_code == 400
    assert error_code(response) == "password_incorrect"
    assert bearer(pair["access"]).get("/api/v1/me").status_code == 200


def test_a_weak_new_password_is_refused_with_its_reasons(tenant_a):
    pair = login("a-viewer@a").json()
    response = bearer(pair["access"]).post(
        "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": "123"}, format="json"
    )
    assert response.status_code == 400
    assert error_code(response) == "password_too_weak"
    assert response.json()["error"]["fields"]["password"]


def test_deactivating_a_user_revokes_their_tokens(tenant_a):
    pair = login("a-viewer@a").json()
    services.user_update(company=tenant_a.company, actor=tenant_a.owner, user=tenant_a.viewer, is_active=False)
    assert error_code(bearer(pair["access"]).get("/api/v1/me")) == "token_invalid"
    assert (
        error_code(APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"))
        == "token_invalid"
    )
    assert login("a-viewer@a").status_code == 401


def test_platform_staff_without_a_company_get_no_api_token(platform_admin):
    response = login("platform", "platform-pass-2026")
    assert response.status_code == 403
    assert error_code(response) == "no_company"


def test_the_admin_login_is_locked_after_repeated_failures_too(client, tenant_a, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        page = client.post("/admin/login/", {"username": "a-owner@a", "password": "wrong"})
        assert page.status_code == 200
    locked = client.post("/admin/login/", {"username": "a-owner@a", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_successful_admin_login_is_not_counted_as_a_failure(client, tenant_a, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 2):
        response = client.post("/admin/login/", {"username": "a-owner@a", "password": PASSWORD})
        assert response.status_code == 302
        client.logout()
