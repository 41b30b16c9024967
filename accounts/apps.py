from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from accounts import (
            schema,  # noqa: F401  registers the OpenAPI auth extension
            signals,  # noqa: F401  announces when a user's sessions end
        )
