"""crontabber.engine.writes: many rows updated in one statement (PostgreSQL) or one executemany (SQLite,
MariaDB), and inserted in one statement with their ids given back."""

import pytest
from django.db import DataError, connection, transaction

from crontabber.engine.writes import insert_rows, update_rows
from crontabber.models import Job, Log
from tests.helpers import at

pytestmark = pytest.mark.django_db


def make_jobs():
    return [Job.objects.create(name=f"j{n}", claimed_by="me" if n < 3 else "other") for n in range(4)]


def test_sets_each_rows_own_values_only_where_the_condition_holds():
    jobs = make_jobs()
    for n, job in enumerate(jobs):
        job.error_count, job.last_error, job.next_run = n, f"error {n}", at(f"2026-05-0{n + 1} 10:00")
    changed = update_rows(
        Job, jobs, ["error_count", "last_error", "next_run"], where_sql="claimed_by = %s", where_params=["me"]
    )
    assert changed == 3
    rows = {j.name: (j.error_count, j.last_error, j.next_run) for j in Job.objects.all()}
    assert rows["j2"] == (2, "error 2", at("2026-05-03 10:00"))
    assert rows["j3"] == (0, "", None)  # not ours: untouched


def test_a_value_per_row_in_an_expression():
    jobs = make_jobs()
    Job.objects.update(run_requested=at("2026-05-01 10:00"))
    served = {jobs[0].pk: at("2026-05-01 10:05"), jobs[1].pk: at("2026-05-01 09:55")}
    update_rows(
        Job,
        jobs,
        [],
        row=("run_requested", lambda job: served.get(job.pk)),
        set_sql="run_requested = CASE WHEN run_requested <= {row} THEN NULL ELSE run_requested END",
    )
    left = dict(Job.objects.values_list("name", "run_requested"))
    assert left == {
        "j0": None,
        "j1": at("2026-05-01 10:00"),
        "j2": at("2026-05-01 10:00"),
        "j3": at("2026-05-01 10:00"),
    }


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite does not enforce varchar lengths")
def test_a_value_too_long_for_its_column_is_refused_not_cut():
    jobs = make_jobs()
    jobs[0].claimed_by = "x" * 201
    with pytest.raises(DataError), transaction.atomic():
        update_rows(Job, jobs, ["claimed_by"])


def test_a_bulk_insert_gives_back_the_ids_where_the_backend_says_it_does():
    # The runner opens a batch's Log rows in one INSERT only where the ids come back
    # (runner._open_attempts); MariaDB does since 10.5 (INSERT ... RETURNING), MySQL does not.
    if connection.vendor == "postgresql" or (connection.vendor == "mysql" and connection.mysql_is_mariadb):
        assert connection.features.can_return_rows_from_bulk_insert
    if not connection.features.can_return_rows_from_bulk_insert:
        pytest.skip(f"{connection.display_name} returns no ids from a bulk INSERT")
    job = Job.objects.create(name="j")
    logs = Log.objects.bulk_create(
        [Log(job=job, slot=at(f"2026-05-01 1{n}:00"), started_at=at("2026-05-01 12:00"), duration=0) for n in range(3)]
    )
    assert all(log.pk is not None for log in logs)
    assert {log.pk: log.slot for log in logs} == dict(Log.objects.values_list("pk", "slot"))


def test_text_of_any_kind_comes_back_as_it_was_written():
    jobs = make_jobs()
    texts = ['quote " backslash \\ tab\t', "newline\nand é, 日本, 🙂", "{json: [1, 2]}", ""]
    for job, text in zip(jobs, texts, strict=True):
        job.last_error = text
    update_rows(Job, jobs, ["last_error"])
    assert [Job.objects.get(pk=job.pk).last_error for job in jobs] == texts


def test_inserted_rows_get_their_ids_in_order():
    if not connection.features.can_return_rows_from_bulk_insert:
        pytest.skip(f"{connection.display_name} returns no ids from a bulk INSERT")
    job = Job.objects.create(name="j")
    logs = [
        Log(job=job, slot=at(f"2026-05-01 1{n}:00"), started_at=at("2026-05-01 12:00"), duration=n, host=f"h{n}")
        for n in range(5)
    ]
    insert_rows(Log, logs)
    stored = {log.pk: (log.slot, log.duration, log.host) for log in Log.objects.all()}
    assert stored == {log.pk: (log.slot, log.duration, log.host) for log in logs}
    logs[0].outcome = "success"
    logs[0].save(update_fields=["outcome"])  # the instances are saved rows now
    assert Log.objects.get(pk=logs[0].pk).outcome == "success"


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite does not enforce varchar lengths")
def test_an_inserted_value_too_long_for_its_column_is_refused_not_cut():
    job = Job.objects.create(name="j")
    row = Log(job=job, slot=at("2026-05-01 10:00"), started_at=at("2026-05-01 10:00"), duration=0, host="x" * 201)
    with pytest.raises(DataError), transaction.atomic():  # the host alone is wrong
        insert_rows(Log, [row])


def test_a_ticks_reading_of_every_job_gives_the_same_instants_as_the_orm():
    from datetime import UTC, datetime, timedelta

    from crontabber.models import TICK_FIELDS

    Job.objects.create(name="a", next_run=at("2026-05-01 10:00") + timedelta(microseconds=123456))
    Job.objects.create(
        name="b", next_run=datetime(1, 1, 1, tzinfo=UTC), claim_expires=datetime(9999, 12, 31, tzinfo=UTC)
    )
    Job.objects.create(name="c")
    rows = Job.objects.tick_rows()
    assert {name: tuple(row) for name, row in rows.items()} == {
        row[0]: row for row in Job.objects.values_list(*TICK_FIELDS)
    }
    assert rows["a"].next_run == at("2026-05-01 10:00:00.123456") and rows["a"].next_run.utcoffset() == timedelta(0)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the timestamp loader is PostgreSQL's")
def test_reading_every_job_again_and_again_leaves_nothing_behind():
    # psycopg keeps every loader class it is given: a new one per tick grew a
    # long-lived `cronrun --loop` by megabytes an hour (benchmarks/soak.py found it).
    from psycopg.adapt import AdaptersMap

    Job.objects.create(name="a", next_run=at("2026-05-01 10:00"))
    Job.objects.tick_rows()
    kept = len(AdaptersMap._optimised)
    for _ in range(20):
        Job.objects.tick_rows()
    assert len(AdaptersMap._optimised) == kept
