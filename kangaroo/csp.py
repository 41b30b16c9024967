"""Content-Security-Policy on every response.

Every script and style the app serves is a file under /static/ (the admin's, the live
pages', Swagger UI's from drf-spectacular-sidecar), so one fixed policy with no
'unsafe-inline' and no nonces covers every page; a plain middleware is all it takes.
A view that needs another policy sets the header itself and is left alone.
"""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(f"{name} {value}".strip() for name, value in settings.CONTENT_SECURITY_POLICY.items())

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
