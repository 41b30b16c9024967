from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = _("Events")

    def ready(self):
        # Device status changes become events; live sockets close when their principal ends.
        from events import revocation, signals  # noqa: F401
        from events.hooks import events_recorded
        from events.live import broadcast_recorded
        from events.unknown_people import queue_unknown_sightings

        events_recorded.connect(broadcast_recorded, dispatch_uid="events.live.broadcast_recorded")
        # After the live pages: the stranger card is shown first, its unknown person follows.
        events_recorded.connect(queue_unknown_sightings, dispatch_uid="events.unknown_people.queue")
