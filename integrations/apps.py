from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self):
        # Subscribes to the announcements of the apps below (events, subjects); none of
        # them knows this app exists.
        from integrations import listeners, schema  # noqa: F401  schema registers the OpenAPI auth extension

        listeners.connect()
