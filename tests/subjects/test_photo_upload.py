"""Bulk photo upload: a ZIP of photos named by job number, previewed, then stored by a job."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Job, JobState
from kangaroo.errors import KangarooError
from subjects import photo_uploads
from subjects.domain_signals import photo_added
from subjects.models import Photo, PhotoStatus, PhotoUpload, PhotoUploadState
from tests.factories import PhotoFactory, SubjectFactory
from tests.images import encode, picture
from tests.subjects.zips import astronaut_jpeg, hopper_png, other_jpeg, uploaded, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _jobs_inline(settings):
    """These tests are about what the store job does, not the queue (test_photo_upload_queue),
    so it runs in the test's thread, right after the confirmation."""
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = False


def files_under(root, folder: str) -> list[str]:
    base = root / folder
    return sorted(str(path.relative_to(root)) for path in base.rglob("*") if path.is_file()) if base.exists() else []


def preview(tenant, files: dict[str, bytes], name="team.zip") -> PhotoUpload:
    return photo_uploads.photo_upload_preview(
        company=tenant.company, actor=tenant.admin, upload=uploaded(zip_bytes(files), name)
    )


def by_name(upload: PhotoUpload) -> dict[str, dict]:
    return {entry["name"]: entry for entry in upload.entries}


def refused(tenant, data: bytes) -> KangarooError:
    with pytest.raises(KangarooError) as caught:
        photo_uploads.photo_upload_preview(company=tenant.company, actor=tenant.admin, upload=uploaded(data))
    return caught.value


_after_commit = None


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks):
    """Jobs and file deletions wait for the commit, which a test's transaction never makes:
    the helpers below run them at the end of each step, as a real commit would."""
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    yield
    _after_commit = None


def confirm(tenant, upload) -> Job:
    with _after_commit(execute=True):
        return photo_uploads.photo_upload_confirm(company=tenant.company, actor=tenant.admin, upload=upload)


def expire(**kwargs) -> int:
    with _after_commit(execute=True):
        return photo_uploads.photo_uploads_expire(**kwargs)


@pytest.fixture
def team(tenant_a):
    company = tenant_a.company
    return {
        "mei": SubjectFactory(company=company, name="陳美玲", job_number="E-0042"),
        "lin": SubjectFactory(company=company, name="林志明", job_number="E-0043"),
        "gone": SubjectFactory(company=company, name="Old Timer", job_number="E-0001", archived=True),
    }


# --- The preview ----------------------------------------------------------------------------------


def test_the_preview_matches_each_file_by_job_number_and_stores_nothing_but_the_archive(tenant_a, team, media_root):
    upload = preview(
        tenant_a,
        {
            "E-0042.jpg": astronaut_jpeg(),
            "floor 2/E-0043.PNG": hopper_png(),  # a folder per floor, an upper-case extension
            "E-0042_2.JPEG": other_jpeg(),  # a second photo
            "E-9999.jpg": other_jpeg(),
            "E-0043_2.jpg": b"not an image at all",
            "notes.txt": b"hello",
            "E-0001.jpg": other_jpeg(),
            "__MACOSX/._E-0042.jpg": b"\x00\x05\x16\x07",
            ".DS_Store": b"junk",
            "floor 2/": b"",
            "floor 2/Thumbs.db": b"junk",
        },
    )
    files = by_name(upload)
    assert set(files) == {
        "E-0042.jpg", "floor 2/E-0043.PNG", "E-0042_2.JPEG", "E-9999.jpg", "E-0043_2.jpg", "notes.txt", "E-0001.jpg",
    }  # fmt: skip
    assert files["E-0042.jpg"]["status"] == "matched"
    assert files["E-0042.jpg"]["subject"] == team["mei"].pk
    assert files["E-0042.jpg"]["subject_name"] == "陳美玲"
    assert files["floor 2/E-0043.PNG"]["subject"] == team["lin"].pk
    assert files["E-0042_2.JPEG"]["status"] == "matched"
    assert files["E-0042_2.JPEG"]["job_number"] == "E-0042"
    assert files["E-9999.jpg"]["status"] == "job_number_unknown"
    assert files["E-0043_2.jpg"]["status"] == "photo_invalid"
    assert files["E-0043_2.jpg"]["reason"] == "unsupported_format"
    assert files["notes.txt"]["status"] == "photo_invalid"
    assert files["E-0001.jpg"]["status"] == "subject_archived"
    assert upload.state == PhotoUploadState.PREVIEW
    assert upload.file_name == "team.zip"
    assert not Photo.objects.for_company(tenant_a.company).exists()
    assert files_under(media_root, "photos") == [] and files_under(media_root, "thumbs") == []
    assert files_under(media_root, "uploads") == [upload.archive]


def test_another_companys_job_numbers_are_unknown(tenant_a, tenant_b, team):
    SubjectFactory(company=tenant_b.company, job_number="B-0007")
    upload = preview(tenant_a, {"B-0007.jpg": astronaut_jpeg(), "E-0042.jpg": hopper_png()})
    assert by_name(upload)["B-0007.jpg"]["status"] == "job_number_unknown"
    assert by_name(upload)["B-0007.jpg"]["subject"] is None
    assert by_name(upload)["E-0042.jpg"]["status"] == "matched"


def test_names_match_whatever_case_a_file_system_gave_them(tenant_a, team):
    upload = preview(tenant_a, {"e-0042.jpg": astronaut_jpeg(), "E-0043 (2).jpg": hopper_png()})
    assert [entry["subject"] for entry in upload.entries] == [team["mei"].pk, team["lin"].pk]


def test_a_job_number_ending_in_a_number_is_not_taken_for_a_second_photo(tenant_a, team):
    odd = SubjectFactory(company=tenant_a.company, job_number="E-0042_2")
    upload = preview(tenant_a, {"E-0042_2.jpg": astronaut_jpeg()})
    assert upload.entries[0]["subject"] == odd.pk


def test_the_sixth_photo_of_a_subject_is_over_the_limit(tenant_a, team):
    for _ in range(3):
        PhotoFactory(company=tenant_a.company, subject=team["mei"])
    upload = preview(
        tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0042_2.jpg": other_jpeg(), "E-0042_3.jpg": hopper_png()}
    )
    assert [entry["status"] for entry in upload.entries] == ["matched", "matched", "subject_photo_limit"]


class Big5Name(zipfile.ZipInfo):
    """A member named as Windows' own zip names it on a Traditional Chinese system: in
    Big5 (CP950), without the UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("cp950"), self.flag_bits & ~0x800


def test_names_written_by_traditional_chinese_windows_are_read(tenant_a):
    wang = SubjectFactory(company=tenant_a.company, job_number="王小明")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(Big5Name("照片/王小明.jpg"), astronaut_jpeg())
    assert "照片/王小明.jpg".encode("cp950") in out.getvalue()
    upload = photo_uploads.photo_upload_preview(
        company=tenant_a.company, actor=tenant_a.admin, upload=uploaded(out.getvalue())
    )
    assert upload.entries[0]["name"] == "照片/王小明.jpg"
    assert upload.entries[0]["subject"] == wang.pk


# --- Hostile archives -------------------------------------------------------------------------------


def test_a_file_that_is_not_a_zip_is_refused(tenant_a, media_root):
    assert refused(tenant_a, encode(picture(), "PNG")).code == "zip_invalid"
    assert refused(tenant_a, b"PK\x03\x04 truncated").code == "zip_invalid"
    assert refused(tenant_a, b"").code == "zip_invalid"
    assert files_under(media_root, "uploads") == []
    assert not PhotoUpload.objects.for_company(tenant_a.company).exists()


def test_an_archive_without_photos_is_refused(tenant_a):
    assert refused(tenant_a, zip_bytes({"readme.txt": b"hi", "__MACOSX/._a.jpg": b"x"})).code == "zip_empty"


def test_an_archive_larger_than_the_limit_is_refused(tenant_a, team, settings):
    settings.PHOTO_ZIP_MAX_BYTES = 10_000
    error = refused(tenant_a, zip_bytes({"E-0042.png": hopper_png()}, compression=zipfile.ZIP_STORED))
    assert error.code == "zip_too_large"
    assert error.status == 413
    assert error.extra == {"limit": 10_000}


def test_thousands_of_entries_are_refused_before_they_are_parsed(tenant_a, settings):
    members = {f"x/E-{n:05d}.jpg": b"" for n in range(5000)}
    error = refused(tenant_a, zip_bytes(members, compression=zipfile.ZIP_STORED))
    assert error.code == "zip_too_many_files"
    assert error.extra == {"limit": settings.PHOTO_ZIP_MAX_FILES}


def test_more_files_than_allowed_are_refused_even_among_junk(tenant_a, settings):
    settings.PHOTO_ZIP_MAX_FILES = 10
    members = {f"E-{n:05d}.jpg": b"x" for n in range(11)} | {"__MACOSX/._E-1.jpg": b"x"}
    assert refused(tenant_a, zip_bytes(members)).code == "zip_too_many_files"


def test_a_zip_bomb_is_refused_without_unpacking_it(tenant_a, team, settings):
    bomb = zip_bytes({f"E-0042_{n}.jpg": b"\0" * (9 * 2**20) for n in range(4)})
    assert len(bomb) < 100_000  # 36 MB of zeros in a few KB
    settings.PHOTO_ZIP_MAX_TOTAL_BYTES = 20 * 2**20
    error = refused(tenant_a, bomb)
    assert error.code == "zip_unpacks_too_large"
    assert error.extra == {"limit": 20 * 2**20}


def test_one_oversized_file_is_that_files_problem(tenant_a, team, settings):
    settings.PHOTO_MAX_BYTES = 2**20
    upload = preview(tenant_a, {"E-0042.jpg": b"\0" * (2 * 2**20), "E-0043.png": hopper_png()})
    assert [(entry["status"], entry["reason"]) for entry in upload.entries] == [
        ("photo_invalid", "too_large"),
        ("matched", ""),
    ]


def test_a_file_whose_header_understates_its_size_is_read_no_further_than_the_limit(tenant_a, team, settings):
    settings.PHOTO_MAX_BYTES = 2**20
    data = zip_bytes({"E-0042.jpg": b"\0" * (3 * 2**20)})
    # Claim 100 bytes in both headers: the stream still inflates to 3 MB.
    real = (3 * 2**20).to_bytes(4, "little")
    data = data.replace(real, (100).to_bytes(4, "little"))
    upload = photo_uploads.photo_upload_preview(company=tenant_a.company, actor=tenant_a.admin, upload=uploaded(data))
    assert upload.entries[0]["status"] == "photo_invalid"


def test_paths_in_the_archive_count_for_their_base_name_only(tenant_a, team, tmp_path, media_root):
    upload = preview(
        tenant_a,
        {
            "../../../../tmp/E-0042.jpg": astronaut_jpeg(),
            "/etc/E-0043.png": hopper_png(),
            "C:\\hr\\E-0042_2.jpg": other_jpeg(),
        },
    )
    assert [entry["subject"] for entry in upload.entries] == [team["mei"].pk, team["lin"].pk, team["mei"].pk]
    confirm(tenant_a, upload)
    assert Photo.objects.for_company(tenant_a.company).count() == 3
    stored = files_under(media_root, "photos") + files_under(media_root, "thumbs")
    assert all(name.endswith(".jpg") and "tmp" not in name for name in stored)
    assert not (tmp_path / "E-0042.jpg").exists()


# --- Confirm: the job stores them ------------------------------------------------------------------------


def test_confirming_stores_the_matched_photos_and_lets_the_archive_go(tenant_a, team, media_root):
    announced = []

    def listen(sender, company, ids, subject_ids, **kwargs):
        announced.append(list(zip(ids, subject_ids, strict=True)))

    photo_added.connect(listen)
    try:
        upload = preview(
            tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png(), "E-9999.jpg": other_jpeg()}
        )
        job = confirm(tenant_a, upload)
    finally:
        photo_added.disconnect(listen)
    upload.refresh_from_db()
    job.refresh_from_db()
    photos = list(Photo.objects.for_company(tenant_a.company).order_by("pk"))
    assert [photo.subject_id for photo in photos] == [team["mei"].pk, team["lin"].pk]
    assert {photo.status for photo in photos} <= set(PhotoStatus.values)
    assert announced == [[(photos[0].pk, team["mei"].pk), (photos[1].pk, team["lin"].pk)]]  # one signal for all
    assert upload.state == PhotoUploadState.STORED
    assert [entry["status"] for entry in upload.entries] == ["stored", "stored", "job_number_unknown"]
    assert [entry["photo"] for entry in upload.entries] == [photos[0].pk, photos[1].pk, None]
    assert upload.archive == ""
    assert files_under(media_root, "uploads") == []
    assert len(files_under(media_root, "photos")) == 2
    assert (job.kind, job.state, job.done, job.total) == ("photos.bulk_upload", JobState.DONE, 2, 2)


def test_a_picture_the_subject_has_already_is_a_duplicate(tenant_a, team):
    first = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg()})
    confirm(tenant_a, first)
    again = preview(
        tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png(), "E-0043_2.png": hopper_png()}
    )
    confirm(tenant_a, again)
    again.refresh_from_db()
    assert [entry["status"] for entry in again.entries] == ["photo_duplicate", "stored", "photo_duplicate"]
    assert Photo.objects.for_company(tenant_a.company).count() == 2


def test_a_file_damaged_past_its_header_is_refused_when_stored(tenant_a, team):
    damaged = astronaut_jpeg()[:3000]  # the header reads, the picture does not
    upload = preview(tenant_a, {"E-0042.jpg": damaged, "E-0043.png": hopper_png()})
    assert [entry["status"] for entry in upload.entries] == ["matched", "matched"]
    confirm(tenant_a, upload)
    upload.refresh_from_db()
    assert [(entry["status"], entry["reason"]) for entry in upload.entries] == [
        ("photo_invalid", "truncated"),
        ("stored", ""),
    ]


def test_a_subject_archived_or_deleted_after_the_preview_gets_nothing(tenant_a, team):
    from subjects import services

    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()})
    services.subject_archive(company=tenant_a.company, actor=tenant_a.admin, subject=team["mei"])
    services.subject_delete(company=tenant_a.company, actor=tenant_a.admin, subject=team["lin"])
    confirm(tenant_a, upload)
    upload.refresh_from_db()
    assert [entry["status"] for entry in upload.entries] == ["subject_archived", "job_number_unknown"]
    assert not Photo.objects.for_company(tenant_a.company).exists()


def test_a_failure_while_storing_stores_nothing_and_leaves_no_file(tenant_a, team, media_root, monkeypatch):
    from kangaroo import media

    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()})
    real_save, calls = media.media_save, []

    def failing_save(**kwargs):
        calls.append(kwargs["kind"])
        if len(calls) >= 3:  # from the second photo on: the first one's files are written by then
            raise OSError("storage down")
        return real_save(**kwargs)

    monkeypatch.setattr("subjects.services.media_save", failing_save)
    job = confirm(tenant_a, upload)
    job.refresh_from_db()
    upload.refresh_from_db()
    assert job.state == JobState.FAILED  # after its retries
    assert not Photo.objects.for_company(tenant_a.company).exists()
    assert files_under(media_root, "photos") == [] and files_under(media_root, "thumbs") == []
    # The archive waits for the failed job to be settled; then it goes too.
    assert files_under(media_root, "uploads") == [upload.archive]
    assert upload.state == PhotoUploadState.STORING
    assert expire() == 1
    upload.refresh_from_db()
    assert upload.state == PhotoUploadState.FAILED
    assert files_under(media_root, "uploads") == []


def test_an_upload_is_confirmed_once(tenant_a, team):
    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg()})
    confirm(tenant_a, upload)
    with pytest.raises(KangarooError) as caught:
        confirm(tenant_a, upload)
    assert caught.value.code == "photo_upload_confirmed"
    assert Job.objects.for_company(tenant_a.company).count() == 1


def test_an_upload_that_matched_nothing_cannot_be_confirmed(tenant_a, team):
    upload = preview(tenant_a, {"E-9999.jpg": astronaut_jpeg()})
    with pytest.raises(KangarooError) as caught:
        confirm(tenant_a, upload)
    assert caught.value.code == "photo_upload_nothing_to_store"


# --- Expiry ------------------------------------------------------------------------------------------------


def test_an_unconfirmed_upload_expires_with_its_archive(tenant_a, team, media_root):
    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg()})
    assert expire() == 0
    later = timezone.now() + timedelta(hours=2)
    with pytest.raises(KangarooError) as caught:
        PhotoUpload.objects.for_company(tenant_a.company).filter(pk=upload.pk).update(expires_at=timezone.now())
        confirm(tenant_a, upload)
    assert caught.value.code == "photo_upload_expired"
    assert expire(now=later) == 1
    assert not PhotoUpload.objects.for_company(tenant_a.company).exists()
    assert files_under(media_root, "uploads") == []


def test_deleting_a_preview_deletes_its_archive(tenant_a, team, media_root):
    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg()})
    with _after_commit(execute=True):
        photo_uploads.photo_upload_delete(company=tenant_a.company, actor=tenant_a.admin, upload=upload)
    assert files_under(media_root, "uploads") == []


# --- Storing in batches: memory, failures halfway, retries ------------------------------------------


def stored_files_match_rows(tenant, media_root) -> bool:
    """Every photo file on disk belongs to a photo row, and every row's files are there."""
    rows = Photo.objects.for_company(tenant.company)
    named = sorted([photo.image.name for photo in rows] + [photo.thumbnail.name for photo in rows])
    return files_under(media_root, "photos") + files_under(media_root, "thumbs") == named


def test_the_archive_is_read_and_stored_a_batch_at_a_time(tenant_a, team, monkeypatch):
    from subjects import services

    monkeypatch.setattr(photo_uploads, "STORE_CHUNK", 2)
    steps: list[str] = []
    real_read, real_add = photo_uploads.photo_zip.zip_read, services.photos_add_bulk

    def read(archive, index):
        steps.append("read")
        return real_read(archive, index)

    def add(**kwargs):
        steps.append(f"store {len(kwargs['photos'])}")
        return real_add(**kwargs)

    monkeypatch.setattr(photo_uploads.photo_zip, "zip_read", read)
    monkeypatch.setattr(photo_uploads, "photos_add_bulk", add)
    subjects = [SubjectFactory(company=tenant_a.company, job_number=f"T-{n}") for n in range(5)]
    upload = preview(tenant_a, {f"T-{n}.jpg": other_jpeg((40 * n, 90, 120)) for n in range(5)})
    steps.clear()
    job = confirm(tenant_a, upload)
    # Each photo is read when its batch is stored: never more than two images at once.
    assert steps == ["read", "read", "store 2", "read", "read", "store 2", "read", "store 1"]
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == (JobState.DONE, 5, 5)
    assert sorted(Photo.objects.for_company(tenant_a.company).values_list("subject_id", flat=True)) == sorted(
        subject.pk for subject in subjects
    )


def test_a_failure_in_a_later_batch_keeps_the_batches_stored_and_leaves_no_orphan_file(
    tenant_a, team, media_root, monkeypatch
):
    from kangaroo import media

    monkeypatch.setattr(photo_uploads, "STORE_CHUNK", 1)
    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()})
    real_save, calls = media.media_save, []

    def failing_save(**kwargs):
        calls.append(kwargs["kind"])
        if len(calls) == 3:  # the second photo's first file: its thumbnail is never written
            raise OSError("storage down")
        if len(calls) > 3:  # and every retry fails after its first file is written
            real_save(**kwargs)
            raise OSError("storage down")
        return real_save(**kwargs)

    monkeypatch.setattr("subjects.services.media_save", failing_save)
    job = confirm(tenant_a, upload)
    job.refresh_from_db()
    upload.refresh_from_db()
    assert job.state == JobState.FAILED
    # The first batch committed: its photo, its files and its entry agree.
    [photo] = Photo.objects.for_company(tenant_a.company)
    assert photo.subject_id == team["mei"].pk
    assert [entry["status"] for entry in upload.entries] == ["stored", "matched"]
    assert upload.entries[0]["photo"] == photo.pk
    assert stored_files_match_rows(tenant_a, media_root)
    assert expire() == 1
    upload.refresh_from_db()
    assert upload.state == PhotoUploadState.FAILED
    assert files_under(media_root, "uploads") == []
    assert stored_files_match_rows(tenant_a, media_root)


def test_a_failure_after_the_photos_are_written_leaves_no_file(tenant_a, team, media_root, monkeypatch):
    from subjects import services

    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()})

    def add_then_fail(**kwargs):
        services.photos_add_bulk(**kwargs)  # rows and files written, not committed yet
        raise OSError("database gone")

    monkeypatch.setattr(photo_uploads, "photos_add_bulk", add_then_fail)
    job = confirm(tenant_a, upload)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert not Photo.objects.for_company(tenant_a.company).exists()
    assert files_under(media_root, "photos") == [] and files_under(media_root, "thumbs") == []


def test_a_retry_goes_on_with_the_photos_not_stored_yet(tenant_a, team, media_root, monkeypatch):
    from kangaroo import media

    monkeypatch.setattr(photo_uploads, "STORE_CHUNK", 1)
    upload = preview(
        tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png(), "E-0042_2.jpg": other_jpeg()}
    )
    real_save, calls = media.media_save, []

    def flaky_save(**kwargs):
        calls.append(kwargs["kind"])
        if len(calls) == 3:  # once, in the second batch
            raise OSError("storage blip")
        return real_save(**kwargs)

    monkeypatch.setattr("subjects.services.media_save", flaky_save)
    job = confirm(tenant_a, upload)
    job.refresh_from_db()
    upload.refresh_from_db()
    assert (job.state, job.attempts, job.done, job.total) == (JobState.DONE, 2, 3, 3)
    assert upload.state == PhotoUploadState.STORED
    assert [entry["status"] for entry in upload.entries] == ["stored", "stored", "stored"]
    photos = Photo.objects.for_company(tenant_a.company)
    assert sorted(entry["photo"] for entry in upload.entries) == sorted(photo.pk for photo in photos)
    assert photos.count() == 3  # the first photo was not stored twice
    assert stored_files_match_rows(tenant_a, media_root)


def test_a_failure_while_recording_the_preview_leaves_no_archive(tenant_a, team, media_root, monkeypatch):
    def failing_audit(**kwargs):
        raise OSError("database gone")

    monkeypatch.setattr(photo_uploads, "audit_record", failing_audit)
    with pytest.raises(OSError):
        preview(tenant_a, {"E-0042.jpg": astronaut_jpeg()})
    assert files_under(media_root, "uploads") == []
    assert not PhotoUpload.objects.for_company(tenant_a.company).exists()
