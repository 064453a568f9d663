"""A batch of recorded attempts written: their Log rows and their jobs' states in one
transaction, only for the jobs the runner still holds (a job another runner took over is
left to it). A batch the database refuses is written job by job, so that one value it
refuses fails its own job alone; only the database going away fails the tick.

The statements: the ORM compiles an UPDATE for every row, and its bulk_create prepares
every value of every row field by field; update_rows and insert_rows build one short
statement. On PostgreSQL the rows go as one JSON string (psycopg's per-element array
adaptation was most of a batch's cost), read with each column's own type:
``json_to_recordset`` for an UPDATE, ``json_populate_recordset`` with the table's row type
for an INSERT. Elsewhere the UPDATE is sent once per row with executemany (SQLite runs in
process: that is cheap) and the INSERT is the ORM's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import logger
from ..models import Job, Log
from ..outcomes import Attempt, Interruption
from .claims import Claimed

LOG_FIELDS = [
    "started_at", "duration", "outcome", "error_type", "error_value", "traceback", "output", "backend", "result_id",
    "start_lag",
]  # fmt: skip
JOB_FIELDS = [
    "last_run", "last_success", "last_skipped", "last_missed", "next_slot", "next_run", "error_count", "last_error",
    "crash_count", "claimed_by", "claimed_at", "claim_expires", "start_lag",
]  # fmt: skip


def deadlocked(error: BaseException) -> bool:
    """The database chose this transaction as a deadlock's victim and rolled it back
    (MySQL and MariaDB 1213, PostgreSQL 40P01): nothing of it was written; try again."""
    code = error.args[0] if isinstance(error, DatabaseError) and error.args else None
    return code == 1213 or getattr(error.__cause__, "sqlstate", None) == "40P01"


def database_lost(error: BaseException) -> bool:
    """The database itself is gone (not one value it refused): the tick's failure, not a job's."""
    return isinstance(error, DatabaseError) and not connection.is_usable()


@dataclass
class Recorded:
    """An attempt's outcome, recorded (``written``: False when another runner took the job over)."""

    claimed: Claimed
    log: Log
    attempt: Attempt
    previous_errors: int  # the job's consecutive errors before it
    written: bool = True


def write(recorded: list[Recorded], owner: str, served: dict[int, datetime]) -> tuple[list[Recorded], set[str]]:
    """The batch written for ``owner``; ``served``: job pk -> the start of the attempt that
    serves a "run now" requested before it. Returns what was recorded (a refused outcome
    replaced by the failure recorded instead) and the names of the jobs lost to another runner."""
    try:
        return recorded, _write(recorded, owner, served)
    except Exception as error:
        if database_lost(error):
            raise
        logger.exception("could not write %s outcomes together; writing each job's alone", len(recorded))
        return _write_each_job(recorded, owner, served)


def _write(recorded: list[Recorded], owner: str, served: dict[int, datetime]) -> set[str]:
    jobs = list({id(item.claimed.job): item.claimed.job for item in recorded}.values())
    with transaction.atomic():
        # Jobs first: on MariaDB a Log row's foreign key share-locks its job's row, and
        # upgrading that lock while another runner waits for the row is a deadlock.
        kept = _write_jobs(jobs, owner, served)
        update_rows(Log, [item.log for item in recorded], LOG_FIELDS)
    return _lost(jobs) if kept < len(jobs) else set()


def _write_each_job(recorded: list[Recorded], owner: str, served) -> tuple[list[Recorded], set[str]]:
    """Each job's outcomes on their own. A job whose outcome is refused has its first
    unwritten slot recorded as a failure (it runs again after the back-off), its later
    ones as interrupted."""
    by_job: dict[int, list[Recorded]] = {}
    for item in recorded:
        by_job.setdefault(id(item.claimed.job), []).append(item)
    written, lost = [], set()
    for items in by_job.values():
        try:
            lost |= _write(items, owner, served)
            written += items
        except Exception as error:
            logger.exception("%s: could not record its outcome", items[0].claimed.spec.name)
            written += _record_unwritable(items, owner, error)
    return written, lost


def _record_unwritable(items: list[Recorded], owner: str, error: Exception) -> list[Recorded]:
    claimed, first = items[0].claimed, items[0]
    claimed.job.refresh_from_db()  # its state as last written: the slots run again
    if claimed.released:
        claimed.job.drop_claim()
    attempt = Attempt.failed(error, f"the outcome ({first.attempt.outcome}) could not be recorded: {error}")
    retry = Recorded(claimed, first.log, attempt, claimed.job.error_count)
    claimed.job.apply_attempt(claimed.spec.schedule, first.log.slot, first.log.started_at, attempt, timezone.now())
    first.log.finish(attempt)
    try:
        _write([retry], owner, {})
    except Exception:
        logger.exception("%s: could not record the failure either; its claim expires", claimed.spec.name)
        return []
    Log.objects.filter(pk__in=[item.log.pk for item in items[1:]]).interrupt_running(
        Interruption.NOT_RECORDED, "ran, but its outcome could not be recorded: the slot runs again"
    )
    return [retry]


def _write_jobs(jobs: list[Job], owner: str, served: dict[int, datetime]) -> int:
    """The jobs' states, only where the claim is still ``owner``'s; a "run now" is cleared
    where the attempt that served it started after it was requested."""
    quote = connection.ops.quote_name
    requested = quote(Job._meta.get_field("run_requested").column)
    kept = update_rows(
        Job,
        jobs,
        JOB_FIELDS,
        row=("run_requested", lambda job: served.get(job.pk)),
        set_sql=f"{requested} = CASE WHEN {requested} <= {{row}} THEN NULL ELSE {requested} END",
        where_sql=f"{quote('claimed_by')} = %s",
        where_params=[owner],
    )
    for job in jobs:
        if job.run_requested is not None and job.pk in served and job.run_requested <= served[job.pk]:
            job.run_requested = None
    return kept


def _lost(jobs: list[Job]) -> set[str]:
    """The jobs whose row another runner's claim now holds."""
    held = set(Job.objects.filter(pk__in=[job.pk for job in jobs]).values_list("claimed_by", "name"))
    lost = {job.name for job in jobs if (job.claimed_by, job.name) not in held}
    logger.error("%s: lost the claim to another runner; its state is left to it", ", ".join(sorted(lost)))
    return lost


# --- the statements ---------------------------------------------------------------------


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
