"""Queries of a fixed shape, compiled to SQL once per process rather than on every request.

Django builds a queryset and compiles its SQL each time it runs. For the small indexed
lookups that a request makes every time (the device key of every device request, the
subjects and screens of every event post), that is several times the database's own work:
on a post of ten events, most of the worker's CPU for those queries went to building and
compiling them. `CompiledQuery` builds its queryset once per database and shape with
placeholder arguments, keeps the SQL and what Django's `ModelIterable` needs to turn rows
into instances, and afterwards only puts the real arguments in place.

The queryset is the one the ORM would run (scoped with `for_company` like any other), so the
SQL, the rows and the instances (with `select_related` objects and annotations) are the
same. A shape whose placeholders do not all come out as parameters of the SQL (a value
the ORM wrote into the SQL text) is refused with ValueError the first time it is built,
never run with the wrong values.

On PostgreSQL a compiled query is sent with its parameters apart from the SQL (server-side
binding) and, once run a few times on a connection, as a prepared statement
(`prepare_threshold` in the database's OPTIONS, kangaroo.settings): psycopg no longer
quotes every value into the SQL text in Python, and PostgreSQL no longer parses and plans
the same SQL for every post. Other queries keep Django's client-side binding: their SQL
is not of a fixed shape, and some of Django's SQL needs its values written in.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections, router
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

# An `__in` list longer than this runs through the ORM as usual: each length is a shape of
# its own, and a long list costs far more in the database than its compilation.
MAX_LIST_ARGUMENT = 64

_INT_BASE = 7_340_000_000_000_000_000  # placeholders: far above any id, below a bigint's limit
_DATETIME_BASE = datetime(1901, 2, 3, tzinfo=UTC)


@dataclass(frozen=True)
class _Shape:
    sql: str
    params: tuple  # the compiled parameters; placeholders' slots are filled per run
    slots: tuple[tuple[int, int, int | None], ...]  # (param position, argument, list index or None)
    klass_info: dict
    annotation_col_map: dict
    init_list: list[str]
    fields: tuple[int, int]
    converters: list[tuple[int, tuple[list, Any]]]  # (column, (converters, expression)), as Django's
    populators: list  # the select_related objects' `RelatedPopulator`s


class CompiledQuery:
    """`build(*arguments)` returns the queryset; each argument is an int, a str, an aware
    datetime, or a list of ints or of strs (for `__in`). Calling the `CompiledQuery` with
    real arguments returns the model instances that `list(build(*arguments))` would."""

    def __init__(self, model: type[Model], build: Callable[..., QuerySet]):
        self.model = model
        self._build = build
        self._shapes: dict[tuple, _Shape] = {}
        self._lock = threading.Lock()

    def __call__(self, *arguments: Any) -> list[Model]:
        arguments = tuple(list(dict.fromkeys(a)) if isinstance(a, (list, tuple, set)) else a for a in arguments)
        lists = [a for a in arguments if isinstance(a, list)]
        if any(not a for a in lists):
            return []  # `__in` an empty list matches nothing (the ORM would not query either)
        if any(len(a) > MAX_LIST_ARGUMENT for a in lists):
            return list(self._build(*arguments))
        if any(len(set(map(type, a))) != 1 for a in lists):
            raise ValueError("CompiledQuery: a list argument holds values of one type")
        alias = router.db_for_read(self.model)
        key = (alias, *((len(a), type(a[0])) if isinstance(a, list) else type(a) for a in arguments))
        shape = self._shapes.get(key)
        if shape is None:
            with self._lock:
                shape = self._shapes.get(key) or self._compile(alias, arguments)
                self._shapes[key] = shape
        return self._run(alias, shape, arguments)

    def _compile(self, alias: str, arguments: Sequence[Any]) -> _Shape:
        counter = itertools.count(1)
        where: dict[Any, tuple[int, int | None]] = {}

        def placeholder(value: Any, index: int, item: int | None) -> Any:
            number = next(counter)
            if isinstance(value, datetime):
                if value.tzinfo is None:
                    raise ValueError(f"CompiledQuery: argument {index} must be an aware datetime")
                stand_in = _DATETIME_BASE + timedelta(microseconds=number)
                # As the ORM writes a datetime parameter (text on SQLite, as it is on PostgreSQL).
                where[connection.ops.adapt_datetimefield_value(stand_in)] = (index, item)
                return stand_in
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError(
                    f"CompiledQuery: argument {index} must be an int, a str, a datetime or a list of ints or of strs"
                )
            stand_in = _INT_BASE + number if isinstance(value, int) else f"compiled-query-argument-{number}"
            where[stand_in] = (index, item)
            return stand_in

        connection = connections[alias]

        stand_ins = [
            [placeholder(v, index, n) for n, v in enumerate(a)] if isinstance(a, list) else placeholder(a, index, None)
            for index, a in enumerate(arguments)
        ]
        queryset = self._build(*stand_ins)
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = tuple((position, *where[p]) for position, p in enumerate(params) if _hashable(p) and p in where)
        found = {(index, item) for _, index, item in slots}
        if found != set(where.values()) or len(slots) != len(where):
            raise ValueError("CompiledQuery: each argument must appear once among the SQL's parameters")
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        # What the compiler's results_iter would work out on every run (none at all for most
        # columns on PostgreSQL); a converter is called with the connection of its run.
        converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
        return _Shape(
            sql=sql,
            params=tuple(params),
            slots=slots,
            klass_info=klass_info,
            annotation_col_map=compiler.annotation_col_map,
            init_list=[f[0].target.attname for f in select[start:end]],
            fields=(start, end),
            converters=list(converters.items()),
            populators=get_related_populators(klass_info, select, alias),
        )

    def _run(self, alias: str, shape: _Shape, arguments: Sequence[Any]) -> list[Model]:
        connection = connections[alias]
        params = list(shape.params)
        for position, index, item in shape.slots:
            value = arguments[index] if item is None else arguments[index][item]
            params[position] = connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
        with server_binding_cursor(connection) as cursor:
            cursor.execute(shape.sql, params)
            rows = cursor.fetchall()
        if not rows:
            return []
        if shape.converters:
            rows = [_converted(row, shape.converters, connection) for row in rows]
        model = shape.klass_info["model"]
        start, end = shape.fields
        found = []
        for row in rows:
            obj = model.from_db(alias, shape.init_list, row[start:end])
            for populator in shape.populators:
                populator.populate(row, obj)
            for name, position in shape.annotation_col_map.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found


def _converted(row: tuple, converters: list, connection) -> list:
    row = list(row)
    for position, (functions, expression) in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


def server_binding_cursor(connection):
    """Django's cursor (its error translation, query logging and execute wrappers), on
    PostgreSQL over a server-side binding psycopg cursor (see the module's docstring), for
    SQL of a fixed shape whose values are all parameters."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(connection.connection)
    return CursorDebugWrapper(raw, connection) if connection.queries_logged else CursorWrapper(raw, connection)


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str, datetime))
