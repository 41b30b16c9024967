"""System checks for the settings that only show their trouble once there are several processes."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_secret_key_is_shared(app_configs, **kwargs):
    """Every process needs the same key, or a session or reset link made by one is refused by
    the next. A key made up by the process itself (neither SECRET_KEY nor a generated key file)
    is fine for tests, never for a deployment."""
    if not getattr(settings, "SECRET_KEY_PER_PROCESS", False):
        return []
    return [
        Error(
            "SECRET_KEY is not set and there is no generated key in "
            f"{settings.GENERATED_SECRET_KEY_PATH}, so each process uses a key of its own.",
            hint="Set SECRET_KEY (or SECRET_KEY_FILE), or run `manage.py prepare` once on a single-host install.",
            id="kangaroo.E001",
        )
    ]
