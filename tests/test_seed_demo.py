import pytest
from django.core.management import call_command

from accounts.models import Company, User
from events.models import Event
from subjects.models import Department, Subject

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
