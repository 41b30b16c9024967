"""Factories for every company-owned model. The isolation tests look models up here, so a
new tenant model without a factory fails them: add one when you add a model."""

import secrets

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import AuditLog, Company, Role, User
from devices.keys import hash_key
from devices.models import Box, DeviceStatusChange, Pad, Screen, StatusChange, TVBox
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


class DeviceFactory(DjangoModelFactory):
    """A device with a key nobody knows; tests that need the key use the services."""

    class Meta:
        abstract = True

    company = factory.SubFactory(CompanyFactory)
    key_prefix = factory.LazyFunction(lambda: secrets.token_hex(6))
    key_hash = factory.LazyFunction(lambda: hash_key(secrets.token_urlsafe(32)))
    key_issued_at = factory.LazyFunction(timezone.now)


class BoxFactory(DeviceFactory):
    class Meta:
        model = Box

    name = factory.Sequence(lambda n: f"Box {n}")
    serial = factory.Sequence(lambda n: f"KB-{n:05d}")
    max_screens = 4


class ScreenFactory(DeviceFactory):
    class Meta:
        model = Screen

    name = factory.Sequence(lambda n: f"Screen {n}")
    camera_url = factory.Sequence(lambda n: f"rtsp://viewer:cam-pass-{n}@10.0.0.{n % 250 + 1}:554/stream1")


class PadFactory(DeviceFactory):
    class Meta:
        model = Pad

    name = factory.Sequence(lambda n: f"Pad {n}")


class TVBoxFactory(DeviceFactory):
    class Meta:
        model = TVBox

    name = factory.Sequence(lambda n: f"TV box {n}")


class DeviceStatusChangeFactory(DjangoModelFactory):
    class Meta:
        model = DeviceStatusChange

    company = factory.SubFactory(CompanyFactory)
    device_kind = "box"
    device_id = 1
    device_name = "Box"
    change = StatusChange.ONLINE
    at = factory.LazyFunction(timezone.now)


# model -> factory, for the tests that walk every tenant model.
FACTORIES = {
    User: UserFactory,
    Department: DepartmentFactory,
    AuditLog: AuditLogFactory,
    Box: BoxFactory,
    Screen: ScreenFactory,
    Pad: PadFactory,
    TVBox: TVBoxFactory,
    DeviceStatusChange: DeviceStatusChangeFactory,
}
