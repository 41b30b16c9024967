"""Settings for the events benchmark's server only (bench/events_bench.py starts uvicorn with
DJANGO_SETTINGS_MODULE=bench.events_settings). Everything is kangaroo.settings, plus:

- ROOT_URLCONF adds the baseline-only endpoints (bench/events_urls.py) after the product's;
- BENCH_CHANNEL_LAYER=pubsub (the product's choice with REDIS_URL) or core (channels-redis'
  default RedisChannelLayer), to measure both with the same code;
- BENCH_CHANNEL_PREFIX (default "asgi"): the layer's channel prefix. Redis pub/sub channels
  are shared by every database number, so two benchmarks run at once on one Redis (each
  with its own database, both seeding company ids 1 to 3) would otherwise deliver each
  other's events to their dashboards.
"""

import os

from kangaroo.settings import *  # noqa: F403
from kangaroo.settings import REDIS_URL

ROOT_URLCONF = "bench.events_urls"

_LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
_layer = os.environ.get("BENCH_CHANNEL_LAYER", "pubsub")
if _layer not in _LAYERS:
    raise RuntimeError(f"BENCH_CHANNEL_LAYER must be one of {sorted(_LAYERS)}")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _LAYERS[_layer],
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("BENCH_CHANNEL_PREFIX", "asgi")},
    }
}
