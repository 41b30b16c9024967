"""Password reset by e-mail from the admin login page."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def request_reset(client, email):
    return client.post("/admin/password_reset/", {"email": email})


def test_the_admin_login_page_links_to_the_reset_page(client):
    assert b"/admin/password_reset/" in client.get("/admin/login/").content


def test_it_mails_a_link_in_text_and_html_that_sets_a_new_password(client, tenant_a):
    response = request_reset(client, tenant_a.owner.email)
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [tenant_a.owner.email]
    assert "Kangaroo" in message.subject
    html = {mimetype: body for body, mimetype in message.alternatives}["text/html"]
    link = re.search(r"https?://testserver(/reset/\S+/)", message.body).group(1)
    assert link in html
    form = client.get(link, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "Fresh-passphrase-77", "new_password2": "Fresh-passphrase-77"}
    )
    assert done.status_code == 302
    tenant_a.owner.refresh_from_db()
    assert tenant_a.owner.check_password("Fresh-passphrase-77")


def test_known_and_unknown_addresses_get_the_same_answer(client, tenant_a):
    known = request_reset(client, tenant_a.owner.email)
    unknown = request_reset(client, "nobody@example.com")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(mail.outbox) == 1


def test_a_mail_server_failure_gives_the_same_answer(client, tenant_a, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    failing = request_reset(client, tenant_a.owner.email)
    unknown = request_reset(client, "nobody@example.com")
    assert (failing.status_code, failing["Location"]) == (unknown.status_code, unknown["Location"])
    assert "Failed to send password reset email" in caplog.text  # logged for the operators


def test_the_link_stops_working_after_the_configured_lifetime(client, tenant_a, settings, monkeypatch):
    assert settings.PASSWORD_RESET_TIMEOUT == 2 * 60 * 60
    request_reset(client, tenant_a.owner.email)
    link = re.search(r"https?://testserver(/reset/\S+/)", mail.outbox[0].body).group(1)
    real_now = default_token_generator._now()
    monkeypatch.setattr(
        type(default_token_generator),
        "_now",
        lambda self: real_now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 5),
    )
    page = client.get(link, follow=True)
    assert b"new_password1" not in page.content  # "the link was invalid" page instead of the form
    tenant_a.owner.refresh_from_db()
    assert tenant_a.owner.check_password(PASSWORD)


def test_reset_mails_are_limited_per_address_with_the_same_answer(client, tenant_a, settings):
    answers = {
        (r.status_code, r["Location"])
        for r in (
            client.post("/admin/password_reset/", {"email": tenant_a.owner.email}, REMOTE_ADDR=f"10.5.0.{n}")
            for n in range(20)
        )
    }
    assert len(mail.outbox) == settings.PASSWORD_RESET_LIMIT  # from any number of client addresses
    unknown = client.post("/admin/password_reset/", {"email": "nobody@example.com"}, REMOTE_ADDR="10.5.1.1")
    assert answers == {(unknown.status_code, unknown["Location"])}  # one answer for all of them
    # Another address is not affected by the first one's limit.
    client.post("/admin/password_reset/", {"email": tenant_a.admin.email}, REMOTE_ADDR="10.5.1.2")
    assert mail.outbox[-1].to == [tenant_a.admin.email]


def test_reset_mails_are_limited_per_client_address(client, tenant_a, settings):
    from tests.factories import UserFactory

    users = [UserFactory(company=tenant_a.company) for _ in range(settings.PASSWORD_RESET_CLIENT_LIMIT + 5)]
    answers = {
        (r.status_code, r["Location"])
        for r in (client.post("/admin/password_reset/", {"email": u.email}, REMOTE_ADDR="10.6.0.1") for u in users)
    }
    assert len(answers) == 1
    assert len(mail.outbox) == settings.PASSWORD_RESET_CLIENT_LIMIT
    client.post("/admin/password_reset/", {"email": users[-1].email}, REMOTE_ADDR="10.6.0.2")
    assert mail.outbox[-1].to == [users[-1].email]
