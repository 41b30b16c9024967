"""`Authorization: Bearer kgr_api_...`: company API keys, accepted by the REST API next to
users' JWTs (listed first in REST_FRAMEWORK, it leaves any other bearer token to them).

A valid key gives an `ApiKeyPrincipal` as `request.user`: it carries the key's company, so
every view set's scope (`request_company`) acts for that company and nothing else, and its
scopes, which `kangaroo.api.permissions` checks against the view's `api_key_scopes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication

from accounts.authentication import CodedAuthenticationFailed
from accounts.middleware import activate_company_time_zone
from accounts.models import Company
from integrations.api_keys import api_key_for, api_key_used, is_api_key
from integrations.models import ApiKey
from kangaroo.context import current_origin
from kangaroo.errors import KangarooError


@dataclass(frozen=True, eq=False)
class ApiKeyPrincipal:
    """The authenticated key: enough of a user's shape for DRF, the views and the audit log."""

    api_key: ApiKey

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    is_platform_staff = False
    is_device = False
    # Whether it may write is its scopes' business (`api_key_scopes` on each view).
    can_write = True
    can_manage_users = False
    pk = None  # the audit log stores no user row for a key, only its name
    id = None
    language = ""

    @property
    def company(self) -> Company:
        return self.api_key.company

    @property
    def company_id(self) -> int:
        return self.api_key.company_id

    @property
    def key_scopes(self) -> frozenset[str]:
        return frozenset(self.api_key.scopes or [])

    def get_username(self) -> str:
        return f"api-key:{self.api_key.name}"

    def __str__(self) -> str:
        return self.get_username()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            return None
        try:
            text = header[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not is_api_key(text):
            return None  # a user's JWT
        try:
            api_key = api_key_for(text)
        except KangarooError as exc:
            raise CodedAuthenticationFailed(exc.error) from None
        api_key_used(api_key, address=current_origin().ip_address)
        activate_company_time_zone(api_key.company)
        return ApiKeyPrincipal(api_key), text

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
