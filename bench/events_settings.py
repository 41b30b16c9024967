"""Settings for the events benchmark's server only (bench/events_bench.py starts uvicorn with
DJANGO_SETTINGS_MODULE=bench.events_settings). Everything is kangaroo.settings, plus:

- ROOT_URLCONF adds the baseline-only endpoints (bench/events_urls.py) after the product's;
- BENCH_CHANNEL_LAYER=pubsub (the product's choice with REDIS_URL) or core (channels-redis'
  default RedisChannelLayer), to measure both with the same code.
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
CHANNEL_LAYERS = {"default": {"BACKEND": _LAYERS[_layer], "CONFIG": {"hosts": [REDIS_URL]}}}
