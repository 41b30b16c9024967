"""With Redis, confirming a bulk upload answers at once: the photos are stored by a worker."""

from __future__ import annotations

import pytest

from accounts.models import JobState
from subjects import photo_uploads
from subjects.models import Photo, PhotoUploadState
from tests import test_jobs
from tests.factories import SubjectFactory
from tests.subjects.zips import astronaut_jpeg, hopper_png, uploaded, zip_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

rq_queue = test_jobs.rq_queue  # the fixture: a queue of its own on the test Redis


def test_confirm_queues_the_store_job_and_a_worker_stores_the_photos(
    tenant_a,
    rq_queue,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    monkeypatch.setattr(photo_uploads, "JOB_QUEUE", rq_queue.name)
    # Enrolment jobs of the stored photos go to the default queue; here it is the test's too.
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "default": settings.RQ_QUEUES[rq_queue.name]}
    SubjectFactory(company=tenant_a.company, job_number="E-0042")
    SubjectFactory(company=tenant_a.company, job_number="E-0043")
    archive = uploaded(zip_bytes({"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()}))
    upload = photo_uploads.photo_upload_preview(company=tenant_a.company, actor=tenant_a.admin, upload=archive)
    with django_capture_on_commit_callbacks(execute=True):
        job = photo_uploads.photo_upload_confirm(company=tenant_a.company, actor=tenant_a.admin, upload=upload)
    job.refresh_from_db()
    upload.refresh_from_db()
    assert (job.state, upload.state) == (JobState.QUEUED, PhotoUploadState.STORING)
    assert not Photo.objects.for_company(tenant_a.company).exists()
    with django_capture_on_commit_callbacks(execute=True):
        test_jobs.work(rq_queue)
    job.refresh_from_db()
    upload.refresh_from_db()
    assert (job.state, job.done, job.total) == (JobState.DONE, 2, 2)
    assert upload.state == PhotoUploadState.STORED
    assert Photo.objects.for_company(tenant_a.company).count() == 2
