from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KangarooConfig(AppConfig):
    """The project itself as an app: its management commands (`seed_demo`, `periodic`,
    `prepare`), its system checks, and the few tables of the base that belong to no company
    (the periodic runner's schedule)."""

    name = "kangaroo"
    verbose_name = _("Kangaroo")

    def ready(self):
        from django.db.models.signals import post_delete

        from kangaroo import checks  # noqa: F401  registers the system checks
        from kangaroo.api.serializers import install_strict_json_types
        from kangaroo.jobs import queue_metrics
        from kangaroo.media import purge_deleted_company
        from kangaroo.metrics import scrape_collector_register

        # By name: the tenant model lives in accounts, which builds on this base.
        install_strict_json_types()
        scrape_collector_register("jobs", queue_metrics)
        post_delete.connect(purge_deleted_company, sender="accounts.Company", dispatch_uid="kangaroo.media.purge")
