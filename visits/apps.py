from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    name = "visits"
    verbose_name = _("Visits")

    def ready(self):
        # A visit is marked arrived from the events the doors store (events never import visits).
        from events.hooks import dashboard_panel_register, events_recorded
        from visits.arrivals import visits_mark_arrivals
        from visits.dashboard import expected_panel_html

        events_recorded.connect(visits_mark_arrivals, dispatch_uid="visits.arrivals.mark")
        dashboard_panel_register(expected_panel_html)
