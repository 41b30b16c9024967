"""No server-side request forgery: a webhook URL must reach public addresses only, checked
when it is saved and again before every request (DNS answers change), the request goes to
the address that was checked, and redirects are never followed."""

from __future__ import annotations

import socket

import pytest

from integrations import delivery, outbound, services
from integrations.models import DeliveryStatus, WebhookDelivery
from kangaroo.errors import KangarooError
from tests.conftest import api_client_for
from tests.factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8000/hook",
    "http://10.0.0.5:6379/",
    "http://172.16.3.4/",
    "http://192.168.1.1/admin",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
    "http://240.0.0.1/",
]


@pytest.fixture
def public_dns(monkeypatch):
    """Names resolve to what the test says (no network): `answers[name] = [addresses]`."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake)
    return answers


@pytest.mark.parametrize("url", REFUSED)
def test_inner_addresses_are_refused_when_saved(tenant_a, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    answer = api_client_for(tenant_a.admin).post(
        "/api/v1/webhooks", {"url": url, "event_types": ["event.stranger"]}, format="json"
    )
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["code"] == "webhook_url_refused"
    assert "url" in answer.json()["error"]["fields"]


def test_other_schemes_and_unresolvable_hosts_are_refused(tenant_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the scheme and the name rules hold regardless
    for url, reason in [("ftp://example.com/x", "scheme"), ("http://no-such-host.invalid/", "unresolvable")]:
        with pytest.raises(KangarooError) as refused:
            services.webhook_url_check(url)
        assert refused.value.code == "webhook_url_refused" and refused.value.extra["reason"] == reason


def test_a_name_with_one_private_address_among_public_ones_is_refused(public_dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    public_dns["mixed.example"] = ["93.184.216.34", "10.1.2.3"]
    with pytest.raises(outbound.UrlRefused) as refused:
        outbound.check_url("https://mixed.example/hook")
    assert refused.value.reason == outbound.PRIVATE_ADDRESS and "10.1.2.3" in refused.value.detail
    public_dns["public.example"] = ["93.184.216.34"]
    assert outbound.check_url("https://public.example/hook").addresses == ("93.184.216.34",)


def test_a_name_that_turns_private_after_saving_is_refused_at_send_time(
    tenant_a, public_dns, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    public_dns["rebind.example"] = ["93.184.216.34"]
    endpoint, _ = services.webhook_endpoint_create(
        company=tenant_a.company,
        actor=tenant_a.admin,
        url=f"http://rebind.example:{receiver.port}/hooks",
        event_types=["event.stranger"],
    )
    public_dns["rebind.example"] = ["127.0.0.1"]  # the attacker's DNS now points inside
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_ping(company=tenant_a.company, actor=tenant_a.admin, endpoint=endpoint)
    sent = WebhookDelivery.objects.for_company(tenant_a.company).get()
    assert receiver.requests == []
    assert sent.error.startswith("refused: private_address") and sent.response_status is None
    assert sent.status == DeliveryStatus.PENDING  # retried: the name may be fixed


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(
    tenant_a, public_dns, receiver, django_capture_on_commit_callbacks
):
    # The name resolves once, to the receiver; the request connects there, naming the host.
    public_dns["hooks.customer.example"] = ["127.0.0.1"]
    endpoint = WebhookEndpointFactory(
        company=tenant_a.company, url=f"http://hooks.customer.example:{receiver.port}/in?team=7"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_ping(company=tenant_a.company, actor=tenant_a.admin, endpoint=endpoint)
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.customer.example:{receiver.port}"
    assert request.path == "/in?team=7"


def test_loopback_is_allowed_only_by_the_setting(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert outbound.check_url("http://127.0.0.1:9/x").addresses == ("127.0.0.1",)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(outbound.UrlRefused):
        outbound.check_url("http://127.0.0.1:9/x")


def test_a_refused_send_does_not_leave_a_claim_behind(tenant_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    endpoint = WebhookEndpointFactory(company=tenant_a.company, url="http://127.0.0.1:9/x")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "enqueue", lambda *a, **k: None)
        ping = services.webhook_ping(company=tenant_a.company, actor=None, endpoint=endpoint)
    delivery.deliver(company_id=tenant_a.company.pk, endpoint_id=endpoint.pk, ids=[ping.pk])
    ping.refresh_from_db()
    assert ping.claim == "" and ping.claimed_until is None and ping.attempts == 1
