"""OpenAPI description of the API's own authentication classes (imported in apps.ready)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class UserJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.UserJWTAuthentication"
    name = "jwtAuth"
