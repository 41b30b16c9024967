"""When Redis is down, events are still stored and the device gets its normal answer."""

import pytest
from channels.layers import channel_layers

from events.models import Event
from tests.events.conftest import event

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_events_are_stored_and_answered_when_the_broadcast_fails(
    tenant_a, door_a, redis_down, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = door_a.box_client().post(
            "/api/v1/device/events", {"events": [event("k1", door_a.entrance), event("k2", door_a.exit)]}, format="json"
        )
    assert response.status_code == 200
    assert response.json()["created"] == 2
    assert Event.objects.for_company(tenant_a.company).count() == 2
    assert "Broadcasting 2 event(s) failed" in caplog.text
