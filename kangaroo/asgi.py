"""ASGI entry: HTTP through Django, websockets through Channels.

Serve with `uvicorn kangaroo.asgi:application` (any number of processes: with REDIS_URL
set, websockets of every process share the Redis channel layer).
"""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kangaroo.settings")
django.setup(set_prefix=False)  # as get_asgi_application does, before the routing imports models

from kangaroo.handlers import OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from kangaroo.consumers import SameOriginValidator  # noqa: E402
from kangaroo.logs import WebsocketRequestId  # noqa: E402
from kangaroo.metrics import WebsocketClientsMiddleware  # noqa: E402
from kangaroo.routing import websocket_urlpatterns  # noqa: E402

# Every view, serializer and library is imported now rather than on the first request, then
# all of it is moved out of the garbage collector's sight: a full collection walks every
# tracked object, and with Django, DRF and numpy loaded each one took about 70 ms, several
# times a second under a large answer (bench/gallery_bench.py). What requests allocate is
# still collected as before.
get_resolver().url_patterns  # noqa: B018 (imports the views)
gc.freeze()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A browser's Origin must be exactly ours (scheme, host and port); see
        # kangaroo.consumers.origin_allowed. Devices send none and use their key. Each
        # connection's log lines carry an id of its own (kangaroo.logs).
        "websocket": WebsocketRequestId(
            WebsocketClientsMiddleware(SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))))
        ),
    }
)
