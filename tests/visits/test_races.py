"""Two invitations for the same new visitor's e-mail address at the same moment (two hosts
inviting one guest, or one host sending two visits at once): neither finds a visitor with
that address, both create one, and the unique index refuses the later write. The later
invitation then goes to the visitor the other created, as if it had come after: one
visitor, two visits, no error.

The race is forced as in `tests/subjects/test_races.py`: `held_at_the_write` keeps each
request at its write of the new visitor until both have looked for one. The threaded test
needs PostgreSQL (the later INSERT waits on the unique index for the first to commit); the
others simulate the other request inside the same transaction and run on SQLite too.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuditLog
from kangaroo.errors import KangarooError
from subjects import services as subject_services
from subjects.models import Subject, SubjectType
from tests.conftest import api_client_for
from tests.factories import SubjectFactory
from tests.subjects.test_races import held_at_the_write
from tests.test_concurrency import run_together
from tests.visits.helpers import invite
from visits.models import Visit


@contextmanager
def created_before_the_write(**subject):
    """The other request, simulated: it creates `subject` after this invitation has looked
    for the visitor and before it creates the new one (once). Created outside the create's
    savepoint, it stays when the create is refused, as a committed row would."""
    real = subject_services.subject_create
    done = []

    def late(**kwargs):
        if not done:
            done.append(SubjectFactory(consent=False, **subject))
        return real(**kwargs)

    with mock.patch.object(subject_services, "subject_create", late):
        yield done


def window(days=0):
    start = (timezone.now() + timedelta(days=days, hours=1)).replace(microsecond=0)
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}


# --- At the same moment, on PostgreSQL ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_invitations_of_one_new_email_at_once_make_one_visitor_with_two_visits(tenants, settings):
    settings.JOBS_INLINE = True  # each invitation's mail goes out when its request commits
    a, b = tenants
    theirs = SubjectFactory(company=b.company, email="guest@example.org", subject_type=SubjectType.VISITOR)

    def invite_over_the_api(name, days):
        data = {"visitor_name": name, "visitor_email": "Guest@example.org", **window(days)}
        return lambda: api_client_for(a.admin).post("/api/v1/visits", data, format="json")

    with held_at_the_write():
        answers = run_together(invite_over_the_api("Mei Chen", 0), invite_over_the_api("Mei Chen", 7))

    assert [answer.status_code for answer in answers] == [201, 201], [answer.content for answer in answers]
    [visitor] = Subject.objects.for_company(a.company).filter(subject_type=SubjectType.VISITOR)
    assert {answer.json()["visitor"] for answer in answers} == {visitor.pk}
    assert Visit.objects.for_company(a.company).filter(visitor=visitor).count() == 2
    # The doors expect them for the earlier visit first, whichever request came second.
    earlier = Visit.objects.for_company(a.company).order_by("starts_at").first()
    assert (visitor.visit_start, visitor.visit_end) == (earlier.starts_at, earlier.ends_at)
    assert AuditLog.objects.for_company(a.company).filter(action="subject.create").count() == 1
    assert AuditLog.objects.for_company(a.company).filter(action="visit.create").count() == 2
    assert sorted(message.to[0] for message in mail.outbox) == ["Guest@example.org"] * 2
    # Company B's visitor with the same address was neither found nor touched.
    assert Subject.objects.get(pk=theirs.pk).company_id == b.company.pk
    assert not Visit.objects.for_company(b.company).exists()


# --- The other request simulated in the same transaction (any database) -------------------------


@pytest.mark.django_db
def test_an_invitation_whose_new_visitor_is_created_before_its_write_goes_to_that_visitor(tenant_a):
    company = tenant_a.company
    with created_before_the_write(
        company=company, name="Mei", email="mei@example.org", subject_type=SubjectType.VISITOR
    ) as other:
        visit, token = invite(tenant_a, visitor_email="MEI@example.org")
    [theirs] = other
    assert visit.visitor_id == theirs.pk
    assert list(Subject.objects.for_company(company).values_list("pk", flat=True)) == [theirs.pk]
    visitor = Subject.objects.get(pk=theirs.pk)
    assert (visitor.visit_start, visitor.visit_end) == (visit.starts_at, visit.ends_at)
    assert token is not None  # the invitation went out
    # Only what the second attempt did: no visitor created by this invitation.
    assert not AuditLog.objects.for_company(company).filter(action="subject.create").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [SubjectType.EMPLOYEE, SubjectType.VIP])
def test_an_employee_or_vip_given_the_email_before_the_write_is_refused_with_its_code(tenant_a, kind):
    company = tenant_a.company
    with (
        created_before_the_write(company=company, email="mei@example.org", subject_type=kind),
        pytest.raises(KangarooError) as refused,
    ):
        invite(tenant_a, visitor_email="mei@example.org")
    assert refused.value.code == "visit_email_not_visitor" and "visitor_email" in refused.value.fields
    assert not Visit.objects.exists() and mail.outbox == []
    # Nobody was made a visitor (the simulated subject went with the refused transaction).
    assert not Subject.objects.for_company(company).filter(subject_type=SubjectType.VISITOR).exists()
