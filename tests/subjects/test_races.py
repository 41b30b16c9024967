"""Two requests that give out the same job number or e-mail at the same moment: both pass
`subject_check` (neither sees the other's row yet), and the unique index refuses the later
write. The user gets what a later request would get, never a 500: an upsert answers its
item against the subject the other request created, a single write answers the coded error
the check gives.

The race is forced, not hoped for: `held_at_the_write` keeps each request at its write
until every request has read, then lets them write at once; `writing_at_once` and
`pausing_at` do the same for two batches' statements and hold each at a chosen row, so that
two batches writing in opposite orders surely cross. The threaded tests need
PostgreSQL's row locks (the later INSERT waits on the unique index for the first to commit);
the others simulate the other request inside the same transaction and run on SQLite too.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import AuditLog
from accounts.services import audit_record
from integrations import api_keys
from kangaroo.errors import KangarooError
from subjects import resources, services
from subjects.domain_signals import subject_changed
from subjects.models import Department, GalleryChange, Subject
from tests.conftest import api_client_for
from tests.factories import DepartmentFactory, SubjectFactory
from tests.integrations.test_api_keys import key_client
from tests.subjects.test_admin_import import confirm, csv_file, import_failures, preview
from tests.subjects.test_admin_subject_form import form_data
from tests.test_concurrency import run_together

TAKEN_JOB_NUMBER = "Another subject of this company has this job number."


@contextmanager
def held_at_the_write(parties: int = 2):
    """Each request (thread) waits at its first write of a job number or e-mail until all
    `parties` have come that far, so every one has read before any writes."""
    barrier = threading.Barrier(parties, timeout=30)
    seen = threading.local()
    real = services._keys_written

    @contextmanager
    def held(**kwargs):
        if not getattr(seen, "waited", False):
            seen.waited = True
            barrier.wait()
        with real(**kwargs):
            yield

    with mock.patch.object(services, "_keys_written", held):
        yield


def writing_at_once(is_first_write, *calls):
    """`calls`, each sending its first statement that `is_first_write(sql)` names at the same
    moment as the others (after all have read), so that their writes overlap row by row."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def held(call):
        waited = []

        def wrapper(execute, sql, params, many, context):
            if not waited and is_first_write(sql):
                waited.append(True)
                barrier.wait()
            return execute(sql, params, many, context)

        def run():
            with connection.execute_wrapper(wrapper):
                return call()

        return run

    return [held(call) for call in calls]


def inserting_at_once(model, *calls):
    return writing_at_once(lambda sql: sql.startswith(f'INSERT INTO "{model._meta.db_table}"'), *calls)


@contextmanager
def pausing_at(model, field: str, values, seconds: float = 0.3):
    """Every INSERT or UPDATE of a `model` row whose `field` is one of `values` sleeps first
    (a PostgreSQL trigger, after the row is locked): a statement writing many rows holds the
    ones before it meanwhile, so two such statements started together surely overlap."""
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(model._meta.get_field(field).column)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_pause() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NEW; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER test_pause BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
            f"WHEN (NEW.{column} IN ({', '.join(['%s'] * len(values))})) EXECUTE FUNCTION test_pause()",
            list(values),
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER test_pause ON {table}")
            cursor.execute("DROP FUNCTION test_pause()")


@contextmanager
def taken_before_the_write(**subject):
    """The other request, simulated: it creates `subject` after this one has read and
    before it writes (once)."""
    real = services._keys_written
    done = []

    @contextmanager
    def late(**kwargs):
        if not done:
            done.append(SubjectFactory(consent=False, **subject))
        with real(**kwargs):
            yield

    with mock.patch.object(services, "_keys_written", late):
        yield done


@contextmanager
def announced_on_commit():
    """The subject changes announced by transactions that committed, as (action, ids)."""
    sent = []

    def receiver(sender, *, action, ids, **kwargs):
        transaction.on_commit(lambda: sent.append((action, list(ids))))

    subject_changed.connect(receiver, dispatch_uid="test_races")
    try:
        yield sent
    finally:
        subject_changed.disconnect(dispatch_uid="test_races")


# --- At the same moment, on PostgreSQL ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_upserts_of_one_new_job_number_at_once_create_it_once(tenant_a):
    company = tenant_a.company
    _, key = api_keys.api_key_create(company=company, actor=None, name="HR system", scopes=["subjects:write"])

    def upsert(title):
        item = {"job_number": "E1", "name": "Ann", "title": title}
        return lambda: key_client(key).post("/api/v1/subjects/upsert", {"subjects": [item]}, format="json")

    with announced_on_commit() as sent, held_at_the_write():
        first, second = run_together(upsert("First"), upsert("Second"))

    assert (first.status_code, second.status_code) == (200, 200), (first.content, second.content)
    [subject] = Subject.objects.for_company(company)
    results = [first.json()["results"][0], second.json()["results"][0]]
    assert sorted(result["status"] for result in results) == ["created", "updated"]
    assert {result["id"] for result in results} == {subject.pk}
    # The later batch wrote its title over the first one's, as if it had come after.
    later = next(result for result in results if result["status"] == "updated")
    assert subject.title == ("First" if later is results[0] else "Second")
    earlier_title = "Second" if subject.title == "First" else "First"
    entries = AuditLog.objects.for_company(company).filter(action__startswith="subject.").order_by("id")
    assert [(entry.action, entry.changes.get("title")) for entry in entries] == [
        ("subject.create", earlier_title),
        ("subject.update", [earlier_title, subject.title]),
    ]
    assert sent == [("created", [subject.pk]), ("updated", [subject.pk])]
    assert GalleryChange.objects.for_company(company).filter(reason="subject_created").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("field", "first", "second", "code"),
    [
        ("job_number", {"job_number": "E1"}, {"job_number": "E1"}, "subject_job_number_taken"),
        (
            "email",
            {"job_number": "E1", "email": "a@a.example"},
            {"job_number": "E2", "email": "A@a.example"},
            "subject_email_taken",
        ),
    ],
)
def test_two_creates_of_one_job_number_or_email_at_once_answer_201_and_the_coded_409(
    tenant_a, field, first, second, code
):
    company = tenant_a.company

    def create(fields):
        return lambda: api_client_for(tenant_a.admin).post("/api/v1/subjects", {"name": "Ann", **fields}, format="json")

    with held_at_the_write():
        answers = run_together(create(first), create(second))

    assert sorted(answer.status_code for answer in answers) == [201, 409], [a.content for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 409).json()["error"]
    assert refused["code"] == code and field in refused["fields"]
    assert Subject.objects.for_company(company).count() == 1
    assert AuditLog.objects.for_company(company).filter(action="subject.create").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_subjects_changed_to_one_job_number_at_once_answer_200_and_the_coded_409(tenant_a):
    company = tenant_a.company
    subjects = [SubjectFactory(company=company, consent=False) for _ in range(2)]

    def rename(subject):
        return lambda: api_client_for(tenant_a.admin).patch(
            f"/api/v1/subjects/{subject.pk}", {"job_number": "NEW"}, format="json"
        )

    with held_at_the_write():
        answers = run_together(*(rename(subject) for subject in subjects))

    assert sorted(answer.status_code for answer in answers) == [200, 409], [a.content for a in answers]
    assert next(a for a in answers if a.status_code == 409).json()["error"]["code"] == "subject_job_number_taken"
    assert Subject.objects.for_company(company).filter(job_number="NEW").count() == 1


# Two batches writing the same rows in opposite orders, each held at its middle row: each has
# written half of the rows, the half the other is about to write. Written in the orders given,
# each would then wait on the other, and PostgreSQL would end that deadlock by failing one
# (a 503). Every batch writes in one order, so the later one waits for the first and then
# sees its rows.
CROSSING_ROWS = 20
CROSSING_ROUNDS = 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_upserts_of_the_same_new_job_numbers_in_opposite_orders_both_answer_200(tenant_a):
    company = tenant_a.company
    _, key = api_keys.api_key_create(company=company, actor=None, name="HR system", scopes=["subjects:write"])
    rounds = [[f"R{round_}-{n:02}" for n in range(CROSSING_ROWS)] for round_ in range(CROSSING_ROUNDS)]

    def upsert(numbers, title):
        items = [{"job_number": number, "name": "Ann", "title": title} for number in numbers]
        return lambda: key_client(key).post("/api/v1/subjects/upsert", {"subjects": items}, format="json")

    with pausing_at(Subject, "job_number", [numbers[CROSSING_ROWS // 2] for numbers in rounds]):
        for numbers in rounds:
            answers = run_together(
                *inserting_at_once(Subject, upsert(numbers, "First"), upsert(numbers[::-1], "Second"))
            )
            assert [answer.status_code for answer in answers] == [200, 200], [a.content[:300] for a in answers]
            statuses = sorted("/".join({result["status"] for result in answer.json()["results"]}) for answer in answers)
            assert statuses == ["created", "updated"]  # one batch after the other, each whole
    rows = list(Subject.objects.for_company(company).values_list("job_number", flat=True))
    assert sorted(rows) == sorted(number for numbers in rounds for number in numbers)  # each once
    created = AuditLog.objects.for_company(company).filter(action="subject.create").count()
    assert created == CROSSING_ROWS * CROSSING_ROUNDS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("model", "field", "code"),
    [(Subject, "job_number", "subject_job_number_taken"), (Department, "name", "department_name_taken")],
)
def test_two_imports_of_the_same_new_rows_in_opposite_orders_import_one_and_refuse_the_other(
    tenant_a, model, field, code
):
    company = tenant_a.company
    names = [f"N{n:02}" for n in range(CROSSING_ROWS)]

    def import_(order):
        if model is Subject:
            rows = lambda: {"creates": [Subject(company=company, name="Ann", job_number=name) for name in order]}  # noqa: E731
        else:
            rows = lambda: {"departments": [Department(company=company, name=name) for name in order]}  # noqa: E731
        return lambda: services.subject_import_apply(company=company, actor=None, **rows())

    with pausing_at(model, field, [names[CROSSING_ROWS // 2]]):
        for _ in range(CROSSING_ROUNDS):
            model.objects.for_company(company).delete()
            answers = run_together(*inserting_at_once(model, import_(names), import_(names[::-1])))
            refused = [answer for answer in answers if answer is not None]
            assert len(refused) == 1 and isinstance(refused[0], KangarooError), answers
            assert refused[0].code == code
            assert sorted(model.objects.for_company(company).values_list(field, flat=True)) == names


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_changing_the_same_subjects_in_opposite_orders_both_import(tenant_a):
    """The changes go out grouped by changed fields: here each import's first group is the
    half of the rows that the other's second group changes."""
    company = tenant_a.company
    subjects = SubjectFactory.create_batch(CROSSING_ROWS, company=company, consent=False)
    half = CROSSING_ROWS // 2

    def import_(tag, *, reverse):
        def apply():
            subjects = list(Subject.objects.for_company(company).order_by("job_number"))[:: -1 if reverse else 1]
            updates = []
            for index, subject in enumerate(subjects):
                field = "title" if index < half else "phone"
                updates.append((subject, {field: (getattr(subject, field), tag)}))
                setattr(subject, field, tag)
            return services.subject_import_apply(company=company, actor=None, updates=updates)

        return apply

    def is_first_write(sql):  # a lock taken before writing, or the first write
        return '"subjects_subject"' in sql and (sql.startswith("UPDATE") or sql.endswith("FOR UPDATE"))

    # Each held at the last row of its first group.
    with pausing_at(Subject, "job_number", [subjects[half - 1].job_number, subjects[half].job_number]):
        for round_ in range(CROSSING_ROUNDS):
            tags = (f"{round_}a", f"{round_}b")
            answers = run_together(
                *writing_at_once(is_first_write, import_(tags[0], reverse=False), import_(tags[1], reverse=True))
            )
            assert answers == [None, None]
            # Both written whole: each subject has one import's title and the other's phone.
            rows = set(Subject.objects.for_company(company).values_list("title", "phone"))
            assert len(rows) == 2 and {value for row in rows for value in row} == set(tags)


# --- The other request simulated in the same transaction (any database) -------------------------


@pytest.mark.django_db
def test_an_upsert_whose_new_job_number_is_taken_before_its_write_updates_that_subject(tenant_a):
    company = tenant_a.company
    items = [{"job_number": "E1", "name": "Ann", "title": "Engineer"}, {"job_number": "E2", "name": "Ben"}]
    sent = []
    receiver = lambda sender, *, action, ids, **kwargs: sent.append((action, ids))  # noqa: E731
    subject_changed.connect(receiver)
    try:
        with taken_before_the_write(company=company, job_number="E1", title="") as other:
            results = services.subjects_upsert(company=company, actor=None, items=items)
    finally:
        subject_changed.disconnect(receiver)
    [theirs] = other
    assert [(result.status, result.subject.job_number) for result in results] == [("updated", "E1"), ("created", "E2")]
    assert results[0].subject.pk == theirs.pk
    ben = results[1].subject
    assert sorted(Subject.objects.for_company(company).values_list("job_number", "title")) == [
        ("E1", "Engineer"), ("E2", ""),
    ]  # fmt: skip
    # Only what the second attempt did: one entry per change, not a created E1.
    entries = AuditLog.objects.for_company(company).values_list("action", "object_id")
    assert sorted(entries) == sorted([("subject.update", str(theirs.pk)), ("subject.create", str(ben.pk))])
    assert sent == [("created", [ben.pk]), ("updated", [theirs.pk])]


@pytest.mark.django_db
def test_a_write_refused_for_a_taken_key_keeps_nothing_it_did(tenant_a, django_capture_on_commit_callbacks):
    company = tenant_a.company
    SubjectFactory(company=company, job_number="E1", consent=False)
    late = Subject(company=company, name="Late", job_number="E1")
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(KangarooError) as refused,
        services._keys_written(company=company, subjects=[late]),
    ):
        audit_record(company=company, actor=None, action="subject.import", changes={})
        transaction.on_commit(lambda: None)
        late.save(force_insert=True)
    assert refused.value.code == "subject_job_number_taken" and "job_number" in refused.value.fields
    assert callbacks == []
    assert not AuditLog.objects.for_company(company).filter(action="subject.import").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("taken", "fields", "code"),
    [
        ({"job_number": "E1", "email": ""}, {"job_number": "E1"}, "subject_job_number_taken"),
        (
            {"job_number": "E9", "email": "a@a.example"},
            {"job_number": "E1", "email": "A@a.example"},
            "subject_email_taken",
        ),
    ],
)
def test_a_create_whose_key_is_taken_before_its_write_answers_the_checks_error(tenant_a, taken, fields, code):
    company = tenant_a.company
    with taken_before_the_write(company=company, **taken), pytest.raises(KangarooError) as refused:
        services.subject_create(company=company, actor=None, name="Ann", **fields)
    assert refused.value.code == code
    assert not AuditLog.objects.for_company(company).exists()  # (the simulated row went with the transaction)


@pytest.mark.django_db
def test_an_update_whose_email_is_taken_before_its_write_answers_the_checks_error(tenant_a):
    company = tenant_a.company
    subject = SubjectFactory(company=company, job_number="E1", email="", consent=False)
    with (
        taken_before_the_write(company=company, job_number="E2", email="ann@a.example"),
        pytest.raises(KangarooError) as refused,
    ):
        services.subject_update(company=company, actor=None, subject=subject, email="ann@a.example")
    assert refused.value.code == "subject_email_taken"
    subject.refresh_from_db()
    assert subject.email == ""


@pytest.mark.django_db
def test_any_other_refused_write_is_raised_as_it_is(tenant_a):
    """Only a key another subject holds is the coded error: a broken rule the check should
    have caught stays a server error, and is not passed off as a taken job number."""
    now = timezone.now()
    unchecked = lambda *, company, data, **kwargs: services.subject_normalise(dict(data))  # noqa: E731
    with mock.patch.object(services, "subject_check", unchecked), pytest.raises(IntegrityError):
        services.subject_create(
            company=tenant_a.company, actor=None, name="Ann", job_number="E1", visit_start=now,
            visit_end=now - timedelta(hours=1),
        )  # fmt: skip


@pytest.mark.django_db
def test_the_admin_shows_a_job_number_taken_before_its_write_as_a_message(client, tenant_a):
    client.force_login(tenant_a.admin)
    with taken_before_the_write(company=tenant_a.company, job_number="E42"):
        response = client.post("/admin/subjects/subject/add/", form_data(), follow=True)
    assert response.status_code == 200
    assert TAKEN_JOB_NUMBER in [str(message) for message in response.context["messages"]]
    assert not AuditLog.objects.for_company(tenant_a.company).filter(action="subject.create").exists()


@pytest.mark.django_db
def test_an_import_whose_job_number_is_taken_before_its_write_says_so_and_imports_nothing(client, tenant_a):
    client.force_login(tenant_a.owner)
    rows = [["N1", "Ann", "employee", "", "", "", ""], ["N2", "Ben", "employee", "", "", "", ""]]
    response = preview(client, csv_file(rows))
    real = resources.subject_import_apply

    def taken_first(**kwargs):
        SubjectFactory(company=tenant_a.company, job_number="N2", consent=False)
        return real(**kwargs)

    with mock.patch.object(resources, "subject_import_apply", taken_first):
        done = confirm(client, response)
    assert done.status_code == 200
    assert import_failures(done) == [TAKEN_JOB_NUMBER]
    assert list(Subject.objects.for_company(tenant_a.company).values_list("job_number", flat=True)) == ["N2"]


# --- Department names ---------------------------------------------------------------------------

TAKEN_DEPARTMENT_NAME = "A department with this name already exists."


@contextmanager
def department_named_before_the_write(*, company, name):
    """The other request, simulated: it creates a department called `name` after this one
    has checked the name and before it writes (once)."""
    real = services._keys_written
    done = []

    @contextmanager
    def late(**kwargs):
        if not done:
            done.append(DepartmentFactory(company=company, name=name))
        with real(**kwargs):
            yield

    with mock.patch.object(services, "_keys_written", late):
        yield done


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_creates_of_one_department_name_at_once_answer_201_and_the_coded_409(tenant_a):
    company = tenant_a.company

    def create(name):
        return lambda: api_client_for(tenant_a.admin).post("/api/v1/departments", {"name": name}, format="json")

    with held_at_the_write():
        answers = run_together(create("Sales"), create("sales"))

    assert sorted(answer.status_code for answer in answers) == [201, 409], [a.content for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 409).json()["error"]
    assert refused["code"] == "department_name_taken" and "name" in refused["fields"]
    assert Department.objects.for_company(company).count() == 1
    assert AuditLog.objects.for_company(company).filter(action="department.create").count() == 1


@pytest.mark.django_db
def test_a_department_created_with_a_name_taken_before_its_write_answers_the_checks_error(tenant_a):
    company = tenant_a.company
    with (
        department_named_before_the_write(company=company, name="SALES"),
        pytest.raises(KangarooError) as refused,
    ):
        services.department_create(company=company, actor=None, name="Sales")
    assert refused.value.code == "department_name_taken" and "name" in refused.value.fields
    assert not AuditLog.objects.for_company(company).exists()  # (the simulated row went with the transaction)


@pytest.mark.django_db
def test_a_department_renamed_to_a_name_taken_before_its_write_answers_the_checks_error(tenant_a):
    company = tenant_a.company
    department = DepartmentFactory(company=company, name="Lab")
    with (
        department_named_before_the_write(company=company, name="Sales"),
        pytest.raises(KangarooError) as refused,
    ):
        services.department_update(company=company, actor=None, department=department, name="sales")
    assert refused.value.code == "department_name_taken"
    department.refresh_from_db()
    assert department.name == "Lab"


@pytest.mark.django_db
def test_any_other_refused_department_write_is_raised_as_it_is(tenant_a):
    company = tenant_a.company
    existing = DepartmentFactory(company=company, name="Lab")
    late = Department(company=company, name="Sales", pk=existing.pk)  # a clash of the primary key, not the name
    with pytest.raises(IntegrityError), services._keys_written(company=company, departments=[late]):
        late.save(force_insert=True)


@pytest.mark.django_db
def test_the_admin_shows_a_department_name_taken_before_its_write_as_a_message(client, tenant_a):
    client.force_login(tenant_a.admin)
    with department_named_before_the_write(company=tenant_a.company, name="Sales"):
        response = client.post("/admin/subjects/department/add/", {"name": "Sales"}, follow=True)
    assert response.status_code == 200
    assert TAKEN_DEPARTMENT_NAME in [str(message) for message in response.context["messages"]]
    assert not AuditLog.objects.for_company(tenant_a.company).filter(action="department.create").exists()


@pytest.mark.django_db
def test_an_import_whose_new_department_is_named_before_its_write_says_so_and_imports_nothing(client, tenant_a):
    client.force_login(tenant_a.owner)
    rows = [["N1", "Ann", "employee", "", "", "Lab", ""], ["N2", "Ben", "employee", "", "", "", ""]]
    response = preview(client, csv_file(rows))
    real = resources.subject_import_apply

    def named_first(**kwargs):
        DepartmentFactory(company=tenant_a.company, name="LAB")
        return real(**kwargs)

    with mock.patch.object(resources, "subject_import_apply", named_first):
        done = confirm(client, response)
    assert done.status_code == 200
    assert import_failures(done) == [TAKEN_DEPARTMENT_NAME]
    assert not Subject.objects.for_company(tenant_a.company).exists()
    assert list(Department.objects.for_company(tenant_a.company).values_list("name", flat=True)) == ["LAB"]
