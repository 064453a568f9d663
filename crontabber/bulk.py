"""Updating many rows of one model at once: the runner's bookkeeping for a batch of jobs.

The ORM compiles an UPDATE for every row; this builds one short statement. On PostgreSQL
the rows go as one array per column, zipped by ``unnest`` (as Django's bulk_create does
for an INSERT); elsewhere the statement is sent once per row with executemany (SQLite
runs in process: that is cheap).
"""

from __future__ import annotations

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


def _arrays(fields) -> str:
    # varchar[], not varchar(200)[]: a cast to the sized type would cut a long value
    # silently where the column refuses it (Django's bulk_create does the same).
    return ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field in fields)


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
    statement = _unnest if connection.vendor == "postgresql" else _executemany
    with connection.cursor() as cursor:
        statement(cursor, model, columns, typed, rows, set_sql, f" AND {where_sql}" if where_sql else "", where_params)
        return cursor.rowcount


def _unnest(cursor, model, columns, typed, rows, set_sql, where, where_params) -> None:
    """PostgreSQL: one statement, the rows as one array per column zipped by unnest."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ["pk", *(f"c{i}" for i in range(len(columns))), *(["r"] if len(typed) > len(columns) + 1 else [])]
    sets = [f"{quote(column.column)} = v.c{i}" for i, column in enumerate(columns)]
    sets += [set_sql.format(row="v.r")] if set_sql else []
    cursor.execute(
        f"UPDATE {table} SET {', '.join(sets)} FROM unnest({_arrays(typed)}) AS v({', '.join(names)}) "
        f"WHERE {table}.{quote(model._meta.pk.column)} = v.pk{where}",
        [list(column) for column in zip(*rows, strict=True)] + list(where_params),
    )


def _executemany(cursor, model, columns, typed, rows, set_sql, where, where_params) -> None:
    """Elsewhere: the statement once per row (SQLite runs in process: that is cheap)."""
    quote = connection.ops.quote_name
    sets = [f"{quote(column.column)} = %s" for column in columns]
    sets += [set_sql.format(row="%s")] if set_sql else []
    cursor.executemany(
        f"UPDATE {quote(model._meta.db_table)} SET {', '.join(sets)} WHERE {quote(model._meta.pk.column)} = %s{where}",
        [[*values[1:], values[0], *where_params] for values in rows],
    )
