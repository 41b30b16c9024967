"""Inviting from the admin: owners and admins through the same service, viewers read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone

from subjects.models import Subject, SubjectType
from tests.factories import SubjectFactory, VisitFactory
from visits.models import Visit, VisitStatus

pytestmark = pytest.mark.django_db


def form_data(host, start):
    local = timezone.localtime(start, host.company.zone)
    end = local + timedelta(hours=2)
    return {
        "visitor_name": "Mei Chen",
        "visitor_email": "mei@example.org",
        "visitor_phone": "",
        "visitor_company": "Acme",
        "purpose": "Contract review",
        "host": host.pk,
        "language": "zh-hant",
        "starts_at_0": local.strftime("%Y-%m-%d"),
        "starts_at_1": local.strftime("%H:%M:%S"),
        "ends_at_0": end.strftime("%Y-%m-%d"),
        "ends_at_1": end.strftime("%H:%M:%S"),
    }


def test_an_admin_invites_from_the_admin_and_the_visitor_gets_the_mail(tenant_a, client):
    host = SubjectFactory(company=tenant_a.company, subject_type=SubjectType.EMPLOYEE)
    client.force_login(tenant_a.admin)
    start = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)

    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        page = client.post("/admin/visits/visit/add/", form_data(host, start))

    assert page.status_code == 302, page.content.decode()[:2000]
    visit = Visit.objects.get()
    assert (visit.company, visit.invited_by, visit.host, visit.language) == (
        tenant_a.company, tenant_a.admin, host, "zh-hant",
    )  # fmt: skip
    assert visit.starts_at == start
    assert visit.visitor.subject_type == SubjectType.VISITOR
    assert [m.to for m in mail.outbox] == [["mei@example.org"]]


def test_the_admin_form_shows_the_services_refusal_in_place(tenant_a, client):
    host = SubjectFactory(company=tenant_a.company, subject_type=SubjectType.EMPLOYEE)
    client.force_login(tenant_a.owner)
    data = form_data(host, timezone.now() + timedelta(days=1))
    data["visitor_email"] = host.email  # an employee's address

    page = client.post("/admin/visits/visit/add/", data)

    assert page.status_code == 200
    assert "belongs to an employee or VIP" in page.content.decode()
    assert not Visit.objects.exists()


def test_the_admin_invites_a_known_visitor_again_and_the_form_says_it_will(tenant_a, client):
    host = SubjectFactory(company=tenant_a.company, subject_type=SubjectType.EMPLOYEE)
    client.force_login(tenant_a.admin)
    page = client.get("/admin/visits/visit/add/")
    assert "gets this visit too, and keeps their photo and consent" in page.content.decode()

    for days in (1, 8):
        start = (timezone.now() + timedelta(days=days)).replace(second=0, microsecond=0)
        with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
            page = client.post("/admin/visits/visit/add/", form_data(host, start))
        assert page.status_code == 302, page.content.decode()[:2000]

    [visitor] = Subject.objects.for_company(tenant_a.company).filter(subject_type=SubjectType.VISITOR)
    assert Visit.objects.for_company(tenant_a.company).filter(visitor=visitor).count() == 2
    assert [m.to for m in mail.outbox] == [["mei@example.org"]] * 2


def test_a_viewer_reads_visits_but_cannot_invite_or_cancel(tenant_a, client):
    visit = VisitFactory(company=tenant_a.company)
    client.force_login(tenant_a.viewer)
    assert client.get("/admin/visits/visit/").status_code == 200
    assert client.get("/admin/visits/visit/add/").status_code == 403
    client.post("/admin/visits/visit/", {"action": "cancel_visits", "_selected_action": [visit.pk]})
    visit.refresh_from_db()
    assert visit.status == VisitStatus.INVITED


def test_the_cancel_action_cancels_only_the_companys_own_visits(tenants, client):
    a, b = tenants
    ours, theirs = VisitFactory(company=a.company), VisitFactory(company=b.company)
    client.force_login(a.admin)

    client.post("/admin/visits/visit/", {"action": "cancel_visits", "_selected_action": [ours.pk, theirs.pk]})

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.status, theirs.status) == (VisitStatus.CANCELLED, VisitStatus.INVITED)
    assert client.get(f"/admin/visits/visit/{theirs.pk}/change/").status_code == 404


def test_the_host_filter_and_the_host_choices_list_employees_only(tenants, client):
    a, b = tenants
    host = SubjectFactory(company=a.company, name="Employee Host", subject_type=SubjectType.EMPLOYEE)
    visitor = SubjectFactory(company=a.company, name="Some Visitor", subject_type=SubjectType.VISITOR)
    vip = SubjectFactory(company=a.company, name="Some VIP", subject_type=SubjectType.VIP)
    SubjectFactory(company=b.company, name="Their Employee", subject_type=SubjectType.EMPLOYEE)
    VisitFactory(company=a.company, visitor=visitor, visitor_name="Some Visitor", host=host)
    client.force_login(a.admin)

    listing = client.get("/admin/visits/visit/").content.decode()
    host_filter = listing[listing.index('id="changelist-filter"') :]
    assert f"host__id__exact={host.pk}" in host_filter
    for other in (visitor, vip):
        assert f"host__id__exact={other.pk}" not in host_filter
    assert "Their Employee" not in host_filter

    form = client.get("/admin/visits/visit/add/").content.decode()
    choices = form[form.index('name="host"') : form.index("</select>", form.index('name="host"'))]
    assert f'value="{host.pk}"' in choices
    assert f'value="{visitor.pk}"' not in choices and f'value="{vip.pk}"' not in choices
    # A visitor's id posted anyway is refused in place, with the service's code.
    data = form_data(host, timezone.now() + timedelta(days=1)) | {"host": visitor.pk}
    page = client.post("/admin/visits/visit/add/", data)
    assert page.status_code == 200 and not Visit.objects.filter(visitor_name="Mei Chen").exists()
    assert page.context["adminform"].form.errors.as_data()["host"][0].code == "invalid_choice"


@pytest.mark.parametrize(("language", "expected"), [("en", "en"), ("zh-hant", "zh-hant")])
def test_the_add_form_starts_in_the_admins_language(tenant_a, client, language, expected):
    tenant_a.admin.language = language
    tenant_a.admin.save(update_fields=["language"])
    client.force_login(tenant_a.admin)
    form = client.get("/admin/visits/visit/add/").context["adminform"].form
    assert form.initial["language"] == expected
    assert f'<option value="{expected}" selected>' in client.get("/admin/visits/visit/add/").content.decode()


def test_the_add_form_follows_the_browser_when_the_admin_has_no_setting(tenant_a, client):
    assert tenant_a.admin.language == ""
    client.force_login(tenant_a.admin)
    page = client.get("/admin/visits/visit/add/", HTTP_ACCEPT_LANGUAGE="zh-TW,zh;q=0.9")
    assert page.context["adminform"].form.initial["language"] == "zh-hant"
    page = client.get("/admin/visits/visit/add/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.context["adminform"].form.initial["language"] == "en"


def test_the_zone_note_is_under_the_start_only_while_both_fields_name_their_zone(tenant_a, client):
    client.force_login(tenant_a.admin)
    html = client.get("/admin/visits/visit/add/").content.decode()
    start, end = html.index('name="starts_at_0"'), html.index('name="ends_at_0"')
    assert html.count('class="zone-note"') == 1
    assert start < html.index('class="zone-note"') < end
    assert html.count('class="time-zone"') == 2  # each field still says which zone a typed time means


def test_the_list_shows_the_state_in_words_and_no_badge_for_a_cancelled_visit(tenant_a, client):
    company = tenant_a.company
    start = timezone.now() + timedelta(hours=1)
    open_visit = VisitFactory(company=company, visitor_name="Open Visit", starts_at=start, visitor_company="Acme")
    cancelled = VisitFactory(company=company, visitor_name="Called Off", starts_at=start, status=VisitStatus.CANCELLED)
    declined = VisitFactory(company=company, visitor_name="No Face", starts_at=start, face_declined_at=timezone.now())
    client.force_login(tenant_a.viewer)

    html = client.get("/admin/visits/visit/").content.decode()

    assert f"/admin/visits/visit/{open_visit.pk}/badge/" in html
    assert f"/admin/visits/visit/{cancelled.pk}/badge/" not in html
    assert '<span class="visit-state state-face_declined">No photo — reception checks in</span>' in html
    assert '<span class="visit-state state-cancelled">Cancelled</span>' in html
    assert "Open Visit<br><small" in html and ">Acme</small>" in html
    # The visit's own page: the state, and "Print badge" only for a visit that is not cancelled.
    page = client.get(f"/admin/visits/visit/{declined.pk}/change/").content.decode()
    assert "No photo — reception checks in" in page and f"/admin/visits/visit/{declined.pk}/badge/" in page
    page = client.get(f"/admin/visits/visit/{cancelled.pk}/change/").content.decode()
    assert "Cancelled" in page and "/badge/" not in page


def test_a_cancelled_visits_badge_address_says_why_there_is_none(tenant_a, client):
    cancelled = VisitFactory(company=tenant_a.company, visitor_name="Called Off", status=VisitStatus.CANCELLED)
    client.force_login(tenant_a.viewer)
    page = client.get(f"/admin/visits/visit/{cancelled.pk}/badge/")
    assert page.status_code == 409
    html = page.content.decode()
    assert "No badge for a cancelled visit" in html and "Called Off" in html and "<svg" not in html
    tenant_a.viewer.language = "zh-hant"
    tenant_a.viewer.save(update_fields=["language"])
    assert "已取消的來訪不列印識別證" in client.get(f"/admin/visits/visit/{cancelled.pk}/badge/").content.decode()
