"""Scrape-time figures of the device fleet (`kangaroo.metrics`): counts only, for the whole
deployment. No device, box or company is named in a label: per-company detail is what the
admin's device lists show, and labels must stay few whatever the fleet's size."""

from __future__ import annotations

from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from devices.models import DEVICE_MODELS, Box, Status, offline_after
from devices.selectors import only_lagging, with_gallery_lag


def fleet_metrics() -> list[GaugeMetricFamily]:
    """One query per device kind for the statuses, one for the lagging boxes, one for the
    largest gallery lag."""
    now = timezone.now()
    cutoff = now - offline_after()
    devices = GaugeMetricFamily(
        "kangaroo_devices", "Devices by kind and status (from their last heartbeat).", labels=["kind", "status"]
    )
    for kind, model in DEVICE_MODELS.items():
        counts = model.objects.aggregate(  # tenant: deployment-wide counts, no row leaves
            online=Count("pk", filter=Q(last_seen_at__gte=cutoff)),
            offline=Count("pk", filter=Q(last_seen_at__lt=cutoff)),
            never_seen=Count("pk", filter=Q(last_seen_at__isnull=True)),
        )
        for status in Status.values:
            devices.add_metric([kind, status], counts[status])
    lagging = only_lagging(Box.objects.all(), now=now).count()  # tenant: deployment-wide count
    seen = with_gallery_lag(Box.objects.filter(last_seen_at__isnull=False))  # tenant: deployment-wide figures
    worst = seen.aggregate(
        behind_since=Min("gallery_behind_since"), changes=Max(F("gallery_latest") - F("gallery_cursor"))
    )
    lag_seconds = (now - worst["behind_since"]).total_seconds() if worst["behind_since"] else 0.0
    return [
        devices,
        GaugeMetricFamily(
            "kangaroo_boxes_lagging",
            "Boxes more than GALLERY_LAG_CHANGES changes behind the gallery for over GALLERY_LAG_SECONDS.",
            value=lagging,
        ),
        GaugeMetricFamily(
            "kangaroo_box_gallery_lag_seconds_max",
            "Age of the oldest gallery change a box that reports heartbeats has not applied (0: all up to date).",
            value=max(lag_seconds, 0.0),
        ),
        GaugeMetricFamily(
            "kangaroo_box_gallery_lag_changes_max",
            "Most gallery changes any box that reports heartbeats is behind.",
            value=max(worst["changes"] or 0, 0),
        ),
    ]
