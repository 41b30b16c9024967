"""Background jobs: inline in the embedded shape, on Redis queues in production."""

import re

import pytest
from django.db import transaction

from accounts.jobs import job_start, jobs_reconcile
from accounts.models import Job, JobState
from kangaroo.jobs import JobAlreadyQueued, Retry, enqueue
from subjects.models import Department
from tests.conftest import redis_test_url
from tests.factories import JobFactory
from tests.jobs_for_tests import create_department_job, flaky_department_job, slow_first_attempt_job


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


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_queued_jobs_reuse_one_redis_connection_per_process(tenant_a, settings, monkeypatch):
    from redis.connection import Connection

    from kangaroo.jobs import get_queue

    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    queue = get_queue("default")
    queue.empty()
    connects = []
    real_connect = Connection._connect
    monkeypatch.setattr(Connection, "_connect", lambda self: connects.append(self) or real_connect(self))
    for n in range(5):
        enqueue(create_department_job, tenant_a.company.pk, f"Queued {n}")
    assert queue.count == 5
    assert len(connects) <= 1  # each job queued opened a connection of its own before
    assert get_queue("default").connection is queue.connection
    queue.empty()


# --- Recorded company jobs: retries, progress, de-duplication -----------------------------


def start(tenant, tmp_path, *, failures=0, key="", retry=None, name="Flaky", queue=None):
    return job_start(
        queue=queue.name if queue else "default",
        company=tenant.company,
        actor=tenant.admin,
        kind="tests.flaky",
        func=flaky_department_job,
        args=(tenant.company.pk, name, str(tmp_path / f"{name}.count"), failures),
        key=key,
        retry=retry or Retry(max=3, backoff=(10, 60)),
    )


@pytest.mark.django_db(transaction=True)
def test_an_inline_job_that_fails_twice_then_succeeds_ends_done(tenant_a, settings, tmp_path):
    settings.JOBS_INLINE = True
    job = start(tenant_a, tmp_path, failures=2)
    job.refresh_from_db()
    assert (job.state, job.attempts, job.error, job.done, job.total) == (JobState.DONE, 3, "", 2, 2)
    assert job.finished_at is not None and job.started_by == tenant_a.admin
    assert Department.objects.for_company(tenant_a.company).filter(name="Flaky").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_inline_job_that_always_fails_ends_failed_with_its_error(tenant_a, settings, tmp_path, caplog):
    settings.JOBS_INLINE = True
    job = start(tenant_a, tmp_path, failures=99, retry=Retry(max=2))
    job.refresh_from_db()
    assert (job.state, job.attempts, job.error) == (JobState.FAILED, 3, "RuntimeError: attempt 3 fails")
    assert job.finished_at is not None
    assert "Inline job run_job failed; retrying (1 left)" in caplog.text
    assert not Department.objects.for_company(tenant_a.company).exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_job_with_the_same_key_is_refused_while_the_first_is_unfinished(
    tenant_a, tenant_b, settings, tmp_path
):
    settings.JOBS_INLINE = True
    running = JobFactory(company=tenant_a.company, key="reenrol", state=JobState.RUNNING)
    with pytest.raises(JobAlreadyQueued) as refused:
        start(tenant_a, tmp_path, key="reenrol")
    assert refused.value.code == "job_already_queued" and refused.value.status == 409
    assert refused.value.extra["job"] == running.pk
    assert Job.objects.for_company(tenant_a.company).count() == 1
    start(tenant_b, tmp_path, key="reenrol")  # another company's key is its own
    Job.objects.for_company(tenant_a.company).update(state=JobState.DONE)
    assert start(tenant_a, tmp_path, key="reenrol", name="Again").state == JobState.QUEUED


@pytest.mark.django_db(transaction=True)
def test_the_jobs_changelist_shows_progress_of_the_companys_jobs_only(tenant_a, tenant_b, client):
    ours = JobFactory(company=tenant_a.company, kind="subjects.reenrol", done=3, total=4, state=JobState.RUNNING)
    theirs = JobFactory(company=tenant_b.company, kind="subjects.export")
    client.force_login(tenant_a.viewer)
    page = client.get("/admin/accounts/job/").content.decode()
    assert "3 / 4 (75%)" in page and f"/admin/accounts/job/{ours.pk}/change/" in page
    assert f"/admin/accounts/job/{theirs.pk}/change/" not in page and "subjects.export" not in page
    detail = client.get(f"/admin/accounts/job/{ours.pk}/change/")
    assert detail.status_code == 200 and "3 / 4 (75%)" in detail.content.decode()
    assert client.post(f"/admin/accounts/job/{ours.pk}/delete/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_job_started_for_the_company_shows_its_progress_and_end_in_the_admin(tenant_a, settings, tmp_path, client):
    settings.JOBS_INLINE = True
    job = start(tenant_a, tmp_path, failures=1)
    client.force_login(tenant_a.admin)
    page = client.get(f"/admin/accounts/job/{job.pk}/change/").content.decode()
    assert "2 / 2 (100%)" in page and "Done" in page and "tests.flaky" in page
    assert "2 / 2 (100%)" in client.get("/admin/accounts/job/?state__exact=done").content.decode()


# --- The same jobs on real Redis and RQ workers --------------------------------------------


@pytest.fixture
def rq_queue(settings):
    """A queue of its own on the test Redis, emptied with its registries afterwards."""
    import uuid

    import django_rq

    name = f"test-{uuid.uuid4().hex[:12]}"
    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    queue = django_rq.get_queue(name)
    yield queue
    connection = queue.connection
    for key in connection.scan_iter(f"rq:*:{name}"):
        for member in connection.zrange(key, 0, -1) if connection.type(key) == b"zset" else []:
            connection.delete(f"rq:job:{member.decode().split(':')[0]}")
        connection.delete(key)
    queue.delete(delete_jobs=True)


def work(queue) -> None:
    from rq import SimpleWorker

    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def release_retries(queue) -> list[str]:
    """Put jobs waiting out their backoff back in the queue at once, as RQ's scheduler
    would when the wait is over; returns their ids."""
    from rq.job import Job as RQJob

    registry = queue.scheduled_job_registry
    ids = registry.get_job_ids()
    for job_id in ids:
        job = RQJob.fetch(job_id, connection=queue.connection)
        registry.remove(job)
        queue._enqueue_job(job)
    return ids


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_second_enqueue_with_the_same_key_is_refused_while_the_first_waits_in_redis(tenant_a, rq_queue, tmp_path):
    first = start(tenant_a, tmp_path, key="reenrol", queue=rq_queue)
    assert rq_queue.job_ids == [first.queue_id]
    with pytest.raises(JobAlreadyQueued) as refused:
        start(tenant_a, tmp_path, key="reenrol", name="Second", queue=rq_queue)
    assert refused.value.extra == {"job": first.pk, "state": "queued"}
    assert rq_queue.job_ids == [first.queue_id]  # nothing more was queued
    work(rq_queue)
    first.refresh_from_db()
    assert first.state == JobState.DONE
    again = start(tenant_a, tmp_path, key="reenrol", name="Third", queue=rq_queue)  # accepted once the first is done
    assert rq_queue.job_ids == [again.queue_id]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_enqueue_refuses_a_job_id_that_is_already_queued(tenant_a, rq_queue):
    job_id = f"once-{rq_queue.name}"
    enqueue(create_department_job, tenant_a.company.pk, "Once", queue=rq_queue.name, job_id=job_id)
    with pytest.raises(JobAlreadyQueued) as refused:
        enqueue(create_department_job, tenant_a.company.pk, "Twice", queue=rq_queue.name, job_id=job_id)
    assert refused.value.extra == {"job_id": job_id}
    assert rq_queue.count == 1
    work(rq_queue)
    enqueue(create_department_job, tenant_a.company.pk, "Again", queue=rq_queue.name, job_id=job_id)  # done: accepted
    work(rq_queue)
    names = Department.objects.for_company(tenant_a.company).values_list("name", flat=True)
    assert sorted(names) == ["Again", "Once"]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_job_that_fails_twice_waits_its_backoff_then_ends_done(tenant_a, rq_queue, tmp_path):
    import time

    job = start(tenant_a, tmp_path, failures=2, retry=Retry(max=3, backoff=(10, 60)), queue=rq_queue)
    for attempt, wait in ((1, 10), (2, 60)):
        before = time.time()
        work(rq_queue)
        job.refresh_from_db()
        assert (job.state, job.attempts, job.error) == (
            JobState.RETRYING,
            attempt,
            f"RuntimeError: attempt {attempt} fails",
        )
        assert rq_queue.count == 0  # waiting out its backoff, not queued
        assert rq_queue.scheduled_job_registry.get_job_ids() == [job.queue_id]
        retry_at = rq_queue.scheduled_job_registry.get_scheduled_time(job.queue_id).timestamp()
        assert retry_at >= int(before) + wait  # RQ keeps whole seconds
        assert release_retries(rq_queue) == [job.queue_id]
    work(rq_queue)
    job.refresh_from_db()
    assert (job.state, job.attempts, job.error, job.done, job.total) == (JobState.DONE, 3, "", 2, 2)
    assert Department.objects.for_company(tenant_a.company).filter(name="Flaky").exists()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_job_that_always_fails_ends_failed_with_its_error(tenant_a, rq_queue, tmp_path):
    job = start(tenant_a, tmp_path, failures=99, retry=Retry(max=1, backoff=(5,)), queue=rq_queue)
    work(rq_queue)
    release_retries(rq_queue)
    work(rq_queue)
    job.refresh_from_db()
    assert (job.state, job.attempts, job.error) == (JobState.FAILED, 2, "RuntimeError: attempt 2 fails")
    assert rq_queue.failed_job_registry.get_job_ids() == [job.queue_id]
    assert jobs_reconcile() == 0  # the record already says what the queue says


# --- Jobs abandoned by a dead worker -------------------------------------------------------


def wait_for(condition, what: str, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def worker_process(*arguments: str):
    """A real `manage.py rqworker` on the test database and the test Redis."""
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings
    from django.db import connection

    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_test_url(),
        "DJANGO_SETTINGS_MODULE": "kangaroo.settings",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", *arguments],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_worker_mid_job(tenant, settings, tmp_path, retry):
    """Start a recorded job on a real worker, then SIGKILL the worker and its work horse
    while the job runs, as a lost machine would. Returns the record and the queue."""
    import os
    import signal

    import django_rq

    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    queue = django_rq.get_queue("default")
    queue.empty()
    pid_file = tmp_path / "horse.pid"
    job = job_start(
        company=tenant.company,
        actor=tenant.admin,
        kind="tests.slow",
        func=slow_first_attempt_job,
        args=(tenant.company.pk, "After the kill", str(tmp_path / "slow.count"), str(pid_file)),
        retry=retry,
    )
    worker = worker_process()
    try:
        wait_for(pid_file.exists, "the job to start on the worker", seconds=180)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    # Nothing settles it by itself: RQ still counts it as started by a worker.
    assert jobs_reconcile() == 0
    assert queue.started_job_registry.get_job_ids() == [job.queue_id]
    return job, queue


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_retried_by_the_reconciler_and_finished_by_another(
    tenant_a, settings, tmp_path
):
    from datetime import timedelta

    from django.utils import timezone

    job, queue = kill_worker_mid_job(tenant_a, settings, tmp_path, Retry(max=1, backoff=(30,)))
    # Once the dead worker has missed its heartbeats (at most 90 s), the job goes back.
    assert jobs_reconcile(now=timezone.now() + timedelta(seconds=120)) == 1
    job.refresh_from_db()
    assert job.state == JobState.RETRYING and "worker stopped" in job.error
    assert queue.started_job_registry.get_job_ids() == []
    assert release_retries(queue) == [job.queue_id]  # after its backoff
    worker_process("--burst").wait(timeout=120)
    job.refresh_from_db()
    assert (job.state, job.attempts, job.error) == (JobState.DONE, 2, "")
    assert Department.objects.for_company(tenant_a.company).filter(name="After the kill").exists()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_with_no_retries_left_ends_failed(tenant_a, settings, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    job, queue = kill_worker_mid_job(tenant_a, settings, tmp_path, Retry(max=0))
    assert jobs_reconcile(now=timezone.now() + timedelta(seconds=120)) == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "AbandonedJobError" in job.error
    assert job.finished_at is not None
    assert queue.failed_job_registry.get_job_ids() == [job.queue_id]
    assert not Department.objects.for_company(tenant_a.company).exists()


@pytest.mark.django_db
def test_an_inline_job_whose_process_stopped_is_failed_after_its_timeout(tenant_a, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.JOBS_INLINE = True
    started = timezone.now() - timedelta(hours=1)
    stale = JobFactory(company=tenant_a.company, state=JobState.RUNNING, timeout=60, started_at=started)
    fresh = JobFactory(company=tenant_a.company, state=JobState.RUNNING, timeout=7200, started_at=started)
    assert jobs_reconcile() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.state == JobState.FAILED and "stopped before it finished" in stale.error
    assert fresh.state == JobState.RUNNING


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_work_horse_alone_is_killed_ends_failed_in_its_record(tenant_a, settings, tmp_path):
    """The system kills the process running the job (out of memory, say) but not the
    worker: RQ fails the job itself, and the reconciler brings the record in line."""
    import os
    import signal

    import django_rq

    from kangaroo.jobs import job_status

    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    django_rq.get_queue("default").empty()
    pid_file = tmp_path / "horse.pid"
    job = job_start(
        company=tenant_a.company,
        actor=tenant_a.admin,
        kind="tests.slow",
        func=slow_first_attempt_job,
        args=(tenant_a.company.pk, "Never", str(tmp_path / "slow.count"), str(pid_file)),
        retry=Retry(max=0),
    )
    worker = worker_process()
    try:
        wait_for(pid_file.exists, "the job to start on the worker", seconds=180)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        wait_for(lambda: job_status(job.queue_id) == "failed", "the worker to fail the job")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING  # the job function never got to say so
    assert jobs_reconcile() == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "Work-horse terminated unexpectedly" in job.error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_for_the_same_key_on_postgresql_start_one_job(tenant_a, settings, tmp_path):
    """B checks for an unfinished job while A's is not yet committed, so only the unique
    index can stop it: B's insert waits for A's commit, then fails, and B is refused."""
    import threading

    from django.db import connection

    settings.JOBS_INLINE = True
    a_inserted, b_connected, outcomes = threading.Event(), threading.Event(), {}

    def b_waits_for_a_lock() -> bool:
        # B's own backend, not any session of the database: another one waiting on a lock
        # must not let A commit before B has reached the index.
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [outcomes["b_pid"]])
            row = cursor.fetchone()
            return row is not None and row[0] == "Lock"

    def request_a():
        try:
            with transaction.atomic():
                outcomes["a"] = start(tenant_a, tmp_path, key="reenrol", name="A")
                a_inserted.set()
                assert b_connected.wait(timeout=60)
                wait_for(b_waits_for_a_lock, "B to wait on the unique index", seconds=60)
        except Exception as exc:
            outcomes["a"] = exc
        finally:
            a_inserted.set()
            connection.close()

    def request_b():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcomes["b_pid"] = cursor.fetchone()[0]
            b_connected.set()
            a_inserted.wait(timeout=60)
            with transaction.atomic():
                outcomes["b"] = start(tenant_a, tmp_path, key="reenrol", name="B")
        except Exception as exc:
            outcomes["b"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=request_a), threading.Thread(target=request_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert isinstance(outcomes["a"], Job), outcomes
    assert isinstance(outcomes["b"], JobAlreadyQueued), outcomes
    assert outcomes["b"].extra["job"] == outcomes["a"].pk
    assert Job.objects.for_company(tenant_a.company).count() == 1
    assert list(Department.objects.for_company(tenant_a.company).values_list("name", flat=True)) == ["A"]


@pytest.mark.parametrize(
    ("language", "names"),
    [
        (
            "en",
            [
                "Import of subjects",
                "Check of a subject import file",
                "Re-enrolment of every photo",
                "Photos from a ZIP archive",
            ],
        ),
        ("zh-hant", ["匯入人員", "檢查人員匯入檔", "重新建檔所有照片", "從 ZIP 壓縮檔建檔照片"]),
    ],
)
@pytest.mark.django_db
def test_the_jobs_list_names_each_kind_in_the_users_language(tenant_a, tenant_b, client, language, names):
    kinds = ["subjects.import", "subjects.import_preview", "photos.reenrol", "photos.bulk_upload"]
    jobs = [JobFactory(company=tenant_a.company, kind=kind) for kind in kinds]
    JobFactory(company=tenant_b.company, kind="tests.theirs")
    tenant_a.viewer.language = language
    tenant_a.viewer.save(update_fields=["language"])
    client.force_login(tenant_a.viewer)

    page = client.get("/admin/accounts/job/").content.decode()
    for job, name in zip(jobs, names, strict=True):
        assert f">{name} #{job.pk}</a>" in page
    # The filter offers the company's kinds by name, never another company's.
    filter_names = [str(label) for _, label in page_filter_choices(client, "/admin/accounts/job/", "kind")]
    assert sorted(filter_names) == sorted(names)
    shown = re.sub(r"<[^>]+>", " ", page)  # the text, not the filter links' addresses
    assert not any(kind in shown for kind in kinds)

    detail = client.get(f"/admin/accounts/job/{jobs[0].pk}/change/").content.decode()
    assert f'<div class="readonly">{names[0]}</div>' in detail
    # The audit log's record of the start names the kind so too.
    from accounts.services import audit_record

    entry = audit_record(company=tenant_a.company, actor=tenant_a.owner, action="job.start", obj=jobs[0],
                         changes={"kind": jobs[0].kind})  # fmt: skip
    logged = client.get(f"/admin/accounts/auditlog/{entry.pk}/change/").content.decode()
    colon = "：" if language == "zh-hant" else ":"  # each language's own, after the field's name
    assert f"{colon}</span>{names[0]}</li>" in logged and "subjects.import<" not in logged
    # A kind nobody named shows as stored rather than not at all.
    unnamed = JobFactory(company=tenant_a.company, kind="tests.unnamed")
    assert f">tests.unnamed #{unnamed.pk}</a>" in client.get("/admin/accounts/job/").content.decode()


def page_filter_choices(client, url, parameter):
    """(value, label) of a changelist filter, as the page's changelist builds them."""
    response = client.get(url)
    [spec] = [spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", "") == parameter]
    return spec.lookup_choices
