"""Every change to a department, subject or photo, from every entry point (API, admin,
import, commands), is announced by its service with one domain signal per kind of change,
inside the service's transaction (subjects/domain_signals.py)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction

from accounts.models import AuditLog, Company
from subjects import services
from subjects.domain_signals import department_changed, photo_added, photo_removed, subject_changed
from subjects.models import Department, Photo, Subject, SubjectType
from tests.factories import DepartmentFactory, PhotoFactory, SubjectFactory
from tests.images import jpeg_bytes
from tests.subjects.test_admin_import import confirm, csv_file, preview

pytestmark = pytest.mark.django_db

SIGNALS = {
    "department_changed": department_changed,
    "subject_changed": subject_changed,
    "photo_added": photo_added,
    "photo_removed": photo_removed,
}
INLINE_NONE = {
    "consents-TOTAL_FORMS": "0",
    "consents-INITIAL_FORMS": "0",
    "consents-MIN_NUM_FORMS": "0",
    "consents-MAX_NUM_FORMS": "1000",
    "photos-TOTAL_FORMS": "0",
    "photos-INITIAL_FORMS": "0",
    "photos-MIN_NUM_FORMS": "0",
    "photos-MAX_NUM_FORMS": "5",
}


@dataclass(frozen=True)
class Heard:
    signal: str
    company: int
    action: str | None
    ids: tuple[int, ...]
    fields: tuple[str, ...] = ()
    subject_ids: tuple[int, ...] = ()


@pytest.fixture
def heard():
    """Everything announced during the test, in order."""
    records: list[Heard] = []

    def listen(name):
        def receive(sender, *, company: Company, ids, **details):
            assert isinstance(company, Company) and ids and all(isinstance(pk, int) for pk in ids)
            records.append(
                Heard(
                    name,
                    company.pk,
                    details.get("action"),
                    tuple(ids),
                    tuple(details.get("fields", ())),
                    tuple(details.get("subject_ids", ())),
                )
            )

        return receive

    receivers = {name: listen(name) for name in SIGNALS}
    for name, signal in SIGNALS.items():
        signal.connect(receivers[name], weak=False, dispatch_uid=f"test-{name}")
    yield records
    for name, signal in SIGNALS.items():
        signal.disconnect(dispatch_uid=f"test-{name}")


# --- every entry point ------------------------------------------------------------------------
# Each case does one change through an entry point and returns what must have been announced.


@dataclass
class World:
    company: Company
    api: object  # an APIClient of the company's admin
    admin: object  # a Django test client logged in to the admin


def api_department_create(w: World):
    pk = w.api.post("/api/v1/departments", {"name": "R&D"}, format="json").json()["id"]
    return [Heard("department_changed", w.company.pk, "created", (pk,))]


def api_department_update(w: World):
    department = DepartmentFactory(company=w.company)
    assert w.api.patch(f"/api/v1/departments/{department.pk}", {"name": "Lab"}, format="json").status_code == 200
    return [Heard("department_changed", w.company.pk, "updated", (department.pk,))]


def api_department_delete(w: World):
    department = DepartmentFactory(company=w.company)
    member = SubjectFactory(company=w.company, department=department)
    assert w.api.delete(f"/api/v1/departments/{department.pk}").status_code == 204
    return [
        Heard("department_changed", w.company.pk, "deleted", (department.pk,)),
        Heard("subject_changed", w.company.pk, "updated", (member.pk,), ("department",)),
    ]


def api_subject_create(w: World):
    response = w.api.post(
        "/api/v1/subjects/with-photos",
        {
            "name": "陳美玲",
            "job_number": "E77",
            "upload": [SimpleUploadedFile("a.jpg", jpeg_bytes())],
            "consent_method": "paper",
            "consent_policy_version": "1",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    photo = body["photos"][0]["id"]
    return [
        Heard("subject_changed", w.company.pk, "created", (body["id"],)),
        Heard("photo_added", w.company.pk, None, (photo,), (), (body["id"],)),
    ]


def api_subject_update(w: World):
    subject = SubjectFactory(company=w.company, title="")
    assert w.api.patch(f"/api/v1/subjects/{subject.pk}", {"title": "Lead"}, format="json").status_code == 200
    return [Heard("subject_changed", w.company.pk, "updated", (subject.pk,), ("title",))]


def api_subject_delete(w: World):
    host = SubjectFactory(company=w.company)
    guest = SubjectFactory(company=w.company, subject_type=SubjectType.VISITOR, host=host)
    photo = PhotoFactory(company=w.company, subject=host)
    assert w.api.delete(f"/api/v1/subjects/{host.pk}").status_code == 204
    return [
        Heard("photo_removed", w.company.pk, None, (photo.pk,), (), (host.pk,)),
        Heard("subject_changed", w.company.pk, "deleted", (host.pk,)),
        Heard("subject_changed", w.company.pk, "updated", (guest.pk,), ("host",)),
    ]


def api_photo_add(w: World):
    subject = SubjectFactory(company=w.company)
    response = w.api.post(f"/api/v1/subjects/{subject.pk}/photos", {"image": SimpleUploadedFile("a.jpg", jpeg_bytes())})
    assert response.status_code == 201
    return [Heard("photo_added", w.company.pk, None, (response.json()["id"],), (), (subject.pk,))]


def api_photo_delete(w: World):
    photo = PhotoFactory(company=w.company)
    assert w.api.delete(f"/api/v1/photos/{photo.pk}").status_code == 204
    return [Heard("photo_removed", w.company.pk, None, (photo.pk,), (), (photo.subject_id,))]


def admin_department_add(w: World):
    assert w.admin.post("/admin/subjects/department/add/", {"name": "Sales"}).status_code == 302
    pk = Department.objects.for_company(w.company).get(name="Sales").pk
    return [Heard("department_changed", w.company.pk, "created", (pk,))]


def admin_department_change(w: World):
    department = DepartmentFactory(company=w.company)
    response = w.admin.post(f"/admin/subjects/department/{department.pk}/change/", {"name": "Renamed"})
    assert response.status_code == 302
    return [Heard("department_changed", w.company.pk, "updated", (department.pk,))]


def admin_department_delete(w: World):
    department = DepartmentFactory(company=w.company)
    response = w.admin.post(f"/admin/subjects/department/{department.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    return [Heard("department_changed", w.company.pk, "deleted", (department.pk,))]


def admin_subject_add_with_photo(w: World):
    data = INLINE_NONE | {"photos-TOTAL_FORMS": "1", "subject_type": "employee", "name": "王小明", "job_number": "E42"}
    data |= {"consents-TOTAL_FORMS": "1", "consents-0-consent_method": "paper"}  # signed on paper
    data["photos-0-upload"] = SimpleUploadedFile("face.jpg", jpeg_bytes())
    assert w.admin.post("/admin/subjects/subject/add/", data).status_code == 302
    subject = Subject.objects.for_company(w.company).get(job_number="E42")
    photo = Photo.objects.for_company(w.company).get(subject=subject)
    return [
        Heard("subject_changed", w.company.pk, "created", (subject.pk,)),
        Heard("photo_added", w.company.pk, None, (photo.pk,), (), (subject.pk,)),
    ]


def admin_subject_change(w: World):
    subject = SubjectFactory(company=w.company, job_number="E1", title="")
    data = INLINE_NONE | {"subject_type": "employee", "name": subject.name, "job_number": "E1", "title": "Lead"}
    data["email"] = subject.email
    assert w.admin.post(f"/admin/subjects/subject/{subject.pk}/change/", data).status_code == 302
    return [Heard("subject_changed", w.company.pk, "updated", (subject.pk,), ("title",))]


def admin_photo_inline_delete(w: World):
    photo = PhotoFactory(company=w.company)
    subject = photo.subject
    data = INLINE_NONE | {"subject_type": "employee", "name": subject.name, "job_number": subject.job_number}
    data |= {"email": subject.email, "photos-TOTAL_FORMS": "1", "photos-INITIAL_FORMS": "1"}
    data |= {"photos-0-id": str(photo.pk), "photos-0-subject": str(subject.pk), "photos-0-DELETE": "on"}
    assert w.admin.post(f"/admin/subjects/subject/{subject.pk}/change/", data).status_code == 302
    return [Heard("photo_removed", w.company.pk, None, (photo.pk,), (), (subject.pk,))]


def admin_subject_delete(w: World):
    photo = PhotoFactory(company=w.company)
    subject = photo.subject
    assert w.admin.post(f"/admin/subjects/subject/{subject.pk}/delete/", {"post": "yes"}).status_code == 302
    return [
        Heard("photo_removed", w.company.pk, None, (photo.pk,), (), (subject.pk,)),
        Heard("subject_changed", w.company.pk, "deleted", (subject.pk,)),
    ]


def admin_bulk_delete(w: World):
    first, second = SubjectFactory(company=w.company), SubjectFactory(company=w.company)
    response = w.admin.post(
        "/admin/subjects/subject/",
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )
    assert response.status_code == 302
    return [Heard("subject_changed", w.company.pk, "deleted", (pk,)) for pk in (first.pk, second.pk)]


def admin_archive_action(w: World):
    subject = SubjectFactory(company=w.company)
    w.admin.post("/admin/subjects/subject/", {"action": "archive_selected", "_selected_action": [subject.pk]})
    return [Heard("subject_changed", w.company.pk, "updated", (subject.pk,), ("archived",))]


def admin_import(w: World):
    existing = SubjectFactory(company=w.company, job_number="E1", title="Old")
    rows = [
        ["E1", existing.name, "employee", existing.email, "", "", "New"],
        ["E2", "林志明", "employee", "e2@example.com", "", "研發部", "Engineer"],
        ["E3", "Alex Morgan", "employee", "", "", "研發部", ""],
        ["", "Sam Lee", "visitor", "", "", "Visitors", ""],
    ]
    response = confirm(w.admin, preview(w.admin, csv_file(rows)))
    assert response.status_code == 200
    departments = dict(Department.objects.for_company(w.company).values_list("name", "pk"))
    created = Subject.objects.for_company(w.company).exclude(pk=existing.pk).order_by("pk")
    return [
        Heard("department_changed", w.company.pk, "created", (departments["研發部"], departments["Visitors"])),
        Heard("subject_changed", w.company.pk, "created", tuple(created.values_list("pk", flat=True))),
        Heard("subject_changed", w.company.pk, "updated", (existing.pk,), ("title",)),
    ]


def command_seed_demo(w: World):
    call_command("seed_demo", stdout=io.StringIO())
    expected = []
    for company in Company.objects.exclude(pk=w.company.pk):  # the demo companies
        departments = Department.objects.for_company(company).values_list("pk", flat=True)
        subjects = Subject.objects.for_company(company).values_list("pk", flat=True)
        expected += [Heard("department_changed", company.pk, "created", (pk,)) for pk in departments]
        expected += [Heard("subject_changed", company.pk, "created", (pk,)) for pk in subjects]
        # The demo's portraits, added together (the test environment has the packages that ship them).
        photos = Photo.objects.for_company(company).order_by("pk")
        pairs = list(photos.values_list("pk", "subject_id"))
        if pairs:
            photo_ids, subject_ids = tuple(pk for pk, _ in pairs), tuple(sorted(s for _, s in pairs))
            expected.append(Heard("photo_added", company.pk, None, photo_ids, (), subject_ids))
    assert Photo.objects.filter(company__slug__in=["demo", "other"]).count() == 4  # tenant: both demo companies
    assert expected
    return expected


ENTRY_POINTS: list[Callable[[World], list[Heard]]] = [
    api_department_create,
    api_department_update,
    api_department_delete,
    api_subject_create,
    api_subject_update,
    api_subject_delete,
    api_photo_add,
    api_photo_delete,
    admin_department_add,
    admin_department_change,
    admin_department_delete,
    admin_subject_add_with_photo,
    admin_subject_change,
    admin_photo_inline_delete,
    admin_subject_delete,
    admin_bulk_delete,
    admin_archive_action,
    admin_import,
    command_seed_demo,
]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_every_entry_point_announces_its_changes(entry_point, heard, api, client, tenant_a):
    client.force_login(tenant_a.admin)
    world = World(company=tenant_a.company, api=api(tenant_a.admin), admin=client)
    expected = entry_point(world)
    # The same announcements, each exactly once; their order is the services' business.
    assert sorted(heard, key=repr) == sorted(expected, key=repr)


# --- the contract -----------------------------------------------------------------------------


def test_a_bulk_import_sends_one_signal_per_kind_with_every_id(heard, client, tenant_a):
    client.force_login(tenant_a.admin)
    rows = [[f"E{i}", f"Person {i}", "employee", "", "", f"Team {i % 3}", ""] for i in range(60)]
    confirm(client, preview(client, csv_file(rows)))
    assert [(h.signal, h.action, len(h.ids)) for h in heard] == [
        ("department_changed", "created", 3),
        ("subject_changed", "created", 60),
    ]
    assert set(heard[1].ids) == set(Subject.objects.for_company(tenant_a.company).values_list("pk", flat=True))


def test_a_bulk_import_is_audited_row_by_row_like_single_changes(client, tenant_a):
    existing = SubjectFactory(company=tenant_a.company, job_number="E1", title="Old")
    client.force_login(tenant_a.admin)
    rows = [
        ["E1", existing.name, "employee", existing.email, "", "", "New"],
        ["E2", "林志明", "employee", "", "", "研發部", ""],
    ]
    confirm(client, preview(client, csv_file(rows)))
    log = AuditLog.objects.for_company(tenant_a.company)
    new = Subject.objects.for_company(tenant_a.company).get(job_number="E2")
    department = Department.objects.for_company(tenant_a.company).get()
    assert log.get(action="subject.update").changes == {"title": ["Old", "New"]}
    assert log.get(action="subject.update").object_id == str(existing.pk)
    created = log.get(action="subject.create")
    assert created.object_id == str(new.pk) and created.actor == tenant_a.admin
    assert created.changes["name"] == "林志明" and created.changes["department"] == "研發部"
    assert log.get(action="department.create").object_id == str(department.pk)
    assert new.department == department


def test_a_preview_announces_nothing(heard, client, tenant_a):
    client.force_login(tenant_a.admin)
    preview(client, csv_file([["E2", "林志明", "employee", "", "", "研發部", ""]]))
    assert heard == []
    assert not Department.objects.for_company(tenant_a.company).exists()


def test_signals_arrive_inside_the_services_transaction(tenant_a):
    """A listener's database write commits or rolls back with the change: its failure
    undoes the change itself."""
    state = {}

    def listener(sender, company, ids, **kwargs):
        state["in_transaction"] = connection.in_atomic_block
        raise RuntimeError("the listener failed")

    subject_changed.connect(listener, weak=False, dispatch_uid="test-failing")
    try:
        with pytest.raises(RuntimeError):
            services.subject_create(company=tenant_a.company, actor=None, name="Mei", job_number="E9")
    finally:
        subject_changed.disconnect(dispatch_uid="test-failing")
    assert state["in_transaction"]
    assert not Subject.objects.for_company(tenant_a.company).exists()
    assert not AuditLog.objects.for_company(tenant_a.company).filter(action="subject.create").exists()


def test_a_listener_doing_io_after_commit_never_sees_a_rolled_back_change(tenant_a, django_capture_on_commit_callbacks):
    done = []

    def listener(sender, company, ids, **kwargs):
        transaction.on_commit(lambda: done.append(tuple(ids)))

    subject_changed.connect(listener, weak=False, dispatch_uid="test-io")
    try:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValueError), transaction.atomic():
            services.subject_create(company=tenant_a.company, actor=None, name="Mei", job_number="E9")
            raise ValueError("the request fails later")
        assert done == []
        with django_capture_on_commit_callbacks(execute=True):
            subject = services.subject_create(company=tenant_a.company, actor=None, name="Mei", job_number="E9")
        assert done == [(subject.pk,)]
    finally:
        subject_changed.disconnect(dispatch_uid="test-io")


def test_a_change_is_announced_with_its_own_company(heard, tenants):
    _, b = tenants
    subject = services.subject_create(company=b.company, actor=None, name="Other", job_number="E1")
    assert heard == [Heard("subject_changed", b.company.pk, "created", (subject.pk,))]
