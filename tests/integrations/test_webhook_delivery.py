"""Webhook deliveries end to end: events posted by a box reach a real receiver on loopback,
signed as Standard Webhooks 1.0, verified with the reference library; retries converge to
one logical delivery per event; one job per batch per endpoint; one company's endpoints
never hear another's events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.models import AuditLog
from events.models import Event
from integrations import delivery, services
from integrations.models import DeliveryStatus, WebhookDelivery
from tests.conftest import api_client_for
from tests.events.conftest import event
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db


def endpoint_for(tenant, url, types=("event.recognized", "event.stranger")):
    return services.webhook_endpoint_create(company=tenant.company, actor=tenant.admin, url=url, event_types=types)


def post_batch(door, items, on_commit):
    with on_commit(execute=True):
        answer = door.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    assert answer.status_code == 200, answer.content
    return [r["id"] for r in answer.json()["results"] if r["status"] == "created"]


def sweep(now, on_commit) -> int:
    """The periodic retry sweep at `now`, its jobs run (they start after commit)."""
    with on_commit(execute=True):
        return delivery.deliver_due(now=now)


def verified(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


def test_a_recognition_arrives_signed_with_the_event_shape_of_the_api(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    _endpoint, secret = endpoint_for(tenant_a, receiver.url)
    assert secret.startswith("whsec_")
    person = SubjectFactory(company=tenant_a.company, name="王小明")
    [event_id] = post_batch(door_a, [event("e1", door_a.entrance, person)], django_capture_on_commit_callbacks)

    [request] = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == "event.recognized"
    api_event = api_client_for(tenant_a.admin).get(f"/api/v1/events/{event_id}").json()
    assert payload["data"] == api_event  # the one event shape, times in the company's zone
    assert payload["data"]["subject"]["name"] == "王小明"
    assert payload["timestamp"].endswith("Z")
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["content-type"] == "application/json"
    assert b"embedding" not in request.body
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    assert (sent.status, sent.attempts, sent.response_status) == (DeliveryStatus.DELIVERED, 1, 200)
    assert sent.message_id == request.headers["webhook-id"] and sent.duration_ms is not None


def test_a_tampered_body_a_wrong_secret_and_an_old_timestamp_are_refused_by_the_library(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_for(tenant_a, receiver.url)
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    [request] = receiver.requests
    verified(secret, request)

    tampered = request.body.replace(b'"stranger"', b'"recognized"')
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    _, other_secret = endpoint_for(tenant_a, receiver.url)
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(request.body, request.headers)

    # A message signed ten minutes ago (a replay) is outside the library's tolerance.
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get(endpoint=endpoint)
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    WebhookDelivery.objects.for_company(tenant_a.company).filter(pk=sent.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=ten_minutes_ago - timedelta(seconds=1)
    )
    delivery.deliver(company_id=tenant_a.company.pk, endpoint_id=endpoint.pk, ids=[sent.pk], now=ten_minutes_ago)
    old = receiver.requests[-1]
    assert old.headers["webhook-id"] == request.headers["webhook-id"]
    with pytest.raises(WebhookVerificationError, match="too old"):
        verified(secret, old)


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    endpoint, old_secret = endpoint_for(tenant_a, receiver.url)
    endpoint, new_secret = services.webhook_secret_rotate(
        company=tenant_a.company, actor=tenant_a.admin, endpoint=endpoint
    )
    assert new_secret != old_secret
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verified(old_secret, request)
    verified(new_secret, request)

    # A day later only the new secret signs.
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    later = timezone.now() + timedelta(hours=24, minutes=1)
    WebhookDelivery.objects.for_company(tenant_a.company).filter(pk=sent.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=later
    )
    delivery.deliver(company_id=tenant_a.company.pk, endpoint_id=endpoint.pk, ids=[sent.pk], now=later)
    last = receiver.requests[-1]
    signatures = last.headers["webhook-signature"].split(" ")
    moment = datetime.fromtimestamp(int(last.headers["webhook-timestamp"]), tz=UTC)
    body = last.body.decode()
    assert signatures == [Webhook(new_secret).sign(last.headers["webhook-id"], moment, body)]
    assert Webhook(old_secret).sign(last.headers["webhook-id"], moment, body) not in signatures
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="webhook.rotate_secret").count() == 1


def test_retries_converge_to_exactly_one_logical_delivery_per_event(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_for(tenant_a, receiver.url)
    # The receiver fails the first four requests (500, 503, 500, 502), then takes everything.
    receiver.statuses = [500, 503, 500, 502]
    ids = post_batch(door_a, [event(f"e{n}", door_a.entrance) for n in range(3)], django_capture_on_commit_callbacks)
    assert len(ids) == 3

    for _ in range(6):
        # Time passes: each waiting message is due now (signed now, so the library's clock agrees).
        WebhookDelivery.objects.for_company(tenant_a.company).filter(status=DeliveryStatus.PENDING).update(
            next_attempt_at=timezone.now()
        )
        sweep(timezone.now(), django_capture_on_commit_callbacks)
    logical = {}
    for request in receiver.requests:
        payload = verified(secret, request)  # every attempt verifies
        logical.setdefault(request.headers["webhook-id"], payload["data"]["id"])
    assert sorted(logical.values()) == sorted(ids)  # one logical message per event
    assert len(receiver.requests) == 3 + 4
    sent = WebhookDelivery.objects.for_company(tenant_a.company).filter(endpoint=endpoint)
    assert {d.status for d in sent} == {DeliveryStatus.DELIVERED}
    assert sum(d.attempts for d in sent) == 7
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_failed_attempt_waits_with_backoff_and_jitter(tenant_a, door_a, receiver, django_capture_on_commit_callbacks):
    endpoint_for(tenant_a, receiver.url)
    receiver.statuses = [500]
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    assert sent.status == DeliveryStatus.PENDING and sent.attempts == 1 and sent.response_status == 500
    wait = (sent.next_attempt_at - sent.last_attempt_at).total_seconds()
    assert 7.5 <= wait <= 12.5  # 10 s, give or take a quarter
    assert sweep(timezone.now(), django_capture_on_commit_callbacks) == 0  # not due yet
    for n in range(1, 12):
        base = min(10 * 3 ** (n - 1), 3 * 3600)
        assert 0.75 * base <= delivery.retry_delay(n) <= 1.25 * base
    assert len({round(delivery.retry_delay(3), 3) for _ in range(10)}) > 1  # jitter


def test_a_message_is_given_up_after_24_hours(tenant_a, door_a, receiver, django_capture_on_commit_callbacks):
    endpoint_for(tenant_a, receiver.url)
    receiver.statuses = [500] * 100
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    now = timezone.now()
    for _ in range(30):
        now += timedelta(hours=2)
        sweep(now, django_capture_on_commit_callbacks)
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    assert sent.status == DeliveryStatus.FAILED and sent.next_attempt_at is None
    assert sent.attempts > 5


def test_an_endpoint_failing_for_a_day_is_disabled_and_owners_are_emailed(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    tenant_a.owner.email, tenant_a.owner.language = "owner@a.example", "zh-hant"
    tenant_a.owner.save()
    endpoint, _ = endpoint_for(tenant_a, receiver.url)
    receiver.statuses = [500] * 100
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.is_active
    pending = WebhookDelivery.objects.for_company(tenant_a.company).get()

    mail.outbox.clear()
    disabled_before = REGISTRY.get_sample_value("kangaroo_webhook_endpoints_disabled_total")
    failed_before = REGISTRY.get_sample_value("kangaroo_webhook_deliveries_total", {"outcome": "failed"}) or 0
    with django_capture_on_commit_callbacks(execute=True):
        delivery.deliver_due(now=endpoint.failing_since + timedelta(hours=24, minutes=1))
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    # /metrics counts it (the alert KangarooWebhookEndpointDisabled reads this counter).
    assert REGISTRY.get_sample_value("kangaroo_webhook_endpoints_disabled_total") == disabled_before + 1
    assert REGISTRY.get_sample_value("kangaroo_webhook_deliveries_total", {"outcome": "failed"}) == failed_before + 1
    pending.refresh_from_db()
    assert pending.status == DeliveryStatus.FAILED
    [message] = mail.outbox
    assert message.to == ["owner@a.example"]
    assert endpoint.url in message.body and "停止" in message.body  # the owner's language
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="webhook.disable").count() == 1

    # New events are not queued for a disabled endpoint.
    post_batch(door_a, [event("e2", door_a.entrance)], django_capture_on_commit_callbacks)
    assert WebhookDelivery.objects.for_company(tenant_a.company).count() == 1


def test_a_batch_is_one_job_per_endpoint_and_one_request_per_event(
    tenant_a, door_a, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    endpoint_for(tenant_a, receiver.url)
    endpoint_for(tenant_a, receiver.url + "/second", types=["event.stranger"])
    jobs = []
    real_enqueue = services.enqueue
    monkeypatch.setattr(
        services, "enqueue", lambda func, *args, **kw: (jobs.append(args), real_enqueue(func, *args, **kw))
    )
    post_batch(door_a, [event(f"e{n}", door_a.entrance) for n in range(60)], django_capture_on_commit_callbacks)
    assert len(jobs) == 2
    assert sorted(len(ids) for _, _, ids in jobs) == [60, 60]
    assert len(receiver.requests) == 120
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 120


def test_an_unreachable_endpoint_costs_one_timeout_per_job_not_one_per_message(
    tenant_a, door_a, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.delay = 1.5
    endpoint_for(tenant_a, receiver.url)
    post_batch(door_a, [event(f"e{n}", door_a.entrance) for n in range(5)], django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    sent = list(WebhookDelivery.objects.for_company(tenant_a.company).order_by("id"))
    assert sent[0].attempts == 1 and "timed out" in sent[0].error
    assert [d.attempts for d in sent[1:]] == [0, 0, 0, 0]
    assert {d.next_attempt_at for d in sent} == {sent[0].next_attempt_at}
    assert {d.status for d in sent} == {DeliveryStatus.PENDING}


def test_redirects_are_not_followed(tenant_a, door_a, receiver, django_capture_on_commit_callbacks):
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    endpoint_for(tenant_a, receiver.url)
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    assert sent.response_status == 302 and sent.status == DeliveryStatus.PENDING


def test_one_companys_endpoints_never_receive_anothers_events(
    tenant_a, tenant_b, door_a, door_b, receiver, django_capture_on_commit_callbacks
):
    _, secret_a = endpoint_for(tenant_a, receiver.url + "/a")
    _, secret_b = endpoint_for(tenant_b, receiver.url + "/b")
    ids_a = post_batch(door_a, [event(f"a{n}", door_a.entrance) for n in range(3)], django_capture_on_commit_callbacks)
    ids_b = post_batch(door_b, [event("b0", door_b.entrance)], django_capture_on_commit_callbacks)
    got = {"/hooks/a": [], "/hooks/b": []}
    for request in receiver.requests:
        secret = secret_a if request.path == "/hooks/a" else secret_b
        got[request.path].append(verified(secret, request)["data"]["id"])
    assert sorted(got["/hooks/a"]) == sorted(ids_a) and got["/hooks/b"] == ids_b
    assert set(Event.objects.for_company(tenant_b.company).values_list("id", flat=True)).isdisjoint(got["/hooks/a"])


def test_a_ping_and_a_redelivery_keep_the_same_webhook_id(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_for(tenant_a, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        ping = services.webhook_ping(company=tenant_a.company, actor=tenant_a.admin, endpoint=endpoint)
    assert verified(secret, receiver.requests[0])["type"] == "webhook.ping"
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_redeliver(company=tenant_a.company, actor=tenant_a.admin, delivery=ping)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    ping.refresh_from_db()
    assert ping.attempts == 2 and ping.status == DeliveryStatus.DELIVERED


def test_subject_changes_and_rejected_photos_are_announced(tenant_a, receiver, django_capture_on_commit_callbacks):
    from subjects import services as subject_services
    from subjects.domain_signals import announce_photos_enrolled
    from tests.factories import PhotoFactory

    types = ["subject.created", "subject.updated", "subject.deleted", "photo.rejected"]
    _, secret = endpoint_for(tenant_a, receiver.url, types=types)
    with django_capture_on_commit_callbacks(execute=True):
        subject = subject_services.subject_create(
            company=tenant_a.company, actor=tenant_a.admin, name="陳美玲", job_number="E1", subject_type="employee"
        )
    with django_capture_on_commit_callbacks(execute=True):
        subject_services.subject_update(company=tenant_a.company, actor=tenant_a.admin, subject=subject, title="CTO")
    photo = PhotoFactory(company=tenant_a.company, subject=subject, status="rejected", reason="no_face")
    with django_capture_on_commit_callbacks(execute=True):
        announce_photos_enrolled(company=tenant_a.company, photos=[(photo.pk, subject.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        subject_services.subject_delete(company=tenant_a.company, actor=tenant_a.admin, subject=subject)
    payloads = [verified(secret, request) for request in receiver.requests]
    by_type = {p["type"]: p["data"] for p in payloads}
    assert by_type["subject.created"]["name"] == "陳美玲" and "photos" not in by_type["subject.created"]
    assert by_type["subject.updated"]["title"] == "CTO"
    assert by_type["photo.rejected"] == {
        "id": photo.pk,
        "subject": subject.pk,
        "status": "rejected",
        "reason": "no_face",
    }
    assert by_type["subject.deleted"] == {"id": subject.pk}


def test_a_correction_is_announced(tenant_a, door_a, receiver, django_capture_on_commit_callbacks):
    from events.corrections import event_correct

    _, secret = endpoint_for(tenant_a, receiver.url, types=["event.corrected"])
    [event_id] = post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    person = SubjectFactory(company=tenant_a.company)
    stored = Event.objects.for_company(tenant_a.company).get(pk=event_id)
    with django_capture_on_commit_callbacks(execute=True):
        event_correct(company=tenant_a.company, actor=tenant_a.admin, event=stored, subject=person)
    [request] = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == "event.corrected"
    assert payload["data"]["corrected"] is True and payload["data"]["subject"]["id"] == person.pk


def test_the_body_is_stored_and_sent_byte_for_byte_on_every_attempt(
    tenant_a, door_a, receiver, django_capture_on_commit_callbacks
):
    endpoint_for(tenant_a, receiver.url)
    receiver.statuses = [500]
    post_batch(door_a, [event("e1", door_a.entrance)], django_capture_on_commit_callbacks)
    sweep(timezone.now() + timedelta(minutes=5), django_capture_on_commit_callbacks)
    first, second = receiver.requests
    assert first.body == second.body
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    assert json.loads(sent.body) == json.loads(first.body)


def test_a_box_that_starts_to_lag_is_announced_once_per_spell(
    tenant_a, door_a, receiver, settings, django_capture_on_commit_callbacks
):
    from devices.models import Box
    from integrations.listeners import webhooks_for_lagging_boxes
    from subjects.models import GalleryChange

    settings.GALLERY_LAG_SECONDS = 60
    _, secret = endpoint_for(tenant_a, receiver.url, types=["device.lagging"])
    from subjects import services as subject_services

    subject_services.subject_create(company=tenant_a.company, actor=None, name="P", job_number="E77")
    GalleryChange.objects.for_company(tenant_a.company).update(at=timezone.now() - timedelta(minutes=10))
    Box.objects.for_company(tenant_a.company).filter(pk=door_a.box.pk).update(
        last_seen_at=timezone.now(), gallery_cursor=0
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks_for_lagging_boxes() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks_for_lagging_boxes() == 0  # still the same spell
    [request] = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == "device.lagging"
    assert payload["data"]["id"] == door_a.box.pk and payload["data"]["gallery_lag"]["lagging"] is True


def test_a_device_going_offline_is_announced(tenant_a, door_a, receiver, django_capture_on_commit_callbacks):
    from devices.models import Box
    from devices.services import devices_mark_offline

    _, secret = endpoint_for(tenant_a, receiver.url, types=["device.offline"])
    Box.objects.for_company(tenant_a.company).filter(pk=door_a.box.pk).update(
        recorded_status="online", last_seen_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        devices_mark_offline()
    [request] = receiver.requests
    payload = verified(secret, request)
    assert payload["type"] == "device.offline" and payload["data"]["device_id"] == door_a.box.pk


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_a_batch_waits_as_one_job_per_endpoint_for_a_worker(tenant_a, door_a, receiver, settings):
    import django_rq
    from rq import SimpleWorker

    from tests.conftest import redis_test_url

    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    queue = django_rq.get_queue("default")
    queue.empty()
    _, secret = endpoint_for(tenant_a, receiver.url)
    answer = door_a.box_client().post(
        "/api/v1/device/events", {"events": [event(f"r{n}", door_a.entrance) for n in range(20)]}, format="json"
    )
    assert answer.status_code == 200
    assert [job.func_name for job in queue.jobs].count("integrations.jobs.webhook_deliver") == 1
    assert receiver.requests == []  # nothing is sent in the request
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert len(receiver.requests) == 20
    assert all(verified(secret, request)["type"] == "event.stranger" for request in receiver.requests)
    queue.empty()


def test_the_delivery_log_keeps_its_days_and_pending_messages(tenant_a, settings):
    from integrations.delivery import purge_log
    from tests.factories import WebhookDeliveryFactory

    settings.WEBHOOK_LOG_DAYS = 30
    old, recent, waiting = (
        WebhookDeliveryFactory(company=tenant_a.company, status=s) for s in ("failed", "delivered", "pending")
    )
    WebhookDelivery.objects.for_company(tenant_a.company).filter(pk__in=[old.pk, waiting.pk]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert purge_log() == 1
    assert set(WebhookDelivery.objects.for_company(tenant_a.company).values_list("pk", flat=True)) == {
        recent.pk,
        waiting.pk,
    }


def test_the_log_keeps_no_credential_a_receiver_echoes(
    tenant_a, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    """A receiver may answer with what it got or with the secret it holds (a debugging echo, a
    verbose error page). The log drops the endpoint's secrets and any credential header by
    value, though these look nothing like `whsec_...`: as they are, JSON-escaped, URL-encoded,
    and cut off where the kept part of the answer ends."""
    from base64 import b64encode
    from urllib.parse import quote

    from integrations import outbound, signing

    endpoint, _secret = endpoint_for(tenant_a, receiver.url, types=("event.recognized",))
    current = b64encode(b"\xff\xff\xffthe receiver's own key").decode()  # "////dGhl...="
    previous = b64encode(b"an older key, no longer signing").decode()
    endpoint.secret, endpoint.previous_secret = current, previous
    endpoint.save(update_fields=["secret", "previous_secret"])
    authorization = "Basic aHI6c3VwZXItc2VjcmV0LXBhc3N3b3Jk"
    real_headers = signing.headers
    monkeypatch.setattr(signing, "headers", lambda **kwargs: {**real_headers(**kwargs), "authorization": authorization})
    sent = []

    php_escaped = current.replace("/", "\\/")  # PHP's json_encode writes "/" so

    def echo(url, *, body, headers):
        sent.append(headers)
        excerpt = (
            f'{{"key": "{php_escaped}", "old": "{quote(previous, safe="")}", '
            f'"got": "{headers["authorization"]}"}} expected {current[:20]}'
        )
        return outbound.Answer(401, excerpt, f"refused with {current} and {previous}", 5)

    monkeypatch.setattr(outbound, "post", echo)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_ping(company=tenant_a.company, actor=tenant_a.admin, endpoint=endpoint)
    assert sent and sent[0]["authorization"] == authorization
    logged = WebhookDelivery.objects.for_company(tenant_a.company).get()
    stored = logged.response_excerpt + logged.error
    for credential in (current, previous, authorization, authorization.split()[1], current[:20]):
        for form in (credential, credential.replace("/", "\\/"), quote(credential, safe="")):
            assert form not in stored
    assert logged.response_excerpt.endswith("expected [redacted]")
    assert logged.error == "refused with [redacted] and [redacted]" and logged.response_status == 401
