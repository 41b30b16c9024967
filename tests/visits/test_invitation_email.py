"""The invitation e-mail: the visit's language, the company's time, the host's name, the
address the owner set (when there is one), HTML and text, and a link that works until the
visit ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from subjects.models import SubjectType
from tests.factories import SubjectFactory
from tests.visits.helpers import invite, token_in
from visits.selectors import visit_get_by_token

pytestmark = pytest.mark.django_db

TAIPEI = ZoneInfo("Asia/Taipei")


@pytest.fixture
def host(tenant_a):
    return SubjectFactory(company=tenant_a.company, name="林志明", subject_type=SubjectType.EMPLOYEE)


def next_year(hour: int) -> datetime:
    return datetime(timezone.now().year + 1, 3, 4, hour, 30, tzinfo=TAIPEI)


def test_the_english_invitation_names_the_time_in_the_companys_zone_the_host_and_the_link(tenant_a, host):
    visit, token = invite(tenant_a, host=host, purpose="Contract review", starts_at=next_year(14),
                          ends_at=next_year(16))  # fmt: skip
    [message] = mail.outbox
    year = visit.starts_at.year
    assert message.subject == f"Your visit to Company A on {year}-03-04 14:30"
    assert "林志明 of Company A has invited you." in message.body
    assert f"{year}-03-04 14:30 – {year}-03-04 16:30 (Asia/Taipei)" in message.body
    assert "Purpose: Contract review" in message.body
    assert f"works until {year}-03-04 16:30" in message.body
    assert "Where" not in message.body  # the company has no address
    assert f"http://127.0.0.1:8000/visit/{token}/" in message.body
    [(html, kind)] = message.alternatives
    assert '<html lang="en">' in html
    assert kind == "text/html" and f'href="http://127.0.0.1:8000/visit/{token}/"' in html
    assert "林志明 of Company A has invited you." in html and "Where" not in html
    assert visit_get_by_token(token=token) == visit


def test_the_chinese_invitation_is_in_traditional_chinese(tenant_a, host):
    tenant_a.company.address = "台北市信義區信義路五段 7 號"
    tenant_a.company.save(update_fields=["address"])
    _visit, token = invite(tenant_a, host=host, language="zh-hant", purpose="簽約", starts_at=next_year(9),
                           ends_at=next_year(11))  # fmt: skip
    [message] = mail.outbox
    assert message.subject.startswith("您於 ") and "拜訪 Company A" in message.subject
    assert "Company A 的 林志明 邀請您來訪。" in message.body
    assert "時間" in message.body and "Asia/Taipei" in message.body
    # Chinese labels take a full-width colon, as Chinese writes it; English keeps its own.
    assert "時間：" in message.body and "時間:" not in message.body
    assert "地點：台北市信義區信義路五段 7 號" in message.body and "目的：簽約" in message.body
    assert "僅供您本人使用" in message.alternatives[0][0]
    assert '<html lang="zh-hant">' in message.alternatives[0][0]  # mail readers pick fonts and voices by it
    assert token_in(message) == token


def test_the_address_the_owner_sets_appears_in_the_invitation_and_on_the_page(api, client, tenant_a, tenant_b, host):
    """Where to come: set once in the company's settings, shown to every visitor."""
    address = "台北市信義區信義路五段 7 號 35 樓\nReception on the left"
    answer = api(tenant_a.owner).patch("/api/v1/company", {"address": address}, format="json")
    assert (answer.status_code, answer.json()["address"]) == (200, address)
    assert api(tenant_b.owner).get("/api/v1/company").json()["address"] == ""
    invite(tenant_a, host=host)
    [message] = mail.outbox
    assert "Where: 台北市信義區信義路五段 7 號 35 樓\nReception on the left" in message.body
    html = message.alternatives[0][0]
    assert "台北市信義區信義路五段 7 號 35 樓<br>Reception on the left" in html
    page = client.get(f"/visit/{token_in(message)}/").content.decode()
    assert "台北市信義區信義路五段 7 號 35 樓<br>Reception on the left" in page


def test_only_owners_set_the_address_and_it_has_a_bound(api, tenant_a):
    assert api(tenant_a.admin).patch("/api/v1/company", {"address": "x"}, format="json").status_code == 403
    refused = api(tenant_a.owner).patch("/api/v1/company", {"address": "x" * 501}, format="json")
    assert (refused.status_code, list(refused.json()["error"]["fields"])) == (400, ["address"])


def test_a_visit_without_a_host_is_invited_by_the_company(tenant_a):
    invite(tenant_a, starts_at=timezone.now() + timedelta(hours=2))
    assert "Company A has invited you." in mail.outbox[0].body
