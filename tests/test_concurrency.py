"""Races that only a real database with row locks can show (PostgreSQL)."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services
from accounts.authentication import token_pair_for
from accounts.models import Role, User
from kangaroo.errors import KangarooError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(*calls):
    """Start every call at the same moment, each in its own thread and DB connection."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def runner(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_refreshes_of_one_token_give_exactly_one_new_pair(tenant_a):
    refresh = token_pair_for(tenant_a.owner)["refresh"]

    def refresh_once():
        return APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json").status_code

    for _ in range(3):
        refresh = token_pair_for(tenant_a.owner)["refresh"]
        assert sorted(run_together(refresh_once, refresh_once, refresh_once)) == [200, 401, 401]


def test_two_owners_demoting_each_other_at_once_leave_one_owner(tenant_a):
    second = User.objects.create_user("a-owner2", company=tenant_a.company, role=Role.OWNER, is_staff=True)
    company = tenant_a.company

    def demote(actor, target):
        return lambda: services.user_update(company=company, actor=actor, user=target, role=Role.ADMIN)

    results = run_together(demote(tenant_a.owner, second), demote(second, tenant_a.owner))
    assert sum(isinstance(r, KangarooError) and r.code == "last_owner" for r in results) == 1
    assert User.objects.for_company(company).filter(role=Role.OWNER, is_active=True).count() == 1
