"""Websocket routes. The live dashboards (events app) register here."""

from django.urls import path

from events.consumers import EventsConsumer
from kangaroo.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
]
