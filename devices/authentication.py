"""`Authorization: Device <key>`: the device API's only way in.

A valid key gives a `DevicePrincipal` as `request.user`: it carries the device and its
company, so `request_company` acts for that company and nothing else. The principal is
not a `User`, and user endpoints do not list this class, so a device key never reaches
them; device endpoints list only this class, so a user's token never reaches those.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication

from accounts.authentication import CodedAuthenticationFailed
from accounts.middleware import activate_company_time_zone
from accounts.models import Company
from devices import selectors
from devices.models import Device
from kangaroo import errors
from kangaroo.errors import KangarooError

KEYWORD = "Device"


@dataclass(frozen=True, eq=False)
class DevicePrincipal:
    """The authenticated device. Enough of a user's shape for DRF and the audit log."""

    device: Device

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    is_device = True
    can_write = False  # admin-facing endpoints are not for devices, whatever the method
    pk = None  # the audit log stores no user row for a device, only its name

    @property
    def company(self) -> Company:
        return self.device.company

    @property
    def company_id(self) -> int:
        return self.device.company_id

    def get_username(self) -> str:
        return f"{self.device.kind}:{self.device.name}"

    def __str__(self) -> str:
        return self.get_username()


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise CodedAuthenticationFailed(errors.DEVICE_KEY_INVALID)
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise CodedAuthenticationFailed(errors.DEVICE_KEY_INVALID) from None
        try:
            device = selectors.device_for_key(key)
        except KangarooError as exc:
            raise CodedAuthenticationFailed(exc.error) from None
        activate_company_time_zone(device.company)  # a time a device sends without offset is local
        return DevicePrincipal(device), key

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="devices"'
