"""The bulk photo upload keeps the consent rule: a file for a subject without a consent in
force (while the company requires it) is left out with `consent_required`, in the preview
and again when the photos are stored; another company's rule is its own."""

from __future__ import annotations

import pytest

from accounts.services import company_update
from subjects import services
from subjects.models import Photo
from tests.factories import SubjectFactory
from tests.subjects.test_photo_upload import _commits, _jobs_inline, by_name, confirm, preview  # noqa: F401
from tests.subjects.zips import astronaut_jpeg, hopper_png

pytestmark = pytest.mark.django_db


def test_a_subject_without_consent_is_left_out_of_the_preview(tenant_a):
    SubjectFactory(company=tenant_a.company, job_number="E-0042")
    SubjectFactory(company=tenant_a.company, job_number="E-0043", consent=False)
    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()})
    files = by_name(upload)
    assert files["E-0042.jpg"]["status"] == "matched"
    assert files["E-0043.png"]["status"] == "consent_required"
    confirm(tenant_a, upload)
    stored = Photo.objects.for_company(tenant_a.company)
    assert list(stored.values_list("subject__job_number", flat=True)) == ["E-0042"]


def test_a_consent_withdrawn_after_the_preview_stores_nothing_for_that_subject(tenant_a):
    mei = SubjectFactory(company=tenant_a.company, job_number="E-0042")
    SubjectFactory(company=tenant_a.company, job_number="E-0043")
    upload = preview(tenant_a, {"E-0042.jpg": astronaut_jpeg(), "E-0043.png": hopper_png()})
    assert [entry["status"] for entry in upload.entries] == ["matched", "matched"]
    services.consent_withdraw(company=tenant_a.company, actor=tenant_a.admin, subject=mei)
    confirm(tenant_a, upload)
    upload.refresh_from_db()
    assert [entry["status"] for entry in upload.entries] == ["consent_required", "stored"]
    assert not Photo.objects.for_company(tenant_a.company).filter(subject=mei).exists()


def test_each_company_s_consent_rule_is_its_own(tenants):
    a, b = tenants
    company_update(company=b.company, actor=b.owner, consent_required=False)
    SubjectFactory(company=a.company, job_number="E-1", consent=False)
    SubjectFactory(company=b.company, job_number="E-1", consent=False)
    assert by_name(preview(a, {"E-1.jpg": astronaut_jpeg()}))["E-1.jpg"]["status"] == "consent_required"
    assert by_name(preview(b, {"E-1.jpg": astronaut_jpeg()}))["E-1.jpg"]["status"] == "matched"
