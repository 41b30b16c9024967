"""OpenAPI description of the device key (imported in apps.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "devices.authentication.DeviceKeyAuthentication"
    name = "deviceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Device <key>`: the key shown once when the device was registered or its key "
                "rotated. A revoked key answers 401 `device_key_revoked`."
            ),
        }
