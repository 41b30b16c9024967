from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KangarooConfig(AppConfig):
    """The project itself as an app: its management commands (`seed_demo`, `periodic`,
    `prepare`), its system checks, and the few tables of the base that belong to no company
    (the periodic runner's schedule)."""

    name = "kangaroo"
    verbose_name = _("Kangaroo")

    def ready(self):
        from kangaroo import checks  # noqa: F401  registers the system checks
