"""Settings for the login benchmark's server only: kangaroo.settings with the
authentication backend chosen by BENCH_LOGIN_BACKEND, so the product's backend and
Django's ModelBackend (the baseline: it hashes with the connection checked out) are
measured with the same code and the same pool."""

import os

from kangaroo.settings import *  # noqa: F403

_BACKENDS = {
    "product": "accounts.backends.ModelBackendReleasingConnection",
    "django": "django.contrib.auth.backends.ModelBackend",
}
AUTHENTICATION_BACKENDS = [_BACKENDS[os.environ.get("BENCH_LOGIN_BACKEND", "product")]]
