from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = _("Devices")

    def ready(self):
        from devices import schema  # noqa: F401  registers the OpenAPI auth extension
        from devices.metrics import fleet_metrics
        from kangaroo.metrics import scrape_collector_register

        scrape_collector_register("devices", fleet_metrics)
