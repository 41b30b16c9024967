from django.utils import translation


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
