"""Factories for every company-owned model. The isolation tests look models up here, so a
new tenant model without a factory fails them: add one when you add a model."""

import secrets
from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import AuditLog, Company, Job, RetentionPolicy, Role, User
from accounts.services import retention_policy_current
from devices.keys import hash_key
from devices.models import Box, DeviceStatusChange, Pad, Screen, StatusChange, TVBox
from events.models import Event, EventCorrection, EventDailyCount, EventKind, UnknownPerson, UnknownSnapshot
from integrations.models import ApiKey, HostSettings, LaggingBox, VisitorArrival, WebhookDelivery, WebhookEndpoint
from integrations.signing import new_message_id, new_secret
from privacy.models import SubjectLastSeen
from subjects.models import (
    Consent,
    ConsentMethod,
    Department,
    GalleryChange,
    GalleryCounter,
    GalleryOp,
    Photo,
    PhotoUpload,
    Subject,
    SubjectType,
)
from tests.images import jpeg_bytes
from visits.models import Visit

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
    """A subject who signed the company's consent form on paper, as the people HR enrols
    have; `SubjectFactory(consent=False)` for one who has not."""

    class Meta:
        model = Subject
        skip_postgeneration_save = True

    company = factory.SubFactory(CompanyFactory)
    subject_type = SubjectType.EMPLOYEE
    name = factory.Faker("name")
    job_number = factory.Sequence(lambda n: f"E{n:05d}")
    email = factory.LazyAttribute(lambda s: f"{s.job_number.lower()}@example.com")

    @factory.post_generation
    def consent(subject, create, extracted, **kwargs):
        if create and extracted is not False:
            Consent.objects.create(
                company=subject.company,
                subject=subject,
                given_at=timezone.now(),
                method=ConsentMethod.PAPER,
                policy=retention_policy_current(company=subject.company),
                recorded_by_repr="hr",
            )


class RetentionPolicyFactory(DjangoModelFactory):
    class Meta:
        model = RetentionPolicy
        django_get_or_create = ["company", "version"]

    company = factory.SubFactory(CompanyFactory)
    version = 1
    text = "Face photos are kept while you are enrolled and deleted when you withdraw your consent."


class ConsentFactory(DjangoModelFactory):
    class Meta:
        model = Consent

    company = factory.SubFactory(CompanyFactory)
    subject = factory.SubFactory(SubjectFactory, company=factory.SelfAttribute("..company"), consent=False)
    given_at = factory.LazyFunction(timezone.now)
    method = ConsentMethod.PAPER
    policy = factory.LazyAttribute(lambda consent: retention_policy_current(company=consent.company))
    recorded_by_repr = "hr"


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


class JobFactory(DjangoModelFactory):
    class Meta:
        model = Job

    company = factory.SubFactory(CompanyFactory)
    kind = "tests.job"
    timeout = 60


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


class GalleryCounterFactory(DjangoModelFactory):
    class Meta:
        model = GalleryCounter
        django_get_or_create = ["company"]

    company = factory.SubFactory(CompanyFactory)


class GalleryChangeFactory(DjangoModelFactory):
    """A log row written directly, as a test's fixture (the log is written by the listeners)."""

    class Meta:
        model = GalleryChange

    company = factory.SubFactory(CompanyFactory)
    sequence = factory.Sequence(lambda n: n + 1)
    subject_ref = factory.Sequence(lambda n: n + 1)
    op = GalleryOp.UPSERT
    reason = "subject_created"
    at = factory.LazyFunction(timezone.now)


class EventFactory(DjangoModelFactory):
    class Meta:
        model = Event

    company = factory.SubFactory(CompanyFactory)
    kind = EventKind.RECOGNIZED
    subject = factory.SubFactory(SubjectFactory, company=factory.SelfAttribute("..company"))
    subject_name = factory.LazyAttribute(lambda e: e.subject.name if e.subject else "")
    subject_type = factory.LazyAttribute(lambda e: e.subject.subject_type if e.subject else "")
    subject_job_number = factory.LazyAttribute(lambda e: e.subject.job_number if e.subject else "")
    happened_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    uid = factory.Sequence(lambda n: f"uid-{n}")


class UnknownPersonFactory(DjangoModelFactory):
    class Meta:
        model = UnknownPerson

    company = factory.SubFactory(CompanyFactory)
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)
    sightings = 1
    embedding = bytes(512)
    embedding_model = "dlib-resnet-v1"


class UnknownSnapshotFactory(DjangoModelFactory):
    class Meta:
        model = UnknownSnapshot

    company = factory.SubFactory(CompanyFactory)
    person = factory.SubFactory(UnknownPersonFactory, company=factory.SelfAttribute("..company"))
    image = factory.django.FileField(filename="snapshot.jpg", data=factory.LazyFunction(jpeg_bytes))
    quality = 0.5
    embedding = bytes(512)
    happened_at = factory.LazyFunction(timezone.now)


class EventCorrectionFactory(DjangoModelFactory):
    class Meta:
        model = EventCorrection

    company = factory.SubFactory(CompanyFactory)
    event = factory.SubFactory(EventFactory, company=factory.SelfAttribute("..company"))
    kind = "marked_stranger"
    original_kind = EventKind.RECOGNIZED


class WebhookEndpointFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    company = factory.SubFactory(CompanyFactory)
    url = factory.Sequence(lambda n: f"https://hooks{n}.example.com/kangaroo")
    event_types = factory.LazyFunction(lambda: ["event.recognized"])
    secret = factory.LazyFunction(new_secret)


class WebhookDeliveryFactory(DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    company = factory.SubFactory(CompanyFactory)
    endpoint = factory.SubFactory(WebhookEndpointFactory, company=factory.SelfAttribute("..company"))
    message_id = factory.LazyFunction(new_message_id)
    event_type = "event.recognized"
    body = '{"type":"event.recognized","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    status = "delivered"
    retry_until = factory.LazyFunction(timezone.now)


class LaggingBoxFactory(DjangoModelFactory):
    class Meta:
        model = LaggingBox

    company = factory.SubFactory(CompanyFactory)
    box = factory.SubFactory(BoxFactory, company=factory.SelfAttribute("..company"))
    since = factory.LazyFunction(timezone.now)


class PhotoUploadFactory(DjangoModelFactory):
    """A previewed bulk upload (without an archive file: the record is what the lists show)."""

    class Meta:
        model = PhotoUpload

    company = factory.SubFactory(CompanyFactory)
    file_name = "team.zip"
    size = 1000
    entries = factory.LazyFunction(list)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class ApiKeyFactory(DjangoModelFactory):
    class Meta:
        model = ApiKey

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Integration {n}")
    scopes = factory.LazyFunction(lambda: ["subjects:read"])
    prefix = factory.LazyFunction(lambda: secrets.token_hex(6))
    key_hash = factory.LazyFunction(lambda: hash_key(secrets.token_urlsafe(32)))


class HostSettingsFactory(DjangoModelFactory):
    class Meta:
        model = HostSettings

    company = factory.SubFactory(CompanyFactory)
    host = factory.SubFactory(SubjectFactory, company=factory.SelfAttribute("..company"))


class VisitorArrivalFactory(DjangoModelFactory):
    class Meta:
        model = VisitorArrival

    company = factory.SubFactory(CompanyFactory)
    visitor = factory.SubFactory(
        SubjectFactory, company=factory.SelfAttribute("..company"), subject_type=SubjectType.VISITOR
    )
    visit = "/"
    host_email = "host@example.com"


class EventDailyCountFactory(DjangoModelFactory):
    class Meta:
        model = EventDailyCount

    company = factory.SubFactory(CompanyFactory)
    day = factory.Sequence(lambda n: (timezone.now() - timedelta(days=400 + n)).date())
    kind = EventKind.RECOGNIZED
    subject_type = "employee"
    events = 3
    people = 2


class SubjectLastSeenFactory(DjangoModelFactory):
    class Meta:
        model = SubjectLastSeen

    company = factory.SubFactory(CompanyFactory)
    subject = factory.SubFactory(SubjectFactory, company=factory.SelfAttribute("..company"))
    at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=400))


class VisitFactory(DjangoModelFactory):
    """A visit of today, invited (without the invitation's mail: use `visit_create` for that)."""

    class Meta:
        model = Visit

    company = factory.SubFactory(CompanyFactory)
    visitor = factory.SubFactory(
        SubjectFactory, company=factory.SelfAttribute("..company"), subject_type=SubjectType.VISITOR
    )
    visitor_name = factory.SelfAttribute("visitor.name")
    visitor_email = factory.Sequence(lambda n: f"visitor{n}@example.org")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=3))
    link_token_hash = factory.LazyFunction(lambda: hash_key(secrets.token_urlsafe(32)))


# model -> factory, for the tests that walk every tenant model.
FACTORIES = {
    User: UserFactory,
    Department: DepartmentFactory,
    Subject: SubjectFactory,
    Photo: PhotoFactory,
    RetentionPolicy: RetentionPolicyFactory,
    Consent: ConsentFactory,
    GalleryCounter: GalleryCounterFactory,
    GalleryChange: GalleryChangeFactory,
    PhotoUpload: PhotoUploadFactory,
    AuditLog: AuditLogFactory,
    Job: JobFactory,
    Box: BoxFactory,
    Screen: ScreenFactory,
    Pad: PadFactory,
    TVBox: TVBoxFactory,
    DeviceStatusChange: DeviceStatusChangeFactory,
    Event: EventFactory,
    UnknownPerson: UnknownPersonFactory,
    UnknownSnapshot: UnknownSnapshotFactory,
    EventCorrection: EventCorrectionFactory,
    WebhookEndpoint: WebhookEndpointFactory,
    WebhookDelivery: WebhookDeliveryFactory,
    LaggingBox: LaggingBoxFactory,
    ApiKey: ApiKeyFactory,
    HostSettings: HostSettingsFactory,
    VisitorArrival: VisitorArrivalFactory,
    EventDailyCount: EventDailyCountFactory,
    SubjectLastSeen: SubjectLastSeenFactory,
    Visit: VisitFactory,
}
