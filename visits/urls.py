from django.urls import path

from visits import views

urlpatterns = [
    # A visitor's own page, through the personal link in their invitation (no account).
    path("visit/<str:token>/", views.visit_page, name="visit-page"),
]
