"""Websocket routes. The live dashboards (events app) register here."""

from django.urls import path

from kangaroo.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
]
