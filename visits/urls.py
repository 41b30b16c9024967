from django.urls import path

from visits import dashboard, views

urlpatterns = [
    # A visitor's own page, through the personal link in their invitation (no account).
    path("visit/<str:token>/", views.visit_page, name="visit-page"),
    # The live dashboard's "Expected today" panel, refreshed by the page.
    path("dashboard/expected-today/", dashboard.expected_panel, name="visits-expected-panel"),
]
