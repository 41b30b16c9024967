"""Ingest, second half: storing the rows `events.parsing.classify` built.

One bulk insert per batch, with each item's snapshot file saved first (and deleted again if
the transaction does not commit). On PostgreSQL a batch of COPY_MIN_ROWS or more is inserted
with COPY (its ids drawn from the table's sequence first), several times cheaper than an
INSERT of the same rows; a smaller one with one INSERT ... RETURNING.
"""

from __future__ import annotations

import contextlib
import io
import json
import operator
from datetime import datetime

from django.db import connections, models, router, transaction

from events.models import Event
from events.parsing import ItemResult, ParsedItem, error_dict
from kangaroo.compiled import server_binding_cursor
from kangaroo.errors import KangarooError
from kangaroo.images import normalise_photo
from kangaroo.media import MediaKind, media_save, media_written

MAX_BATCH = 500
COPY_MIN_ROWS = 20  # below this, one INSERT ... RETURNING beats fetching ids, then COPY


def store_events(
    *, company, to_create: list[tuple[ParsedItem, Event]], results: list[ItemResult | None]
) -> list[Event]:
    """Save the snapshots and insert the rows, all or nothing; answer each stored item
    `created` in `results` (a snapshot that is not an image answers its item's error and
    that row is not stored). Returns the stored events. A uid stored meanwhile raises
    IntegrityError and nothing is kept."""
    connection = connections[router.db_for_write(Event)]
    atomic = transaction.atomic() if _needs_transaction(to_create, connection) else contextlib.nullcontext()
    with media_written() as written, atomic:
        for item, event in to_create:
            if item.snapshot is not None:
                try:
                    image = normalise_photo(io.BytesIO(item.snapshot))
                except KangarooError as exc:
                    results[item.index] = ItemResult(item.uid, "error", error=error_dict(exc, field="snapshot"))
                    continue
                event.snapshot.name = media_save(
                    kind=MediaKind.SNAPSHOT, company_id=company.pk, content=image.image, written=written
                )
        valid = [(item, event) for item, event in to_create if results[item.index] is None]
        created = _insert(connection, [event for _, event in valid])  # each built with the device's company
        for (item, _event), event in zip(valid, created, strict=True):
            results[item.index] = ItemResult(item.uid, "created", id=event.pk)
    return created


# Field types whose Python value psycopg writes as is; Event's other fields are handled below.
_COPY_AS_IS = (models.CharField, models.IntegerField, models.FloatField, models.DateTimeField, models.ForeignKey)


class _Columns:
    """Event's columns but the id, and each event's values for them, read from the event's
    own attributes in one call (not through each field's descriptor: a file field's would
    build a `FieldFile` per row), with a file field's name in place of its value."""

    def __init__(self, names: list[str], attnames: list[str], files: list[int]):
        self.names = names
        self._values = operator.itemgetter(*attnames)
        self._files = files

    def row(self, event: Event) -> tuple | list:
        values = self._values(event.__dict__)
        if not self._files:
            return values
        values = list(values)
        for index in self._files:
            value = values[index]
            values[index] = value if isinstance(value, str) else (value.name or "")  # a FieldFile
        return values


def _copy_columns() -> _Columns | None:
    """Event's columns for COPY; None if a field needs a conversion that only the ORM knows
    (then bulk_create is used)."""
    names, attnames, files = [], [], []
    for model_field in Event._meta.concrete_fields:
        if model_field.primary_key:
            continue
        if isinstance(model_field, models.FileField):
            files.append(len(names))
        elif not isinstance(model_field, _COPY_AS_IS):
            return None
        names.append(model_field.column)
        attnames.append(model_field.attname)
    return _Columns(names, attnames, files)


_COPY_COLUMNS = _copy_columns()


def _needs_transaction(to_create: list[tuple[ParsedItem, Event]], connection) -> bool:
    """Several rows, or a row with its snapshot file, are stored in one transaction. One row
    alone is one INSERT, atomic by itself: without a transaction it saves the BEGIN and
    COMMIT round trips. Inside a caller's transaction we still take a savepoint, so that a
    uid raced in by a concurrent retry rolls back only our part."""
    return len(to_create) != 1 or to_create[0][0].snapshot is not None or connection.in_atomic_block


def _insert(connection, events: list[Event]) -> list[Event]:
    """Insert `events` and set their ids, like bulk_create, which it is off PostgreSQL (where a
    single row outside a transaction is saved alone: bulk_create would open one). On
    PostgreSQL, COPY_MIN_ROWS or more go by COPY, fewer (one included) by one prepared INSERT
    from a JSON text (`_insert_rows`). A uid already stored raises IntegrityError either way."""
    if not events:  # every item a duplicate or an error
        return events
    fast = connection.vendor == "postgresql" and _COPY_COLUMNS is not None
    if len(events) < COPY_MIN_ROWS and fast:
        # One statement, atomic by itself: a single post's row needs no transaction either.
        return _insert_rows(connection, events)
    if len(events) == 1 and not connection.in_atomic_block:
        events[0].save(force_insert=True)  # one INSERT in autocommit, no transaction around it
        return events
    if not fast:
        return Event.objects.bulk_create(events, batch_size=MAX_BATCH)  # tenant: the caller built them with company
    quote = connection.ops.quote_name
    table, pk_column = Event._meta.db_table, Event._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk_column, len(events)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        columns = ", ".join(quote(column) for column in (pk_column, *_COPY_COLUMNS.names))
        row = _COPY_COLUMNS.row
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk, event in zip(ids, events, strict=True):
                copy.write_row((pk, *row(event)))
    for pk, event in zip(ids, events, strict=True):
        _stored(event, pk, connection)
    return events


def _insert_rows(connection, events: list[Event]) -> list[Event]:
    """One INSERT ... SELECT FROM json_to_recordset(the rows as one JSON text) ... RETURNING
    id. Its SQL, the same for any number of rows, is written once per process (compiling a
    bulk_create on every post was a third of the storing's CPU for a post of ten events),
    and prepared once run a few times (`kangaroo.compiled`). The rows go as one text
    parameter, which the C encoder writes at once: as one array per column (bulk_create's
    UNNEST), psycopg's array dumper, written in Python, went through every value again, a
    sixteenth of a busy server's CPU. Text never holds NUL here (the API's parsers refuse
    control characters), the one character PostgreSQL's JSON cannot take into a text."""
    names = _COPY_COLUMNS.names
    rows = json.dumps([dict(zip(names, _COPY_COLUMNS.row(event), strict=True)) for event in events], default=_json)
    with server_binding_cursor(connection) as cursor:
        cursor.execute(_insert_rows_sql(connection), [rows])
        ids = [row[0] for row in cursor.fetchall()]
    for pk, event in zip(ids, events, strict=True):  # rows come back in the order of the JSON array
        _stored(event, pk, connection)
    return events


def _json(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON form for an event's row")


_INSERT_ROWS_SQL: dict[str, str] = {}  # by database alias


def _insert_rows_sql(connection) -> str:
    sql = _INSERT_ROWS_SQL.get(connection.alias)
    if sql is None:
        fields = {f.column: f for f in Event._meta.concrete_fields}
        quote = connection.ops.quote_name
        table, pk = quote(Event._meta.db_table), quote(Event._meta.pk.column)
        columns = ", ".join(quote(column) for column in _COPY_COLUMNS.names)
        # Without the length (varchar, not varchar(64)), so that the INSERT, not the reading of
        # the JSON, checks it, as for any other insert.
        types = ", ".join(f"{quote(c)} {fields[c].db_type(connection).split('(')[0]}" for c in _COPY_COLUMNS.names)
        # Names and types from the model's metadata, quoted; the rows are the parameter.
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT {columns} "  # noqa: S608
            f"FROM json_to_recordset(%s::json) AS rows({types}) RETURNING {table}.{pk}"
        )
        _INSERT_ROWS_SQL[connection.alias] = sql
    return sql


def _stored(event: Event, pk: int, connection) -> Event:
    event.pk = pk
    event._state.adding = False
    event._state.db = connection.alias
    return event
