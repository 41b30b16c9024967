from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    name = "visits"
    verbose_name = _("Visits")

    def ready(self):
        # A visit is marked arrived from the events the doors store (events never import visits).
        from events.hooks import dashboard_panel_register, events_recorded
        from subjects.domain_signals import subject_erased
        from visits.arrivals import visits_mark_arrivals
        from visits.dashboard import expected_panel_html
        from visits.erasure import visits_scrub_erased

        events_recorded.connect(visits_mark_arrivals, dispatch_uid="visits.arrivals.mark")
        dashboard_panel_register(expected_panel_html)
        # An erased visitor's visits are no longer named after them in the logs.
        subject_erased.connect(visits_scrub_erased, dispatch_uid="visits.privacy.erased")
