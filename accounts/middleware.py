"""Per-request settings that come from the signed-in user: their language and their
company's time zone."""

from __future__ import annotations

from django.utils import timezone, translation


def activate_company_time_zone(company) -> None:
    """Make `company`'s zone the current one: every time shown is then in it (admin lists,
    forms, API output) and every time typed without an offset means it (admin forms, API
    bodies, imports). Platform staff (no company) keep the server's zone.

    Called by `CompanyTimeZoneMiddleware` for session users and by the API's token and
    device-key authentication, which run inside the view, after every middleware."""
    if company is not None:
        timezone.activate(company.zone)


class UserLanguageMiddleware:
    """A user's own language setting wins over the browser's Accept-Language.

    Runs after LocaleMiddleware (which picked the browser's language) and after
    authentication (which tells whose setting to use).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


class CompanyTimeZoneMiddleware:
    """Every request of a company's user runs in the company's time zone (see
    `activate_company_time_zone`); the zone is reset afterwards, so a worker thread never
    carries one company's zone into the next request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        try:
            if user is not None and user.is_authenticated:
                activate_company_time_zone(getattr(user, "company", None))
            return self.get_response(request)
        finally:
            timezone.deactivate()
