"""Loaded by pytest (`-p tests.env_defaults`) before Django reads its settings.

Tests talk plain HTTP to the test client, so the HTTPS redirect is off, and static files
are not collected first; every other setting stays as in production. Variables already set win.
"""

import os

os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")  # no collectstatic before tests
