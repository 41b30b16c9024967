"""The webhook endpoints and delivery log over the API: admins and owners only, the secret
shown once, every change audited, another company's rows answer 404."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from integrations.models import WebhookEndpoint
from tests.conftest import api_client_for
from tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def create(client, url, **extra):
    return client.post("/api/v1/webhooks", {"url": url, "event_types": ["event.stranger"], **extra}, format="json")


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(tenant_a, receiver):
    client = api_client_for(tenant_a.admin)
    answer = create(client, receiver.url, description="Front desk")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["event.stranger"]
    again = client.get(f"/api/v1/webhooks/{body['id']}").json()
    assert "secret" not in again and again["url"] == receiver.url
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="webhook.create").count() == 1
    stored = WebhookEndpoint.objects.for_company(tenant_a.company).get()
    assert stored.secret == body["secret"]


def test_rotating_answers_the_new_secret_and_keeps_the_old_for_a_day(tenant_a):
    endpoint = WebhookEndpointFactory(company=tenant_a.company)
    old = endpoint.secret
    answer = api_client_for(tenant_a.owner).post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret")
    assert answer.status_code == 200
    assert answer.json()["secret"] != old and answer.json()["previous_secret_until"]
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [answer.json()["secret"], old]


def test_unknown_types_and_no_types_are_refused(tenant_a, receiver):
    client = api_client_for(tenant_a.admin)
    for types in ([], ["event.nope"]):
        answer = client.post("/api/v1/webhooks", {"url": receiver.url, "event_types": types}, format="json")
        assert answer.status_code == 400
        assert all(name.startswith("event_types") for name in answer.json()["error"]["fields"])
    assert not WebhookEndpoint.objects.for_company(tenant_a.company).exists()


def test_viewers_neither_read_nor_write_webhooks(tenant_a):
    """A webhook URL is often a credential (a chat's incoming hook takes whoever knows it):
    viewers see no endpoint and no delivery (the admin's pages: test_webhook_admin.py)."""
    endpoint = WebhookEndpointFactory(company=tenant_a.company)
    sent = WebhookDeliveryFactory(company=tenant_a.company, endpoint=endpoint)
    client = api_client_for(tenant_a.viewer)
    for url in ("/api/v1/webhooks", f"/api/v1/webhooks/{endpoint.pk}", "/api/v1/webhook-deliveries",
                f"/api/v1/webhook-deliveries/{sent.pk}"):  # fmt: skip
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert refused.json()["error"]["code"] == "permission_denied"
        assert endpoint.url not in refused.content.decode()
    assert create(client, "https://example.com/x").status_code == 403
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/ping").status_code == 403
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret").status_code == 403
    assert client.post(f"/api/v1/webhook-deliveries/{sent.pk}/redeliver").status_code == 403
    admin = api_client_for(tenant_a.admin)
    assert admin.get(f"/api/v1/webhooks/{endpoint.pk}").status_code == 200
    assert admin.get("/api/v1/webhook-deliveries").json()["results"][0]["id"] == sent.pk


def test_turning_an_endpoint_back_on_forgets_its_failures(tenant_a):
    from django.utils import timezone

    endpoint = WebhookEndpointFactory(
        company=tenant_a.company, is_active=False, failing_since=timezone.now(), disabled_at=timezone.now()
    )
    answer = api_client_for(tenant_a.admin).patch(f"/api/v1/webhooks/{endpoint.pk}", {"is_active": True}, format="json")
    assert answer.status_code == 200
    assert answer.json()["failing_since"] is None and answer.json()["disabled_at"] is None


def test_the_delivery_log_lists_filters_and_redelivers(tenant_a, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(company=tenant_a.company, url=receiver.url)
    other = WebhookEndpointFactory(company=tenant_a.company)
    failed = WebhookDeliveryFactory(company=tenant_a.company, endpoint=endpoint, status="failed")
    WebhookDeliveryFactory(company=tenant_a.company, endpoint=other)
    client = api_client_for(tenant_a.admin)
    listed = client.get(f"/api/v1/webhook-deliveries?endpoint={endpoint.pk}").json()["results"]
    assert [d["id"] for d in listed] == [failed.pk]
    assert listed[0]["body"]["type"] == "event.recognized"
    assert client.get("/api/v1/webhook-deliveries?status=failed").json()["count"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/v1/webhook-deliveries/{failed.pk}/redeliver")
    assert answer.status_code == 202
    assert client.get(f"/api/v1/webhook-deliveries/{failed.pk}").json()["status"] == "delivered"
    [request] = receiver.requests
    assert request.headers["webhook-id"] == failed.message_id


def test_a_ping_answers_its_delivery(tenant_a, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(company=tenant_a.company, url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_client_for(tenant_a.admin).post(f"/api/v1/webhooks/{endpoint.pk}/ping")
    assert answer.status_code == 202 and answer.json()["event_type"] == "webhook.ping"
    assert len(receiver.requests) == 1


def test_another_companys_endpoints_and_deliveries_answer_404(tenant_a, tenant_b):
    endpoint = WebhookEndpointFactory(company=tenant_b.company)
    sent = WebhookDeliveryFactory(company=tenant_b.company, endpoint=endpoint)
    client = api_client_for(tenant_a.admin)
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}").status_code == 404
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/ping").status_code == 404
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}").status_code == 404
    assert client.post(f"/api/v1/webhook-deliveries/{sent.pk}/redeliver").status_code == 404
    assert client.get("/api/v1/webhooks").json()["count"] == 0
    assert client.get(f"/api/v1/webhook-deliveries?endpoint={endpoint.pk}").json()["count"] == 0


def test_deleting_an_endpoint_deletes_its_log_and_is_audited(tenant_a):
    endpoint = WebhookEndpointFactory(company=tenant_a.company)
    WebhookDeliveryFactory(company=tenant_a.company, endpoint=endpoint)
    assert api_client_for(tenant_a.admin).delete(f"/api/v1/webhooks/{endpoint.pk}").status_code == 204
    assert not WebhookEndpoint.objects.for_company(tenant_a.company).exists()
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="webhook.delete").count() == 1
