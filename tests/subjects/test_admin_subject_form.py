"""The subject page in the admin: add and change through the services, photos inline."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditLog
from subjects.models import Photo, Subject
from tests.factories import PhotoFactory, SubjectFactory
from tests.images import jpeg_bytes

pytestmark = pytest.mark.django_db

INLINE = {
    "consents-TOTAL_FORMS": "0",
    "consents-INITIAL_FORMS": "0",
    "consents-MIN_NUM_FORMS": "0",
    "consents-MAX_NUM_FORMS": "1000",
    "photos-TOTAL_FORMS": "1",
    "photos-INITIAL_FORMS": "0",
    "photos-MIN_NUM_FORMS": "0",
    "photos-MAX_NUM_FORMS": "5",
}


def form_data(**fields):
    base = {"subject_type": "employee", "name": "王小明", "job_number": "E42", "email": "", "phone": ""}
    return INLINE | base | fields


def test_an_admin_adds_a_subject_with_a_photo(client, tenant_a, media_root):
    client.force_login(tenant_a.admin)
    # The person signed the consent form, recorded on the same page as the photo.
    data = form_data(**{"consents-TOTAL_FORMS": "1", "consents-0-consent_method": "paper"})
    data["photos-0-upload"] = SimpleUploadedFile("face.jpg", jpeg_bytes())
    response = client.post("/admin/subjects/subject/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    subject = Subject.objects.for_company(tenant_a.company).get(job_number="E42")
    assert subject.name == "王小明"
    assert Photo.objects.for_company(tenant_a.company).filter(subject=subject).count() == 1
    assert AuditLog.objects.for_company(tenant_a.company).filter(action="subject.create").exists()


def test_a_bad_photo_in_the_admin_is_a_form_error_and_nothing_is_written(client, tenant_a, media_root):
    client.force_login(tenant_a.admin)
    data = form_data()
    data["photos-0-upload"] = SimpleUploadedFile("face.jpg", b"not an image at all")
    response = client.post("/admin/subjects/subject/add/", data)
    assert response.status_code == 200
    assert "not a JPEG, PNG" in response.content.decode()
    assert not Subject.objects.for_company(tenant_a.company).exists()
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))


def test_a_duplicate_email_in_the_admin_is_a_form_error_in_the_company_only(client, tenants):
    a, b = tenants
    SubjectFactory(company=a.company, email="mei@example.com")
    SubjectFactory(company=b.company, email="lin@example.com", job_number="E43")
    client.force_login(a.admin)
    taken = client.post("/admin/subjects/subject/add/", form_data(email=" MEI@example.com"))
    assert taken.status_code == 200 and "Another subject of this company has this e-mail" in taken.content.decode()
    free = client.post("/admin/subjects/subject/add/", form_data(email="lin@example.com", job_number="E43"))
    assert free.status_code == 302


def test_a_visitor_added_without_job_number_gets_one(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post("/admin/subjects/subject/add/", form_data(subject_type="visitor", job_number=""))
    assert response.status_code == 302
    assert Subject.objects.for_company(tenant_a.company).get().job_number.startswith("V-")


def test_the_change_page_shows_the_photo_through_the_checked_view(client, tenant_a):
    photo = PhotoFactory(company=tenant_a.company)
    client.force_login(tenant_a.admin)  # faces are for owners and admins ("view biometrics")
    page = client.get(f"/admin/subjects/subject/{photo.subject_id}/change/").content.decode()
    assert f"/api/v1/photos/{photo.pk}/thumbnail" in page
    assert client.get(f"/api/v1/photos/{photo.pk}/thumbnail").status_code == 200  # session auth works


def test_a_change_goes_through_the_service(client, tenant_a):
    subject = SubjectFactory(company=tenant_a.company, job_number="E1", title="")
    client.force_login(tenant_a.admin)
    data = form_data(name=subject.name, job_number="E1", title="Lead", email=subject.email)
    data |= {"photos-INITIAL_FORMS": "0", "photos-TOTAL_FORMS": "0"}
    response = client.post(f"/admin/subjects/subject/{subject.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    subject.refresh_from_db()
    assert subject.title == "Lead"
    assert AuditLog.objects.for_company(tenant_a.company).get(action="subject.update").changes["title"] == ["", "Lead"]


def test_archive_action(client, tenant_a):
    subject = SubjectFactory(company=tenant_a.company)
    client.force_login(tenant_a.admin)
    client.post(
        "/admin/subjects/subject/", {"action": "archive_selected", "_selected_action": [subject.pk]}, follow=True
    )
    subject.refresh_from_db()
    assert subject.archived
