"""Subjects enrolled the way HR enrols them: created with a real portrait through the
subject services, the enrolment job run after commit, the photo checked usable."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings
from PIL import Image

from accounts.services import retention_policy_current
from subjects import services as subject_services
from subjects.models import ConsentMethod, PhotoStatus, Subject
from tests.faces import portraits


def upload_of(picture: Image.Image, name: str = "face.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, portraits.jpeg(picture), content_type="image/jpeg")


def paper_consent(company) -> subject_services.ConsentGiven:
    """The consent HR records with a new subject: the signed paper form, to the current policy."""
    version = retention_policy_current(company=company).version
    return subject_services.ConsentGiven(method=ConsentMethod.PAPER, policy_version=version)


def enrol(tenant, name: str, picture: Image.Image, **fields) -> Subject:
    fields.setdefault("job_number", f"E-{abs(hash((tenant.company.pk, name))) % 100000:05d}")
    fields.setdefault("consent", paper_consent(tenant.company))
    # The enrolment job runs right after commit, in this process, also where jobs go to Redis.
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        subject = subject_services.subject_create(
            company=tenant.company, actor=tenant.admin, name=name, photos=[upload_of(picture)], **fields
        )
    photo = subject.photos.get()
    assert (photo.status, photo.reason) == (PhotoStatus.OK, ""), "the portrait did not enrol"
    return subject


def snapshot_of(picture: Image.Image) -> bytes:
    """What a pad's camera sends: the person a little smaller, JPEG quality 40."""
    return portraits.jpeg(portraits.recompressed(portraits.rescaled(picture, 0.8), 40), quality=40)
