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
