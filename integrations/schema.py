"""OpenAPI description of company API keys (imported in apps.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.authentication.ApiKeyAuthentication"
    name = "companyApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Bearer kgr_api_...`: a company API key (shown once when an owner created it). It reaches "
                "only the operations of its scopes (`api_key_scope_missing` otherwise), in its own company; "
                "a revoked or expired key answers 401 `api_key_revoked` or `api_key_expired`."
            ),
        }
