"""The base of every device-facing endpoint (`/device/...`, event ingest, the gallery feed).

A view built on `DeviceView` accepts only `Authorization: Device <key>`
(`devices.authentication`) and only the device kinds it lists; a user's token never reaches
it, and a device key reaches nothing else. Bodies are read with
`kangaroo.api.serializers.StrictSerializer`, so a misspelt field is an error, not a silence.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.views import APIView

from devices.authentication import DeviceKeyAuthentication, DevicePrincipal
from devices.models import Device
from kangaroo import errors
from kangaroo.api.parsers import JSONParser


class IsDevice(permissions.BasePermission):
    """A device with a valid key, of one of the view's `device_kinds` (all if empty)."""

    message = errors.DEVICE_WRONG_KIND.message
    code = errors.DEVICE_WRONG_KIND.code

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, DevicePrincipal):
            return False
        kinds = getattr(view, "device_kinds", ())
        return not kinds or principal.device.kind in kinds


class DeviceView(APIView):
    """Set `device_kinds` to the kinds allowed (empty: any); `self.device` is the caller."""

    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]
    # Devices speak JSON only: a form body has no types, and its blanks would read as "absent".
    parser_classes = [JSONParser]
    device_kinds: tuple[str, ...] = ()

    @property
    def device(self) -> Device:
        return self.request.user.device
