from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = _("Events")

    def ready(self):
        from events import signals  # noqa: F401  device status changes become events
        from events.hooks import events_recorded
        from events.live import broadcast_recorded

        events_recorded.connect(broadcast_recorded, dispatch_uid="events.live.broadcast_recorded")
