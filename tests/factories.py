"""Factories for every company-owned model. The isolation tests look models up here, so a
new tenant model without a factory fails them: add one when you add a model."""

import factory
from factory.django import DjangoModelFactory

from accounts.models import AuditLog, Company, Role, User
from subjects.models import Department

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
    AuditLog: AuditLogFactory,
}
