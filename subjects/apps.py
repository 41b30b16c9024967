from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SubjectsConfig(AppConfig):
    name = "subjects"
    verbose_name = _("Subjects")

    def ready(self):
        from subjects import gallery, signals  # noqa: F401  signals connects the photo file clean-up

        gallery.connect()
