"""Inviting a visitor: the visit, its visitor subject at the doors, the invitation and its
personal link; cancelling, re-sending, revoking; the arrival mark; erasure."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditLog
from kangaroo.errors import KangarooError
from subjects import services as subject_services
from subjects.models import Photo, PhotoStatus, Subject, SubjectType
from subjects.selectors import consent_in_force
from tests.factories import ConsentFactory, PhotoFactory, SubjectFactory
from tests.visits.helpers import invite, run_at_commit, token_in
from visits import services
from visits.models import Visit, VisitStatus
from visits.selectors import visit_get_by_token, visit_state
from visits.services import visit_token_hash

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(tenant_a):
    return SubjectFactory(company=tenant_a.company, name="Lin Chih-ming", subject_type=SubjectType.EMPLOYEE)


def test_an_invitation_creates_the_visitor_at_the_doors_and_mails_a_working_link(tenant_a, host):
    visit, token = invite(tenant_a, host=host, purpose="Contract review", visitor_company="Acme")

    visitor = visit.visitor
    assert (visitor.subject_type, visitor.name, visitor.email, visitor.host) == (
        SubjectType.VISITOR, "Mei Chen", "mei@example.org", host,
    )  # fmt: skip
    assert (visitor.visit_start, visitor.visit_end) == (visit.starts_at, visit.ends_at)
    assert (visit.status, visit.invited_by, visit.host) == (VisitStatus.INVITED, tenant_a.admin, host)
    assert visit.invitation_sent_at is not None
    [message] = mail.outbox
    assert message.to == ["mei@example.org"]
    assert len(token) == 43  # 32 random bytes
    # Only a hash is stored; the link in the mail opens this visit.
    assert visit.link_token_hash == visit_token_hash(token) != token
    assert not Visit.objects.filter(link_token_hash=token).exists()
    assert visit_get_by_token(token=token) == visit
    assert AuditLog.objects.filter(action="visit.create", object_id=str(visit.pk)).exists()


def test_a_returning_visitor_keeps_their_subject_and_the_doors_follow_the_next_visit(tenant_a, host):
    later = timezone.now() + timedelta(days=7)
    second, _ = invite(tenant_a, host=host, starts_at=later, ends_at=later + timedelta(hours=1))
    first, _ = invite(tenant_a, host=host, visitor_email="MEI@example.org", visitor_phone="0912 345 678")

    assert first.visitor_id == second.visitor_id
    assert Subject.objects.filter(company=tenant_a.company, subject_type=SubjectType.VISITOR).count() == 1
    visitor = Subject.objects.get(pk=first.visitor_id)
    assert (visitor.visit_start, visitor.visit_end, visitor.phone) == (first.starts_at, first.ends_at, "0912 345 678")
    # The first visit cancelled: the doors now expect them for the second one.
    services.visit_cancel(company=tenant_a.company, actor=tenant_a.owner, visit=first)
    visitor.refresh_from_db()
    assert (visitor.visit_start, visitor.visit_end) == (second.starts_at, second.ends_at)


def test_cancelling_the_only_visit_closes_the_window_and_kills_the_link(tenant_a, host):
    visit, token = invite(tenant_a, host=host, starts_at=timezone.now() - timedelta(minutes=5))

    services.visit_cancel(company=tenant_a.company, actor=tenant_a.admin, visit=visit)

    visit.refresh_from_db()
    assert visit.status == VisitStatus.CANCELLED
    assert visit_get_by_token(token=token) is None
    assert Subject.objects.get(pk=visit.visitor_id).visit_state() == "expired"
    # Again: nothing changes, no error.
    assert services.visit_cancel(company=tenant_a.company, actor=tenant_a.admin, visit=visit).status == "cancelled"
    with pytest.raises(KangarooError) as refused:
        services.visit_invitation_resend(company=tenant_a.company, actor=tenant_a.admin, visit=visit)
    assert refused.value.code == "visit_cancelled"


def test_resending_the_invitation_mails_a_new_link_and_the_old_one_dies(tenant_a, host):
    visit, old = invite(tenant_a, host=host)

    run_at_commit(services.visit_invitation_resend, company=tenant_a.company, actor=tenant_a.admin, visit=visit)

    assert len(mail.outbox) == 2
    new = token_in(mail.outbox[-1])
    assert new != old
    assert visit_get_by_token(token=old) is None
    assert visit_get_by_token(token=new) == visit


def test_a_revoked_link_is_dead_and_an_issued_one_works_once_shown(tenant_a, host):
    visit, token = invite(tenant_a, host=host)

    services.visit_link_revoke(company=tenant_a.company, actor=tenant_a.admin, visit=visit)
    services.visit_link_revoke(company=tenant_a.company, actor=tenant_a.admin, visit=visit)  # idempotent
    assert visit_get_by_token(token=token) is None
    assert AuditLog.objects.filter(action="visit.link_revoke", object_id=str(visit.pk)).count() == 1

    issued = services.visit_link_issue(company=tenant_a.company, actor=tenant_a.admin, visit=visit)
    assert visit_get_by_token(token=issued) == visit
    assert visit_get_by_token(token=token) is None


def test_a_visitor_with_only_a_phone_gets_no_mail_and_a_link_to_hand_over(tenant_a, host):
    visit, token = invite(tenant_a, host=host, visitor_email="", visitor_phone="+886 2 1234 5678")

    assert token is None and mail.outbox == [] and visit.invitation_sent_at is None
    issued = services.visit_link_issue(company=tenant_a.company, actor=tenant_a.admin, visit=visit)
    assert visit_get_by_token(token=issued) == visit
    with pytest.raises(KangarooError) as refused:
        services.visit_invitation_resend(company=tenant_a.company, actor=tenant_a.admin, visit=visit)
    assert refused.value.code == "visit_no_email"


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"visitor_name": "  "}, "validation_error", "visitor_name"),
        ({"visitor_email": "not-an-address"}, "validation_error", "visitor_email"),
        ({"visitor_email": "", "visitor_phone": ""}, "visit_contact_required", "visitor_email"),
        ({"language": "fr"}, "validation_error", "language"),
        ({"ends_at": "start"}, "visit_window_invalid", "ends_at"),
        ({"starts_at": "past", "ends_at": "past-end"}, "visit_in_past", "ends_at"),
        ({"starts_at": "naive"}, "validation_error", "starts_at"),
    ],
)
def test_a_bad_invitation_is_refused_with_its_code_and_writes_nothing(tenant_a, host, fields, code, field):
    start = timezone.now() + timedelta(hours=1)
    values = {
        "start": start,
        "past": timezone.now() - timedelta(hours=3),
        "past-end": timezone.now() - timedelta(hours=1),
        "naive": datetime(2030, 1, 1, 9, 0),
    }
    data = {
        "visitor_name": "Mei Chen", "visitor_email": "mei@example.org", "host": host,
        "starts_at": start, "ends_at": start + timedelta(hours=1),
    }  # fmt: skip
    data.update({key: values.get(value, value) for key, value in fields.items()})
    with pytest.raises(KangarooError) as refused:
        services.visit_create(company=tenant_a.company, actor=tenant_a.admin, **data)
    assert (refused.value.code, list(refused.value.fields)) == (code, [field])
    assert not Visit.objects.exists()
    assert not Subject.objects.filter(subject_type=SubjectType.VISITOR).exists()
    assert mail.outbox == []


def test_an_employees_email_is_not_taken_for_a_visitor(tenant_a, host):
    with pytest.raises(KangarooError) as refused:
        invite(tenant_a, host=host, visitor_email=host.email.upper())
    assert refused.value.code == "visit_email_not_visitor"
    assert not Visit.objects.exists()


def test_a_second_invitation_by_another_host_goes_to_the_same_visitor_with_their_face_and_consent(tenant_a, host):
    """Two hosts invite one guest on different days: one visitor, two visits, and the face
    the guest enrolled for the first stays for the second (the doors keep recognising them)."""
    first, _ = invite(tenant_a, host=host, visitor_name="Mei Chen", visitor_phone="0912 000 000")
    visitor = first.visitor
    ConsentFactory(company=tenant_a.company, subject=visitor)
    photo = PhotoFactory(company=tenant_a.company, subject=visitor, status=PhotoStatus.OK)
    other_host = SubjectFactory(company=tenant_a.company, subject_type=SubjectType.EMPLOYEE)
    later = timezone.now() + timedelta(days=3)

    second, token = invite(
        tenant_a, host=other_host, visitor_name="Chen Mei", visitor_email="Mei@Example.org",
        starts_at=later, ends_at=later + timedelta(hours=1),
    )  # fmt: skip

    assert second.visitor_id == visitor.pk and second.pk != first.pk
    assert token is not None  # the second invitation went out, with its own link
    assert list(Subject.objects.for_company(tenant_a.company).filter(subject_type=SubjectType.VISITOR)) == [visitor]
    assert list(Photo.objects.for_company(tenant_a.company).filter(subject=visitor)) == [photo]
    assert consent_in_force(company=tenant_a.company, subject=visitor) is not None
    assert visit_state(Visit.objects.get(pk=second.pk)) == "photo_ready"
    visitor.refresh_from_db()
    # The latest invitation's name; the phone it left blank and the address stay as they were.
    assert (visitor.name, visitor.phone, visitor.email) == ("Chen Mei", "0912 000 000", "mei@example.org")
    # Each visit keeps what its host typed, and the doors expect the earlier visit first.
    assert (first.visitor_name, second.visitor_name) == ("Mei Chen", "Chen Mei")
    assert second.visitor_email == "Mei@Example.org"
    assert (visitor.visit_start, visitor.visit_end, visitor.host) == (first.starts_at, first.ends_at, host)
    assert AuditLog.objects.filter(action="subject.create").count() == 1


@pytest.mark.parametrize("kind", [SubjectType.EMPLOYEE, SubjectType.VIP])
def test_an_employee_or_vip_keeps_their_address_and_type_and_no_visit_is_made(tenant_a, host, kind):
    person = SubjectFactory(company=tenant_a.company, subject_type=kind, email="boss@a.example", name="Boss")
    with pytest.raises(KangarooError) as refused:
        invite(tenant_a, host=host, visitor_name="Someone", visitor_email="BOSS@a.example")
    assert (refused.value.code, list(refused.value.fields)) == ("visit_email_not_visitor", ["visitor_email"])
    person.refresh_from_db()
    assert (person.subject_type, person.name) == (kind, "Boss")
    assert not Visit.objects.exists() and mail.outbox == []


def test_an_address_another_company_uses_makes_a_new_visitor_here_and_leaves_theirs_alone(tenants):
    a, b = tenants
    theirs = {
        kind: SubjectFactory(company=b.company, subject_type=kind, email=f"{kind}@example.org", name="B's")
        for kind in (SubjectType.VISITOR, SubjectType.EMPLOYEE)
    }
    for kind, subject in theirs.items():
        visit, token = invite(a, visitor_email=subject.email.upper())
        assert token is not None
        assert visit.visitor.company_id == a.company.pk and visit.visitor.pk != subject.pk
        assert visit.visitor.subject_type == SubjectType.VISITOR
        unchanged = Subject.objects.get(pk=subject.pk)
        assert (unchanged.subject_type, unchanged.name, unchanged.visit_end) == (kind, "B's", None)
    assert not Visit.objects.for_company(b.company).exists()


def test_the_host_must_be_an_employee_of_the_company(tenants):
    a, b = tenants
    theirs = SubjectFactory(company=b.company)
    with pytest.raises(KangarooError) as refused:
        invite(a, host=theirs)
    assert (refused.value.code, refused.value.fields) == ("validation_error", {"host": ["Not found."]})
    guest = SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR)
    with pytest.raises(KangarooError) as refused:
        invite(a, host=guest)
    assert refused.value.code == "subject_host_invalid"


def test_viewers_and_other_companies_users_may_not_invite_or_act_on_visits(tenants, host):
    a, b = tenants
    start = timezone.now() + timedelta(hours=1)
    for actor in (a.viewer, b.owner):
        with pytest.raises(KangarooError) as refused:
            services.visit_create(
                company=a.company, actor=actor, visitor_name="X", visitor_email="x@example.org",
                starts_at=start, ends_at=start + timedelta(hours=1),
            )  # fmt: skip
        assert refused.value.code == "permission_denied"
    visit, _ = invite(a, host=host)
    for service in (services.visit_cancel, services.visit_link_revoke, services.visit_invitation_resend):
        with pytest.raises(KangarooError):
            service(company=a.company, actor=a.viewer, visit=visit)
    # Company B's own scope does not find A's visit at all.
    with pytest.raises(Visit.DoesNotExist):
        services.visit_cancel(company=b.company, actor=b.owner, visit=visit)


def test_marking_the_arrival_is_idempotent_and_keeps_the_first_time(tenant_a, host):
    visit, _ = invite(tenant_a, host=host)
    first = timezone.now()

    assert services.visit_mark_arrived(visit=visit, at=first) is True
    assert services.visit_mark_arrived(visit=visit, at=first + timedelta(minutes=3)) is False

    visit.refresh_from_db()
    assert visit.arrived_at == first


def test_erasing_the_visitor_takes_their_visits_along(tenant_a, host):
    visit, token = invite(tenant_a, host=host)

    subject_services.subject_delete(company=tenant_a.company, actor=tenant_a.owner, subject=visit.visitor)

    assert not Visit.objects.filter(pk=visit.pk).exists()
    assert visit_get_by_token(token=token) is None
    # The host stays, and deleting a host leaves the visit without one.
    other, _ = invite(tenant_a, host=host, visitor_email="ana@example.org")
    subject_services.subject_delete(company=tenant_a.company, actor=tenant_a.owner, subject=host)
    other.refresh_from_db()
    assert other.host is None
