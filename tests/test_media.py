"""Biometric files (photos, thumbnails, snapshots) live exactly as long as what they belong
to: a subject's go with the subject, an event's with the event, a company's with the company.
Each test lists the media folder itself, the way an auditor would."""

from __future__ import annotations

import functools
import uuid

import pytest
from django.db import transaction

from accounts.models import Company
from events.models import Event
from events.services import event_delete_many
from kangaroo import media
from kangaroo.media import MediaKind, media_purge_company, media_save, media_written
from subjects.models import Photo
from tests.events.conftest import event
from tests.factories import SubjectFactory
from tests.images import jpeg_bytes, snapshot
from tests.subjects.test_photos import files_in, upload

pytestmark = pytest.mark.django_db


def post_events(door, items) -> list[int]:
    body = door.box_client().post("/api/v1/device/events", {"events": items}, format="json").json()
    assert body["errors"] == 0, body
    return [result["id"] for result in body["results"]]


def enrolled_with_history(api, tenant, door):
    """A subject with two photos and two recognitions with snapshots, plus a stranger's snapshot."""
    subject = SubjectFactory(company=tenant.company, name="林志明", job_number="E-77")
    for _ in range(2):
        assert upload(api(tenant.admin), subject, jpeg_bytes()).status_code == 201
    seen = post_events(
        door,
        [
            event(f"{tenant.company.slug}-in", door.entrance, subject, snapshot=snapshot()),
            event(f"{tenant.company.slug}-out", door.exit, subject, snapshot=snapshot()),
        ],
    )
    stranger = post_events(door, [event(f"{tenant.company.slug}-x", door.entrance, snapshot=snapshot())])[0]
    return subject, seen, stranger


def folder(media_root, kind: MediaKind, company: Company) -> list:
    return [path for path in files_in(media_root) if path.parts[:2] == (str(kind), str(company.pk))]


def test_files_are_kept_per_kind_and_company(api, tenant_a, door_a, media_root):
    enrolled_with_history(api, tenant_a, door_a)
    assert len(folder(media_root, MediaKind.PHOTO, tenant_a.company)) == 2
    assert len(folder(media_root, MediaKind.THUMBNAIL, tenant_a.company)) == 2
    assert len(folder(media_root, MediaKind.SNAPSHOT, tenant_a.company)) == 3
    assert len(files_in(media_root)) == 7


def test_deleting_a_subject_deletes_their_photos_and_their_events_snapshots(
    api, tenants, door_a, door_b, media_root, django_capture_on_commit_callbacks
):
    a, b = tenants
    subject, seen, stranger = enrolled_with_history(api, a, door_a)
    enrolled_with_history(api, b, door_b)
    stranger_snapshot = Event.objects.for_company(a.company).get(pk=stranger).snapshot.name
    others = [path for path in files_in(media_root) if path.parts[1] == str(b.company.pk)]
    assert len(others) == 7

    with django_capture_on_commit_callbacks(execute=True):
        assert api(a.admin).delete(f"/api/v1/subjects/{subject.pk}").status_code == 204

    # Only the stranger's snapshot is left of company A's files; company B's are untouched.
    left = files_in(media_root)
    assert [p.as_posix() for p in left if p.parts[1] == str(a.company.pk)] == [stranger_snapshot]
    assert [p for p in left if p.parts[1] != str(a.company.pk)] == others
    # The events stay as the record of who passed which door, without the subject's face.
    events = Event.objects.for_company(a.company).filter(pk__in=seen).order_by("pk")
    assert [(e.subject_id, e.subject_name, e.subject_job_number, e.snapshot.name) for e in events] == [
        (None, "林志明", "E-77", ""),
        (None, "林志明", "E-77", ""),
    ]
    for event_id in seen:
        body = api(a.viewer).get(f"/api/v1/events/{event_id}").json()
        assert body["snapshot_url"] is None
        assert api(a.admin).get(f"/api/v1/events/{event_id}/snapshot").status_code == 404
    assert api(a.admin).get(f"/api/v1/events/{stranger}/snapshot").status_code == 200


def test_a_subject_deletion_that_rolls_back_keeps_every_file_and_snapshot(
    api, tenant_a, door_a, media_root, django_capture_on_commit_callbacks
):
    subject, seen, _ = enrolled_with_history(api, tenant_a, door_a)
    before = files_in(media_root)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        subject.delete()
        raise RuntimeError("something after the delete fails")
    assert files_in(media_root) == before
    assert all(e.snapshot for e in Event.objects.for_company(tenant_a.company).filter(pk__in=seen))


def test_deleting_an_event_deletes_its_snapshot_after_commit(
    tenant_a, door_a, media_root, django_capture_on_commit_callbacks
):
    first, second = post_events(
        door_a, [event("one", door_a.entrance, snapshot=snapshot()), event("two", door_a.entrance, snapshot=snapshot())]
    )
    kept = Event.objects.for_company(tenant_a.company).get(pk=second).snapshot.name
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mine = Event.objects.for_company(tenant_a.company)
        assert event_delete_many(company=tenant_a.company, events=mine.filter(pk=first)) == 1
    assert len(files_in(media_root)) == 2  # not before the commit
    for callback in callbacks:
        callback()
    assert [p.as_posix() for p in files_in(media_root)] == [kept]


def test_deleting_events_never_touches_another_company(tenant_a, tenant_b, door_a, door_b, media_root):
    (theirs,) = post_events(door_b, [event("b1", door_b.entrance, snapshot=snapshot())])
    everyone = Event.objects.all()  # tenant: a caller passing too wide a set must not matter
    assert event_delete_many(company=tenant_a.company, events=everyone) == 0
    assert Event.objects.for_company(tenant_b.company).get(pk=theirs).snapshot
    assert len(files_in(media_root)) == 1


def test_deleting_a_company_deletes_all_its_media(
    api, tenants, door_a, door_b, media_root, settings, django_capture_on_commit_callbacks
):
    settings.JOBS_INLINE = True  # the purge job runs at once (the embedded shape)
    a, b = tenants
    enrolled_with_history(api, a, door_a)
    enrolled_with_history(api, b, door_b)
    # A file that no row names any more (say, a crash between the write and the commit).
    media_save(kind=MediaKind.EVIDENCE, company_id=a.company.pk, content=jpeg_bytes())
    others = [path for path in files_in(media_root) if path.parts[1] == str(b.company.pk)]

    with django_capture_on_commit_callbacks(execute=True):
        Company.objects.filter(pk=a.company.pk).delete()  # tenant: the company itself

    assert files_in(media_root) == others
    assert not any((media_root / kind / str(a.company.pk)).exists() for kind in MediaKind)
    assert Photo.objects.for_company(b.company).count() == 2
    assert Event.objects.for_company(b.company).exclude(snapshot="").count() == 3


def test_purging_a_company_without_files_is_no_error(tenant_a, media_root):
    assert media_purge_company(tenant_a.company.pk) == 0


def test_files_written_in_a_block_that_fails_are_deleted(tenant_a, media_root):
    with pytest.raises(ValueError), media_written() as written:
        media_save(kind=MediaKind.SNAPSHOT, company_id=tenant_a.company.pk, content=jpeg_bytes(), written=written)
        assert len(files_in(media_root)) == 1
        raise ValueError
    assert files_in(media_root) == []


def test_an_event_snapshot_link_is_gone_with_the_subject(api, tenant_a, door_a, django_capture_on_commit_callbacks):
    subject, seen, _ = enrolled_with_history(api, tenant_a, door_a)
    with django_capture_on_commit_callbacks(execute=True):
        subject.delete()
    listed = api(tenant_a.viewer).get("/api/v1/events")
    assert listed.status_code == 200
    rows = {row["id"]: row for row in listed.json()["results"]}
    assert all(rows[event_id]["snapshot_url"] is None for event_id in seen)


def company_with_files(api, tenant, door, media_root) -> list:
    enrolled_with_history(api, tenant, door)
    return [path for path in files_in(media_root) if path.parts[1] == str(tenant.company.pk)]


def test_a_storage_that_fails_for_a_moment_still_loses_the_company_files(
    api, tenant_a, door_a, media_root, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    settings.JOBS_INLINE = True
    assert len(company_with_files(api, tenant_a, door_a, media_root)) == 7
    delete, failures = default_storage.delete, []

    def flaky_delete(name):
        if not failures:
            failures.append(name)
            raise OSError("storage unavailable")
        delete(name)

    monkeypatch.setattr(default_storage, "delete", flaky_delete)
    with django_capture_on_commit_callbacks(execute=True):
        Company.objects.filter(pk=tenant_a.company.pk).delete()  # tenant: the company itself
    assert failures  # the first attempt failed, the retry finished the job
    assert files_in(media_root) == []


@pytest.mark.redis
def test_with_workers_the_company_purge_is_a_queued_job(
    api, tenant_a, door_a, media_root, settings, monkeypatch, django_capture_on_commit_callbacks
):
    import django_rq
    from rq import SimpleWorker

    from tests.conftest import redis_test_url

    # A queue of this test's own, so that other runs sharing the Redis database cannot empty it.
    name = f"media-test-{uuid.uuid4().hex[:8]}"
    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {
        "default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60},
        name: {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60},
    }
    monkeypatch.setattr(media, "enqueue", functools.partial(media.enqueue, queue=name))
    queue = django_rq.get_queue(name)
    files = company_with_files(api, tenant_a, door_a, media_root)
    with django_capture_on_commit_callbacks(execute=True):
        Company.objects.filter(pk=tenant_a.company.pk).delete()  # tenant: the company itself
    assert queue.count == 1
    # The subject's photos and snapshots went with their rows; the stranger's snapshot, which
    # no handler deletes, waits for the purge.
    (left,) = files_in(media_root)
    assert left in files and left.parts[0] == str(MediaKind.SNAPSHOT)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert files_in(media_root) == []
    queue.empty()
