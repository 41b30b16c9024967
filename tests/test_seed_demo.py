import pytest
from django.core.management import call_command

from accounts.models import Company, User
from events.models import Event
from subjects.models import Department, Photo, Subject

pytestmark = pytest.mark.django_db


def test_the_demo_is_created_once_and_its_owner_sees_only_their_company(client, capsys):
    call_command("seed_demo")
    call_command("seed_demo")  # `make run` twice must neither fail nor duplicate
    assert "demo-owner" in capsys.readouterr().out
    assert Company.objects.filter(slug__in=["demo", "other"]).count() == 2
    demo = Company.objects.get(slug="demo")
    assert User.objects.for_company(demo).count() == 1
    assert Department.objects.for_company(demo).count() == 3
    assert Subject.objects.for_company(demo).count() == 5
    assert Event.objects.for_company(demo).filter(kind="recognized").count() == 5
    assert Event.objects.for_company(demo).filter(kind="stranger").count() == 1
    other = Company.objects.get(slug="other")
    assert not Event.objects.for_company(other).filter(subject__company=demo).exists()
    assert client.login(username="demo-owner@demo", password="kangaroo-demo-2026")
    page = client.get("/admin/subjects/department/").content.decode()
    assert "Engineering" in page and "Research" not in page


def test_the_demo_hosts_have_mail_and_two_people_are_enrolled_from_real_portraits(
    settings, django_capture_on_commit_callbacks
):
    settings.JOBS_INLINE = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    demo = Company.objects.get(slug="demo")
    employees = Subject.objects.for_company(demo).filter(subject_type="employee").order_by("job_number")
    # Hosts are told of invitations and arrivals by e-mail, on an address that reaches nobody.
    assert list(employees.values_list("email", flat=True)) == [
        "meiling.chen@demo.example.com", "zhiming.lin@demo.example.com", "alex.morgan@demo.example.com",
    ]  # fmt: skip
    photos = Photo.objects.for_company(demo).order_by("subject__name")
    assert [(photo.subject.name, photo.status) for photo in photos] == [("Alex Morgan", "ok"), ("陳美玲", "ok")]
    assert all(photo.embedding for photo in photos)  # the face engine enrolled them: the doors know these faces
