from django.http import HttpResponse


def private_jpeg_response(file) -> HttpResponse:
    """A stored JPEG (photo, thumbnail, snapshot) for the one who passed the checks.

    Read whole rather than streamed: they are small (normalised, at most a few hundred KB),
    and under ASGI a streamed file would be pulled through a thread per chunk. Private
    caching only: these are biometric data behind a login.
    """
    with file.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
