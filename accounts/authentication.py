"""API authentication with JWTs that the portal can revoke.

Access tokens are short-lived. Each token carries the user's `token_generation` ("gen");
logout, a password change and deactivation bump it, so every token issued before dies at
once, access tokens included, without waiting for them to expire.
"""

from django.utils import translation
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from kangaroo import errors

GENERATION_CLAIM = "gen"


class CodedAuthenticationFailed(exceptions.AuthenticationFailed):
    def __init__(self, error: errors.ErrorCode):
        super().__init__(detail=error.message, code=error.code)


def token_pair_for(user) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)  # records an OutstandingToken for the deny list
    refresh[GENERATION_CLAIM] = user.token_generation
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


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
        if user.language:
            translation.activate(user.language)
        return user

    def get_raw_token(self, header):
        try:
            return super().get_raw_token(header)
        except exceptions.AuthenticationFailed:
            raise CodedAuthenticationFailed(errors.TOKEN_INVALID) from None
