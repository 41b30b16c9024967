"""Every periodic task and its interval, in one table. `manage.py periodic` runs them.

Tasks are named by dotted path, called without arguments, and must be safe to run late
or to skip one interval (see `kangaroo/periodic.py`). Add one here, nowhere else.
"""

from __future__ import annotations

from django.conf import settings

from kangaroo.periodic import Task


def periodic_tasks() -> list[Task]:
    return [
        # Silent devices go offline at most a third of the grace period late.
        Task(
            "devices.mark_offline",
            "devices.jobs.devices_mark_offline",
            every=max(settings.DEVICE_OFFLINE_AFTER // 3, 1),
        ),
        # Each company's gallery change log: superseded rows and read (or old) tombstones go.
        Task("gallery.compact", "devices.jobs.gallery_compact", every=settings.GALLERY_COMPACT_EVERY),
        # Jobs whose worker died are retried or failed; their records follow the queue.
        Task("jobs.reconcile", "accounts.jobs.jobs_reconcile", every=60),
        # Webhook messages whose retry is due go out again (integrations.delivery).
        Task("webhooks.retry", "integrations.jobs.webhooks_retry", every=settings.WEBHOOK_RETRY_SWEEP_SECONDS),
        # The webhook delivery log keeps WEBHOOK_LOG_DAYS days.
        Task("webhooks.purge", "integrations.jobs.webhooks_log_purge", every=3600),
        # Boxes that started to lag behind the gallery are announced to webhooks (`device.lagging`).
        Task("webhooks.lagging", "integrations.jobs.webhooks_lagging", every=60),
        # Each company's data past its retention windows (privacy.purge): visitors' and inactive
        # subjects' faces, strangers, unknown people, events (kept as daily counts), audit log.
        Task("privacy.purge", "privacy.jobs.privacy_purge", every=settings.PRIVACY_PURGE_SECONDS),
        # Bulk photo uploads left unconfirmed go with their archives (PHOTO_ZIP_EXPIRES_MINUTES).
        Task("photo_uploads.expire", "subjects.photo_uploads.photo_uploads_expire", every=300),
        # A visitor whose visit ended moves on to their next visit's window (visits.services).
        Task("visits.windows", "visits.jobs.visits_windows_follow", every=60),
    ]
