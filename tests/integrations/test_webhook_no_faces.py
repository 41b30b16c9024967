"""A webhook carries no biometric data: no photo, snapshot or embedding, and no link to one
(an event's `photo_url` and `snapshot_url` are null; a subject is sent without its photos),
whoever set the endpoint up. A receiver that needs a face asks the API for it, audited."""

from __future__ import annotations

import json

import pytest

from integrations.models import WebhookDelivery
from tests.events.conftest import event
from tests.factories import SubjectFactory
from tests.images import snapshot
from tests.integrations.test_webhook_delivery import endpoint_for, post_batch, verified
from tests.subjects.test_consent_withdrawal import enrol

pytestmark = pytest.mark.django_db


def test_events_and_subjects_reach_a_receiver_without_faces_or_links(
    tenants, door_a, receiver, django_capture_on_commit_callbacks
):
    a, b = tenants
    _endpoint, secret = endpoint_for(a, receiver.url, types=("event.recognized", "event.stranger", "subject.updated"))
    subject = SubjectFactory(company=a.company, name="陳美玲")
    enrol(a, subject)
    post_batch(
        door_a,
        [event("n1", door_a.entrance, subject, snapshot=snapshot()), event("n2", door_a.exit, snapshot=snapshot())],
        django_capture_on_commit_callbacks,
    )
    payloads = [verified(secret, request) for request in receiver.requests]
    assert sorted(p["type"] for p in payloads) == ["event.recognized", "event.stranger"]
    recognized = next(p["data"] for p in payloads if p["type"] == "event.recognized")
    # The event had a snapshot and the subject a photo: still, neither is linked.
    assert recognized["subject"]["name"] == "陳美玲"
    assert (recognized["snapshot_url"], recognized["subject"]["photo_url"]) == (None, None)
    for request in receiver.requests:
        for word in (b"embedding", b"/snapshot", b"/thumbnail", b"/image", b"/live/"):
            assert word not in request.body, word
    stored = [json.loads(delivery.body)["data"] for delivery in WebhookDelivery.objects.for_company(a.company)]
    assert len(stored) == 2 and all(data["snapshot_url"] is None for data in stored)
    assert not WebhookDelivery.objects.for_company(b.company).exists()
