"""Factories for every company-owned model. The isolation tests look models up here, so a
new tenant model without a factory fails them: add one when you add a model."""

import factory
from factory.django import DjangoModelFactory

from accounts.models import AuditLog, Company, Role, User
from subjects.models import Department, Photo, Subject, SubjectType
from tests.images import jpeg_bytes

PASSWORD = "correct-Horse-battery-9"


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ["slug"]

    name = factory.Faker("company")
    slug = factory.Sequence(lambda n: f"company-{n}")
    time_zone = "Asia/Taipei"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    company = factory.SubFactory(CompanyFactory)
    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = Role.VIEWER
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class DepartmentFactory(DjangoModelFactory):
    class Meta:
        model = Department

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Department {n}")


class SubjectFactory(DjangoModelFactory):
    class Meta:
        model = Subject

    company = factory.SubFactory(CompanyFactory)
    subject_type = SubjectType.EMPLOYEE
    name = factory.Faker("name")
    job_number = factory.Sequence(lambda n: f"E{n:05d}")
    email = factory.LazyAttribute(lambda s: f"{s.job_number.lower()}@example.com")


class PhotoFactory(DjangoModelFactory):
    """A stored photo (files written to MEDIA_ROOT) without going through upload checks."""

    class Meta:
        model = Photo

    company = factory.SubFactory(CompanyFactory)
    subject = factory.SubFactory(SubjectFactory, company=factory.SelfAttribute("..company"))
    image = factory.django.FileField(filename="photo.jpg", data=factory.LazyFunction(jpeg_bytes))
    thumbnail = factory.django.FileField(filename="thumb.jpg", data=factory.LazyFunction(jpeg_bytes))
    width = 64
    height = 64
    sha256 = "0" * 64


class AuditLogFactory(DjangoModelFactory):
    class Meta:
        model = AuditLog

    company = factory.SubFactory(CompanyFactory)
    actor_repr = "someone"
    action = "thing.create"


# model -> factory, for the tests that walk every tenant model.
FACTORIES = {
    User: UserFactory,
    Department: DepartmentFactory,
    Subject: SubjectFactory,
    Photo: PhotoFactory,
    AuditLog: AuditLogFactory,
}
