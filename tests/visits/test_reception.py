"""Reception: the day's expected visitors with their state (admin page and dashboard panel,
by host, in the company's day and zone) and a visit's printable badge with its QR code."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
import segno
from django.test import Client
from django.utils import timezone

from subjects.models import SubjectType
from tests.factories import PhotoFactory, SubjectFactory, VisitFactory
from visits.models import VisitStatus
from visits.reception import qr_svg, visit_for_reference, visit_reference

pytestmark = pytest.mark.django_db


def today_at(company, hour, minute=0):
    zone = company.zone
    day = timezone.localtime(timezone.now(), zone).date()
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@pytest.fixture
def day(tenants):
    """Company A's visits of today in each state, one of yesterday, one of tomorrow; company B's of today."""
    a, b = tenants
    company = a.company
    lin = SubjectFactory(company=company, name="Lin Host", subject_type=SubjectType.EMPLOYEE)
    wang = SubjectFactory(company=company, name="Wang Host", subject_type=SubjectType.EMPLOYEE)

    def visit(name, host, hour, **fields):
        start = today_at(company, hour)
        return VisitFactory(
            company=company, visitor_name=name, host=host, starts_at=start, ends_at=start + timedelta(hours=1), **fields
        )

    rows = {
        "invited": visit("Ada Invited", lin, 9),
        "ready": visit("Bo Ready", lin, 10),
        "arrived": visit("Cy Arrived", wang, 11, arrived_at=today_at(company, 11, 7)),
        "left": visit("Di Left", wang, 12, arrived_at=today_at(company, 12), left_at=today_at(company, 12, 45)),
        "cancelled": visit("Ed Cancelled", lin, 13, status=VisitStatus.CANCELLED),
    }
    PhotoFactory(company=company, subject=rows["ready"].visitor, status="ok")
    PhotoFactory(company=company, subject=rows["invited"].visitor, status="rejected")
    y = today_at(company, 9) - timedelta(days=1)
    VisitFactory(company=company, visitor_name="Yesterday", host=lin, starts_at=y, ends_at=y + timedelta(hours=1))
    t = today_at(company, 9) + timedelta(days=1)
    VisitFactory(company=company, visitor_name="Tomorrow", host=lin, starts_at=t, ends_at=t + timedelta(hours=1))
    other = today_at(b.company, 9)
    VisitFactory(company=b.company, visitor_name="Theirs", starts_at=other, ends_at=other + timedelta(hours=1))
    return {"lin": lin, "wang": wang, **rows}


def states(html: str) -> list[tuple[str, str]]:
    rows = re.findall(r'data-visit="\d+" data-state="(\w+)".*?</(?:tr|li)>', html, re.S)
    names = re.findall(r'data-visit="\d+" data-state="\w+".*?(Ada Invited|Bo Ready|Cy Arrived|Di Left|Ed Cancelled|'
                       r"Yesterday|Tomorrow|Theirs)", html, re.S)  # fmt: skip
    return list(zip(names, rows, strict=True))


def test_the_admin_page_lists_todays_visitors_with_their_state_and_filters_by_host(client, tenant_a, day):
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/visits/visit/today/")
    assert page.status_code == 200
    html = page.content.decode()
    assert states(html) == [
        ("Ada Invited", "invited"), ("Bo Ready", "photo_ready"), ("Cy Arrived", "arrived"),
        ("Di Left", "left"), ("Ed Cancelled", "cancelled"),
    ]  # fmt: skip
    assert "Arrived at 11:07" in html and "Left at 12:45" in html and "Photo ready" in html
    assert "09:00–10:00" in html  # the company's wall clock
    assert "Theirs" not in html and "Yesterday" not in html and "Tomorrow" not in html

    by_host = client.get(f"/admin/visits/visit/today/?host={day['wang'].pk}").content.decode()
    assert [name for name, _state in states(by_host)] == ["Cy Arrived", "Di Left"]
    # The changelist links to it.
    assert "/admin/visits/visit/today/" in client.get("/admin/visits/visit/").content.decode()


def test_the_admin_page_speaks_traditional_chinese(client, tenant_a, day):
    tenant_a.viewer.language = "zh-hant"
    tenant_a.viewer.save()
    client.force_login(tenant_a.viewer)
    html = client.get("/admin/visits/visit/today/", HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert "今日預約訪客" in html and "11:07 已抵達" in html and "已取消" in html and "照片就緒" in html


def test_another_companys_host_filter_shows_nothing_of_theirs(client, tenants, day):
    a, b = tenants
    theirs = SubjectFactory(company=b.company, subject_type=SubjectType.EMPLOYEE)
    client.force_login(a.admin)
    html = client.get(f"/admin/visits/visit/today/?host={theirs.pk}").content.decode()
    assert len(states(html)) == 5  # an unknown host is no filter: the company's own day
    for junk in ("²", "9" * 30, "-1", "x"):
        assert client.get("/admin/visits/visit/today/", {"host": junk}).status_code == 200
        assert client.get("/dashboard/expected-today/", {"host": junk}).status_code == 200


def test_the_dashboard_shows_the_panel_and_its_refresh_answers_the_same(client, tenants, day):
    a, _b = tenants
    client.force_login(a.viewer)
    dashboard = client.get("/dashboard/").content.decode()
    assert 'id="expected-panel"' in dashboard
    assert [n for n, _s in states(dashboard)] == ["Ada Invited", "Bo Ready", "Cy Arrived", "Di Left", "Ed Cancelled"]
    panel = client.get(f"/dashboard/expected-today/?host={day['lin'].pk}")
    assert panel.status_code == 200 and panel["Cache-Control"].startswith("max-age=0")
    assert [n for n, _s in states(panel.content.decode())] == ["Ada Invited", "Bo Ready", "Ed Cancelled"]
    client.logout()
    assert client.get("/dashboard/expected-today/").status_code == 302  # to the login


def test_the_badge_prints_name_company_host_date_and_the_visits_qr_code(client, tenants, day, settings):
    a, b = tenants
    visit = day["arrived"]
    visit.visitor_company = "Acme Taiwan"
    visit.save()
    client.force_login(a.viewer)

    page = client.get(f"/admin/visits/visit/{visit.pk}/badge/")

    assert page.status_code == 200
    html = page.content.decode()
    reference = visit_reference(visit)
    for text in (
        "Cy Arrived",
        "Acme Taiwan",
        "Wang Host",
        timezone.localtime(visit.starts_at, a.company.zone).strftime("%Y-%m-%d 11:00"),
    ):
        assert text in html
    assert "size: 105mm 148mm" in (settings.BASE_DIR / "static/visits/badge.css").read_text()
    # The QR code is the visit's reference, inline (no image request, no CDN), never the link's token.
    assert str(qr_svg(reference)) in html and f'data-reference="{reference}"' in html
    assert segno.make(reference, error="m", micro=False).svg_inline(scale=4, border=2, omitsize=True) in html
    assert visit.link_token_hash not in html and "/visit/" not in html and "<img" not in html
    # The reference finds the visit in its company only; a changed one finds nothing.
    assert visit_for_reference(company=a.company, reference=reference) == visit
    assert visit_for_reference(company=b.company, reference=reference) is None
    forged = reference.replace(f":{visit.pk}:", f":{visit.pk + 1}:")
    assert visit_for_reference(company=a.company, reference=forged) is None
    # Another company's visit has no badge here, and the changelist links each badge.
    theirs = VisitFactory(company=b.company)
    assert client.get(f"/admin/visits/visit/{theirs.pk}/badge/").status_code == 404
    assert f"/admin/visits/visit/{visit.pk}/badge/" in client.get("/admin/visits/visit/").content.decode()


def test_a_visitor_who_declines_the_face_option_shows_so_to_reception_until_they_agree_after_all(client, tenant_a, api):
    from tests.visits.helpers import invite

    visit, token = invite(tenant_a, visitor_name="Fay Declines", starts_at=timezone.now() + timedelta(minutes=30))
    visitor_page = Client()
    visitor_page.post(f"/visit/{token}/", {"action": "decline"})
    visitor_page.post(f"/visit/{token}/", {"action": "decline"})  # twice: the first moment stays
    visit.refresh_from_db()
    first = visit.face_declined_at
    assert first is not None

    client.force_login(tenant_a.viewer)
    for page in ("/admin/visits/visit/today/", "/dashboard/expected-today/"):
        html = client.get(page).content.decode()
        assert f'data-visit="{visit.pk}" data-state="face_declined"' in html, page
        assert "No photo — reception checks in" in html, page
    answer = api(tenant_a.viewer).get(f"/api/v1/visits/{visit.pk}").json()
    assert answer["state"] == "face_declined" and answer["face_declined_at"] is not None
    visit.refresh_from_db()
    assert visit.face_declined_at == first
    tenant_a.viewer.language = "zh-hant"
    tenant_a.viewer.save(update_fields=["language"])
    assert "不使用照片，由櫃檯報到" in client.get("/admin/visits/visit/today/").content.decode()

    # They change their mind and agree: reception waits for their photo again.
    visitor_page.post(f"/visit/{token}/", {"action": "consent", "agree": "1", "policy_version": "1"})
    visit.refresh_from_db()
    assert visit.face_declined_at is None
    assert api(tenant_a.viewer).get(f"/api/v1/visits/{visit.pk}").json()["state"] == "invited"


def test_a_cancelled_visit_offers_no_badge_in_expected_today(client, tenant_a, day):
    client.force_login(tenant_a.admin)
    html = client.get("/admin/visits/visit/today/").content.decode()
    assert f"/admin/visits/visit/{day['cancelled'].pk}/badge/" not in html
    assert f"/admin/visits/visit/{day['arrived'].pk}/badge/" in html
