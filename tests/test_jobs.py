"""Background jobs: inline in the embedded shape, on Redis queues in production."""

import pytest
from django.db import transaction

from kangaroo.jobs import enqueue
from subjects.models import Department
from tests.conftest import redis_test_url
from tests.jobs_for_tests import create_department_job


@pytest.mark.django_db(transaction=True)
def test_inline_jobs_run_after_the_transaction_commits(tenant_a, settings):
    settings.JOBS_INLINE = True
    with transaction.atomic():
        enqueue(create_department_job, tenant_a.company.pk, "Inline")
        assert not Department.objects.for_company(tenant_a.company).exists()  # not before commit
    assert Department.objects.for_company(tenant_a.company).filter(name="Inline").exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_runs_no_job(tenant_a, settings):
    settings.JOBS_INLINE = True
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(create_department_job, tenant_a.company.pk, "Never")
        raise RuntimeError
    assert not Department.objects.for_company(tenant_a.company).exists()


@pytest.mark.django_db(transaction=True)
def test_a_failing_inline_job_is_logged_not_raised(tenant_a, settings, caplog):
    settings.JOBS_INLINE = True
    enqueue(create_department_job, 99999999, "No such company")
    assert "Inline job create_department_job failed" in caplog.text


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_jobs_wait_in_the_queue_for_a_worker(tenant_a, settings):
    import django_rq
    from rq import SimpleWorker

    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    queue = django_rq.get_queue("default")
    queue.empty()
    enqueue(create_department_job, tenant_a.company.pk, "Queued")
    assert queue.count == 1
    assert not Department.objects.for_company(tenant_a.company).exists()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert Department.objects.for_company(tenant_a.company).filter(name="Queued").exists()
    queue.empty()
