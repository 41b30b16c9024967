"""System checks for the settings that only show their trouble once there are several processes."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


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


@register(Tags.compatibility, deploy=True)
def check_metrics_across_processes(app_configs, **kwargs):
    """With Redis, a deployment runs several processes; without PROMETHEUS_MULTIPROC_DIR each
    would answer /metrics with its own counts only, a different share at every scrape."""
    import os

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory and not os.access(directory, os.W_OK | os.X_OK):
        return [
            Error(
                f"PROMETHEUS_MULTIPROC_DIR={directory} is not a writable folder.",
                hint="Create it (empty) before the processes start, writable by all of them.",
                id="kangaroo.E002",
            )
        ]
    if settings.METRICS_TOKEN and settings.REDIS_URL and not directory:
        return [
            Warning(
                "METRICS_TOKEN is set but PROMETHEUS_MULTIPROC_DIR is not: each process reports only its own counts.",
                hint="Set PROMETHEUS_MULTIPROC_DIR to an empty folder shared by a host's web and worker processes.",
                id="kangaroo.W001",
            )
        ]
    return []
