"""API authentication with JWTs that the portal can revoke.

Access tokens are short-lived. Each token carries the user's `token_generation` ("gen");
logout, a password change and deactivation bump it, so every token issued before dies at
once, access tokens included, without waiting for them to expire.

Refresh tokens rotate: each is spent by its first use. Every token descending from one
login carries that login's family id ("fam"). A spent refresh token presented again means
two parties hold the same family (a stolen token), so the whole family is revoked: its live
refresh token is denied and its access tokens stop working at once (OAuth 2.0 security
BCP, refresh token rotation with reuse detection). Other logins of the same user go on.
"""

import logging

from django.utils import translation
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.middleware import activate_company_time_zone
from kangaroo import errors

logger = logging.getLogger(__name__)

GENERATION_CLAIM = "gen"
FAMILY_CLAIM = "fam"


class CodedAuthenticationFailed(exceptions.AuthenticationFailed):
    def __init__(self, error: errors.ErrorCode):
        super().__init__(detail=error.message, code=error.code)


def token_pair_for(user, *, family: str | None = None) -> dict[str, str]:
    """A new pair for `user`: a new family (a login), or the next of `family` (a rotation)."""
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
    from rest_framework_simplejwt.utils import datetime_from_epoch

    refresh = RefreshToken()
    refresh[jwt_settings.USER_ID_CLAIM] = str(getattr(user, jwt_settings.USER_ID_FIELD))
    refresh[GENERATION_CLAIM] = user.token_generation
    refresh[FAMILY_CLAIM] = family or refresh[jwt_settings.JTI_CLAIM]
    # Recorded with its claims, so a family's live token can be found to deny it.
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[jwt_settings.JTI_CLAIM],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _family_key(family: str) -> str:
    return f"token-family-revoked:{family}"


def family_revoked_mark(family: str) -> None:
    """Access tokens are not recorded anywhere; the mark outlives the longest of them."""
    from django.core.cache import cache

    cache.set(_family_key(family), 1, timeout=int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()) + 60)


def check_family(token) -> None:
    from django.core.cache import cache

    family = token.get(FAMILY_CLAIM)
    if family is None:
        return
    try:
        revoked = cache.get(_family_key(family))
    except Exception:
        # The cache being down must not take the API down; the refresh side of the family
        # is denied in the database regardless, so its access tokens end within their lifetime.
        logger.warning("token family check skipped: cache unreachable", exc_info=True)
        return
    if revoked:
        raise CodedAuthenticationFailed(errors.TOKEN_INVALID)


def check_generation(token, user) -> None:
    if token.get(GENERATION_CLAIM) != user.token_generation:
        raise CodedAuthenticationFailed(errors.TOKEN_INVALID)


class UserJWTAuthentication(JWTAuthentication):
    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    def get_validated_token(self, raw_token):
        try:
            return AccessToken(raw_token)
        except ExpiredTokenError:
            raise CodedAuthenticationFailed(errors.TOKEN_EXPIRED) from None
        except TokenError:
            raise CodedAuthenticationFailed(errors.TOKEN_INVALID) from None

    def get_user(self, validated_token):
        from accounts.models import User

        # The company comes along: every API request needs it for its scope.
        user = (
            User.objects.select_related("company")  # tenant: the token names its own user
            .filter(pk=validated_token.get(jwt_settings.USER_ID_CLAIM), is_active=True)
            .first()
        )
        if user is None or (user.company_id is not None and not user.company.is_active):
            raise CodedAuthenticationFailed(errors.TOKEN_INVALID)
        check_generation(validated_token, user)
        check_family(validated_token)
        if user.language:
            translation.activate(user.language)
        activate_company_time_zone(user.company)
        return user

    def get_raw_token(self, header):
        try:
            return super().get_raw_token(header)
        except exceptions.AuthenticationFailed:
            raise CodedAuthenticationFailed(errors.TOKEN_INVALID) from None
