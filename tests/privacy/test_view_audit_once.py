"""The hourly record of who saw whose face holds in the database, not in the cache: a
flushed cache, a second web process with a cache of its own (the local-memory cache is per
process) or two views at the same instant still write one audit entry per viewer (or
live-page connection), person and hour. The cache only spares the insert."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.cache.backends.dummy import DummyCache
from django.db import connection
from django.test import Client

from accounts.models import AuditLog
from accounts.services import audit_biometric_view
from events.live import live_image_url
from tests.factories import SubjectFactory
from tests.privacy.test_no_disclosure import an_hour_later
from tests.subjects.test_consent_withdrawal import enrol

pytestmark = pytest.mark.django_db


def views(company):
    return AuditLog.objects.for_company(company).filter(action="biometrics.view")


def a_cache_that_knows_nothing():
    """What a second web process with its own local-memory cache looks like to this one."""
    return mock.patch("accounts.services.cache", DummyCache("other-process", {}))


def test_a_flushed_cache_does_not_write_the_hour_again(api, tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    photo = enrol(a, subject)
    client = api(a.admin)
    for _ in range(3):
        assert client.get(f"/api/v1/photos/{photo.pk}/thumbnail").status_code == 200
        cache.clear()
    assert [(e.actor, e.object_id) for e in views(a.company)] == [(a.admin, str(subject.pk))]
    assert not views(b.company).exists()


def test_a_second_process_without_the_cache_writes_no_second_entry(api, tenants):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    photo = enrol(a, subject)
    api(a.admin).get(f"/api/v1/photos/{photo.pk}/image")
    with a_cache_that_knows_nothing():
        for _ in range(5):
            assert api(a.admin).get(f"/api/v1/photos/{photo.pk}/thumbnail").status_code == 200
    assert views(a.company).count() == 1
    # Without the cache every view costs the insert it would have spared, and nothing more.
    with a_cache_that_knows_nothing(), an_hour_later():
        api(a.admin).get(f"/api/v1/photos/{photo.pk}/thumbnail")
        api(a.admin).get(f"/api/v1/photos/{photo.pk}/thumbnail")
    assert views(a.company).count() == 2


def test_the_cache_spares_the_insert(api, tenant_a, django_assert_num_queries):
    subject = SubjectFactory(company=tenant_a.company)
    photo = enrol(tenant_a, subject)
    request = SimpleNamespace(user=tenant_a.admin)
    with django_assert_num_queries(1):  # INSERT ... ON CONFLICT DO NOTHING (SQLite: INSERT OR IGNORE)
        assert audit_biometric_view(request=request, company_id=photo.company_id, subject_ref="1", kind="photo")
    with django_assert_num_queries(0):
        assert not audit_biometric_view(request=request, company_id=photo.company_id, subject_ref="1", kind="photo")


def test_the_same_connection_and_person_are_one_entry_per_company(tenants):
    """The key is unique within a company: one live-page connection (same address and
    browser) seeing strangers of two companies is recorded in each, once."""
    a, b = tenants
    request = SimpleNamespace(user=None)
    with a_cache_that_knows_nothing():
        for _ in range(2):
            for tenant in (a, b):
                audit_biometric_view(request=request, company_id=tenant.company.pk, subject_ref="stranger", kind="x")
    assert views(a.company).count() == views(b.company).count() == 1


def test_a_live_page_writes_one_entry_for_all_its_thumbnails_whatever_the_cache(tenants):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    photo = enrol(a, subject)
    page = Client(REMOTE_ADDR="10.0.0.8")
    url = live_image_url("photo", photo.pk, a.company.pk)
    for number in range(30):
        assert page.get(url).status_code == 200
        if number % 10 == 0:
            cache.clear()
    with a_cache_that_knows_nothing():
        assert page.get(url).status_code == 200
    assert [(e.actor_repr, e.object_id) for e in views(a.company)] == [("live page", str(subject.pk))]
    assert not views(b.company).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_views_at_the_same_instant_in_processes_without_a_shared_cache_write_one_entry(tenants):
    a, _ = tenants
    subject = SubjectFactory(company=a.company)
    request = SimpleNamespace(user=a.admin)
    barrier = threading.Barrier(6)
    failures = []

    def view():
        try:
            barrier.wait()
            audit_biometric_view(request=request, company_id=a.company.pk, subject_ref=str(subject.pk), kind="photo")
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            connection.close()

    with a_cache_that_knows_nothing():
        threads = [threading.Thread(target=view) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []
    assert views(a.company).count() == 1
