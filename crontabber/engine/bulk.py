"""Writing many rows of one model at once (the ledger's writes for a batch of attempts).

The ORM compiles an UPDATE for every row, and its bulk_create prepares every value of
every row field by field; these build one short statement. On PostgreSQL the rows go as
one JSON string (psycopg's per-element array adaptation was most of a batch's cost),
read with each column's own type: ``json_to_recordset`` for an UPDATE,
``json_populate_recordset`` with the table's row type for an INSERT. Elsewhere the
UPDATE is sent once per row with executemany (SQLite runs in process: that is cheap) and
the INSERT is the ORM's. On PostgreSQL, reading every job's row parses its timestamps in
C (fast_datetimes).
"""

from __future__ import annotations

import json
from datetime import date, datetime

from django.db import connection


def _to_db(field):
    """How a value of ``field`` taken from a model instance of ours goes to the database.
    The instance already holds the field's Python type, so only datetimes need the
    backend's adaptation (SQLite stores them as UTC text); Field.get_db_prep_save would
    also re-validate every value, and that is most of the cost of a batch."""
    if field.get_internal_type() == "DateTimeField":
        adapt = connection.ops.adapt_datetimefield_value
        return lambda value: None if value is None else adapt(value)
    return lambda value: value


def update_rows(model, objs, fields: list[str], *, row=None, set_sql="", where_sql="", where_params=()) -> int:
    """UPDATE each object's row (by primary key): ``fields`` from the object's attributes,
    then ``set_sql``, in which ``{row}`` stands for a value of each row, ``row = (name of
    the field whose type it has, obj -> value)``; only where ``where_sql`` holds (its
    parameters the same for every row). Returns the number of rows changed."""
    columns = [model._meta.get_field(name) for name in fields]
    typed = [model._meta.pk, *columns, *([model._meta.get_field(row[0])] if row else [])]
    convert = [_to_db(field) for field in typed]
    rows = []
    for obj in objs:
        values = [obj.pk, *(getattr(obj, column.attname) for column in columns), *([row[1](obj)] if row else [])]
        rows.append([to_db(value) for to_db, value in zip(convert, values, strict=True)])
    statement = _from_json if connection.vendor == "postgresql" else _executemany
    with connection.cursor() as cursor:
        statement(cursor, model, columns, typed, rows, set_sql, f" AND {where_sql}" if where_sql else "", where_params)
        return cursor.rowcount


def _isoformat(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a value bulk.py writes")


def _records(columns, rows) -> str:
    """The rows as one JSON array of objects keyed by column name (datetimes in ISO 8601)."""
    return json.dumps([dict(zip(columns, values, strict=True)) for values in rows], default=_isoformat)


def _from_json(cursor, model, columns, typed, rows, set_sql, where, where_params) -> None:
    """PostgreSQL: one statement, the rows as JSON read with the columns' own types (a
    value too long for its column is refused, not cut)."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ["pk", *(f"c{i}" for i in range(len(columns))), *(["r"] if len(typed) > len(columns) + 1 else [])]
    types = ", ".join(f"{name} {field.db_type(connection)}" for name, field in zip(names, typed, strict=True))
    sets = [f"{quote(column.column)} = v.c{i}" for i, column in enumerate(columns)]
    sets += [set_sql.format(row="v.r")] if set_sql else []
    cursor.execute(
        f"UPDATE {table} SET {', '.join(sets)} FROM json_to_recordset(%s) AS v({types}) "
        f"WHERE {table}.{quote(model._meta.pk.column)} = v.pk{where}",
        [_records(names, rows), *where_params],
    )


def insert_rows(model, objs: list) -> None:
    """INSERT the objects (new rows) in one statement and set their primary keys, as
    bulk_create does where the backend returns them (PostgreSQL: as JSON, see above)."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    rows = [[getattr(obj, field.attname) for field in fields] for obj in objs]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s) "
            f"RETURNING {quote(model._meta.pk.column)}",
            [_records([field.column for field in fields], rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]  # in the order of the rows selected, as bulk_create relies on
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias


def _executemany(cursor, model, columns, typed, rows, set_sql, where, where_params) -> None:
    """Elsewhere: the statement once per row (SQLite runs in process: that is cheap)."""
    quote = connection.ops.quote_name
    sets = [f"{quote(column.column)} = %s" for column in columns]
    sets += [set_sql.format(row="%s")] if set_sql else []
    cursor.executemany(
        f"UPDATE {quote(model._meta.db_table)} SET {', '.join(sets)} WHERE {quote(model._meta.pk.column)} = %s{where}",
        [[*values[1:], values[0], *where_params] for values in rows],
    )
