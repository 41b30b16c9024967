"""Baseline-only endpoints for bench/events_bench.py, mounted only by bench/events_settings.py
(never by the product's urls). The company comes from BENCH_COMPANY_ID, set by the benchmark.

- /bench/bare/event: a bare Django view doing one ORM insert;
- /bench/drf/events/: a plain DRF ModelViewSet on Event (create: one object per request).
"""

import json
import os

from django.http import JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from rest_framework import permissions, routers, serializers, viewsets

from events.models import Event
from kangaroo.urls import urlpatterns as product_urlpatterns

COMPANY_ID = int(os.environ.get("BENCH_COMPANY_ID", "0"))


@csrf_exempt
def bare_event(request):
    data = json.loads(request.body)
    event = Event.objects.create(
        company_id=COMPANY_ID,
        kind="recognized",
        subject_id=data.get("subject_id"),
        screen_id=data.get("screen_id"),
        confidence=data.get("confidence"),
        happened_at=parse_datetime(data["happened_at"]),
        received_at=timezone.now(),
        uid=data["uid"],
    )
    return JsonResponse({"id": event.pk}, status=201)


class PlainEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "kind", "subject", "screen", "confidence", "happened_at", "received_at", "uid"]


class PlainEventViewSet(viewsets.ModelViewSet):
    serializer_class = PlainEventSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    def get_queryset(self):
        return Event.objects.for_company(COMPANY_ID)

    def perform_create(self, serializer):
        serializer.save(company_id=COMPANY_ID)


router = routers.SimpleRouter()
router.register("events", PlainEventViewSet, basename="bench-event")

urlpatterns = [
    *product_urlpatterns,
    path("bench/bare/event", bare_event),
    path("bench/drf/", include(router.urls)),
]
