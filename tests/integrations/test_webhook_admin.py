"""The webhook admin: admins and owners add endpoints (secret shown once), ping, rotate, and
redeliver from the delivery log; viewers see none of it; a refused URL is a form error."""

from __future__ import annotations

import pytest

from integrations.models import WebhookDelivery, WebhookEndpoint
from tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin_client_for, tenant_a, receiver):
    client = admin_client_for(tenant_a.admin)
    response = client.post(
        "/admin/integrations/webhookendpoint/add/",
        {
            "url": receiver.url,
            "description": "Chat",
            "event_types": ["event.stranger", "device.offline"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    endpoint = WebhookEndpoint.objects.for_company(tenant_a.company).get()
    assert endpoint.event_types == ["event.stranger", "device.offline"]
    assert endpoint.secret in client.get(response["Location"]).content.decode()
    assert endpoint.secret not in client.get(response["Location"]).content.decode()


def test_a_refused_url_is_a_form_error(admin_client_for, tenant_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = admin_client_for(tenant_a.admin).post(
        "/admin/integrations/webhookendpoint/add/",
        {"url": "http://169.254.169.254/", "event_types": ["event.stranger"], "is_active": "on"},
    )
    assert response.status_code == 200
    assert "url" in response.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.for_company(tenant_a.company).exists()


def test_ping_and_redeliver_actions(admin_client_for, tenant_a, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(company=tenant_a.company, url=receiver.url)
    client = admin_client_for(tenant_a.admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/integrations/webhookendpoint/",
            {"action": "send_test_ping", "_selected_action": [endpoint.pk]},
        )
    assert len(receiver.requests) == 1
    failed = WebhookDeliveryFactory(company=tenant_a.company, endpoint=endpoint, status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/integrations/webhookdelivery/", {"action": "redeliver", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "delivered" and len(receiver.requests) == 2
    page = client.get("/admin/integrations/webhookdelivery/").content.decode()
    assert "webhook.ping" in page


def test_viewers_see_no_webhook_page_and_neither_add_nor_redeliver(admin_client_for, tenant_a):
    """A webhook URL is often a credential: the pages are for admins and owners."""
    endpoint = WebhookEndpointFactory(company=tenant_a.company)
    failed = WebhookDeliveryFactory(company=tenant_a.company, endpoint=endpoint, status="failed")
    client = admin_client_for(tenant_a.viewer)
    index = client.get("/admin/").content.decode()
    assert "/admin/integrations/webhookendpoint/" not in index
    assert "/admin/integrations/webhookdelivery/" not in index
    pages = ["webhookendpoint/", f"webhookendpoint/{endpoint.pk}/change/", "webhookendpoint/add/"]
    pages += ["webhookdelivery/", f"webhookdelivery/{failed.pk}/change/"]
    for page in pages:
        assert client.get(f"/admin/integrations/{page}").status_code == 403, page
    client.post("/admin/integrations/webhookdelivery/", {"action": "redeliver", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "failed"
    assert endpoint.url in admin_client_for(tenant_a.admin).get("/admin/integrations/webhookendpoint/").content.decode()


def test_another_companys_endpoint_answers_404_in_the_admin(admin_client_for, tenant_a, tenant_b):
    endpoint = WebhookEndpointFactory(company=tenant_b.company)
    sent = WebhookDeliveryFactory(company=tenant_b.company, endpoint=endpoint)
    client = admin_client_for(tenant_a.admin)
    assert client.get(f"/admin/integrations/webhookendpoint/{endpoint.pk}/change/").status_code == 404
    assert client.get(f"/admin/integrations/webhookdelivery/{sent.pk}/change/").status_code == 404
    assert WebhookDelivery.objects.for_company(tenant_b.company).count() == 1
