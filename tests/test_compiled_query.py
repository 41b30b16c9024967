"""`kangaroo.compiled.CompiledQuery` returns what the ORM would, compiled once per shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import Value
from django.test.utils import CaptureQueriesContext

from kangaroo.compiled import MAX_LIST_ARGUMENT, CompiledQuery
from subjects.models import Subject, SubjectType
from subjects.selectors import with_first_photo
from tests.factories import PhotoFactory, SubjectFactory


def build(company_id, ids):
    return with_first_photo(
        Subject.objects.for_company(company_id)
        .filter(pk__in=ids)
        .select_related("company")
        .only("company_id", "company__name", "name", "visit_start", "visit_end")
        .order_by("pk")
    )


@pytest.mark.django_db
def test_the_same_rows_instances_and_annotations_as_the_orm(tenants):
    a, b = tenants
    start = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    people = [
        SubjectFactory(company=a.company, name="Ann", subject_type=SubjectType.VISITOR, visit_start=start),
        SubjectFactory(company=a.company, name="Bo"),
    ]
    photo = PhotoFactory(company=a.company, subject=people[0])
    other = SubjectFactory(company=b.company, name="Other")
    query = CompiledQuery(Subject, build)
    ids = [people[0].pk, people[1].pk, other.pk, people[0].pk]  # another company's id, and a repeat

    for _ in range(2):  # compiled, then reused
        found = query(a.company.pk, ids)
        assert [(s.pk, s.name, s.first_photo_id) for s in found] == [
            (s.pk, s.name, s.first_photo_id) for s in build(a.company.pk, ids)
        ]
        assert [s.first_photo_id for s in found] == [photo.pk, None]
        assert found[0].visit_start == start  # converted as the ORM converts (text on SQLite)
        with CaptureQueriesContext(connection) as queries:
            assert found[0].company.name == a.company.name  # select_related: no query
        assert not queries.captured_queries

    assert query(b.company.pk, ids)[0].name == "Other"  # the arguments, not the first call's
    assert query(a.company.pk, []) == []
    long = [people[1].pk, *range(10**9, 10**9 + MAX_LIST_ARGUMENT)]  # beyond: the ORM itself
    assert [s.pk for s in query(a.company.pk, long)] == [people[1].pk]


@pytest.mark.django_db
def test_one_query_per_call(tenants):
    a, _ = tenants
    person = SubjectFactory(company=a.company)
    query = CompiledQuery(Subject, build)
    query(a.company.pk, [person.pk])
    with CaptureQueriesContext(connection) as queries:
        query(a.company.pk, [person.pk])
    assert len(queries.captured_queries) == 1


@pytest.mark.django_db
def test_an_argument_written_into_the_sql_is_refused(tenants):
    a, _ = tenants
    inlined = CompiledQuery(Subject, lambda name: Subject.objects.for_company(a.company).alias(n=Value(name)))
    with pytest.raises(ValueError):
        inlined("Ann")


@pytest.mark.django_db
def test_a_datetime_argument(tenants):
    a, _ = tenants
    start = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    early = SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR, visit_start=start)
    SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR, visit_start=start.replace(hour=9))
    query = CompiledQuery(
        Subject, lambda company_id, until: Subject.objects.for_company(company_id).filter(visit_start__lte=until)
    )
    assert [s.pk for s in query(a.company.pk, start)] == [early.pk]
    assert query(a.company.pk, start.replace(hour=1, minute=29)) == []
    with pytest.raises(ValueError):
        CompiledQuery(Subject, lambda until: Subject.objects.for_company(a.company).filter(visit_start__lte=until))(
            datetime(2026, 3, 2)  # naive: refused, as the ORM would warn
        )


@pytest.mark.django_db
def test_a_list_of_strs_argument(tenants):
    a, b = tenants
    ann = SubjectFactory(company=a.company, job_number="E-1")
    SubjectFactory(company=a.company, job_number="E-2")
    SubjectFactory(company=b.company, job_number="E-1")  # the same number, another company
    query = CompiledQuery(
        Subject,
        lambda company_id, numbers: Subject.objects.for_company(company_id).filter(job_number__in=numbers),
    )
    for _ in range(2):
        assert [s.pk for s in query(a.company.pk, ["E-1", "E-9"])] == [ann.pk]
    assert sorted(s.job_number for s in query(a.company.pk, ["E-2", "E-1"])) == ["E-1", "E-2"]
    with pytest.raises(ValueError):
        query(a.company.pk, ["E-1", 7])  # one list, one type


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_a_shape_run_often_is_a_prepared_statement(tenants):
    """Its parameters go apart from the SQL and, after `prepare_threshold` runs on the
    connection, PostgreSQL keeps its plan: the statement is among the session's prepared ones."""
    a, _ = tenants
    person = SubjectFactory(company=a.company)
    query = CompiledQuery(Subject, build)
    runs = connection.settings_dict["OPTIONS"]["prepare_threshold"] + 1
    for _ in range(runs):
        assert [s.pk for s in query(a.company.pk, [person.pk])] == [person.pk]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "subjects_subject"' in statement and "$1" in statement for statement in prepared), prepared
