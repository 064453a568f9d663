"""Django's Tasks framework: tasks as jobs, and jobs run on task workers (docs/tasks.md).

The database backend's worker runs here in-process, in batch mode (every ready task, then
it returns); tests/test_task_workers.py runs real worker processes on PostgreSQL."""

import json
import signal
from io import StringIO

import pytest
from django.core.management import call_command

from crontabber.models import Job, Log
from crontabber.registry import validate
from crontabber.web import health
from tests.helpers import at, job, outcomes, tick
from tests.jobs import control
from tests.jobs.models import Execution

pytest.importorskip("django_tasks_db")

T0 = "2026-05-04 10:00"


def worker_runs_ready_tasks():
    """django-tasks-db's own worker, in this process: every ready task, then it returns."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    try:
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", "--backend", "db", verbosity=0)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def rows(name):
    return list(Log.objects.filter(job__name=name).order_by("started_at", "id"))


# --- the registry ---------------------------------------------------------------------------


def problems(entry):
    return [(p.key, p.message) for p in validate([entry])[1]]


def test_a_task_job_is_checked_like_a_command_job():
    assert problems({"task": "tests.jobs.tasks.rollup", "cron": "0 * * * *", "backfill": True}) == []
    assert problems({"task": "tests.jobs.tasks.plain", "frequency": "1h", "backfill": True}) == [
        ("backfill", "task 'tests.jobs.tasks.plain' does not accept the keyword argument run_time")
    ]
    assert problems({"task": "tests.jobs.tasks.plain", "frequency": "1h", "last_success": True}) == [
        ("last_success", "task 'tests.jobs.tasks.plain' does not accept the keyword argument last_success")
    ]
    assert problems({"task": "tests.jobs.tasks.not_a_task", "frequency": "1h"}) == [
        ("task", "'tests.jobs.tasks.not_a_task' is not a Task (decorate the function with @task)")
    ]
    assert problems({"task": "tests.jobs.nowhere.rollup", "frequency": "1h"})[0][0] == "task"
    assert problems({"task": "tests.jobs.tasks.plain", "cmd": "noop"}) == [("cmd", "is for command jobs, not a task")]
    assert problems({"task": "tests.jobs.tasks.plain", "process": True}) == [
        ("process", "is for command jobs, not a task")
    ]


def test_a_backend_must_exist_and_read_results_back(settings):
    assert problems({"cmd": "noop", "backend": "db"}) == []
    assert problems({"cmd": "noop", "backend": "default"}) == []  # immediate: runs as it is enqueued
    assert problems({"cmd": "noop", "backend": "nope"}) == [
        ("backend", f"unknown task backend 'nope' (TASKS has {', '.join(settings.TASKS)})")
    ]
    settings.TASKS = {
        **settings.TASKS,
        "dummy": {
            "BACKEND": settings.TASKS["default"]["BACKEND"].replace("immediate.ImmediateBackend", "dummy.DummyBackend")
        },
    }
    settings.CRONTABBER_TASK_BACKEND = "dummy"
    assert problems({"cmd": "noop"}) == [
        ("backend", "task backend 'dummy' cannot read results back (supports_get_result)")
    ]
    assert problems({"cmd": "noop", "backend": ""}) == []  # this job runs in the runner


def test_a_job_needs_a_command_or_a_task():
    assert problems({"frequency": "1h", "name": "n"}) == [("cmd", "required: the name of a management command")]


# --- task jobs in the runner --------------------------------------------------------------


@pytest.mark.django_db
def test_a_backfill_task_runs_each_slot_oldest_first_with_iso_strings(jobs):
    jobs(
        [
            {
                "task": "tests.jobs.tasks.rollup",
                "name": "rollup",
                "frequency": "1h",
                "backfill": True,
                "last_success": True,
            }
        ]
    )
    tick(at(T0))
    report = tick(at("2026-05-04 13:00"))
    assert report.attempts == {"rollup": {"success": 3}}
    assert list(Execution.objects.order_by("id").values_list("slot", flat=True)) == [
        "2026-05-04T10:00:00+00:00",
        "2026-05-04T11:00:00+00:00",
        "2026-05-04T12:00:00+00:00",
        "2026-05-04T13:00:00+00:00",
    ]
    assert json.loads(rows("rollup")[-1].output) == {
        "run_time": "2026-05-04T13:00:00+00:00",
        "last_success": "2026-05-04T12:00:00+00:00",
    }
    assert job("rollup").last_success == at("2026-05-04 13:00")


@pytest.mark.django_db
def test_a_task_that_raises_fails_and_one_that_skips_is_skipped(jobs):
    jobs(
        [
            {"task": "tests.jobs.tasks.failing", "name": "failing", "frequency": "1h", "backfill": True},
            {"task": "tests.jobs.tasks.skipping", "name": "skipping", "frequency": "1h"},
        ]
    )
    tick(at(T0))
    failed = rows("failing")[0]
    assert (failed.outcome, failed.error_type) == ("failure", "ValueError")
    assert failed.error_value == "failing on purpose for 2026-05-04T10:00:00+00:00"
    assert job("failing").error_count == 1
    assert rows("skipping")[0].outcome == "skipped"


# --- command and task jobs on a backend ----------------------------------------------------


@pytest.mark.django_db
def test_the_immediate_backend_runs_a_command_job_inline(jobs):
    jobs([{"cmd": "record", "frequency": "1h", "backfill": True, "backend": "default"}])
    tick(at(T0))
    (log,) = rows("record")
    assert (log.outcome, log.backend, log.output) == ("success", "default", "recorded  2026-05-04T10:00:00+00:00")
    assert log.result_id


@pytest.mark.django_db(transaction=True)
def test_a_queued_attempt_is_recorded_by_a_later_tick_then_the_next_slot_is_queued(jobs):
    jobs([{"cmd": "record", "frequency": "1h", "backfill": True, "backend": "db"}])
    tick(at(T0))
    tick(at("2026-05-04 12:00"))
    (queued,) = rows("record")
    assert (queued.outcome, queued.backend, queued.slot) == ("queued", "db", at(T0))
    assert queued.result_id
    tick(at("2026-05-04 12:01"))  # no worker yet: nothing changes, nothing more is queued
    assert outcomes("record") == [(at(T0), "queued")]
    for minute in range(2, 5):
        worker_runs_ready_tasks()
        tick(at(f"2026-05-04 12:0{minute}"))
    assert outcomes("record") == [
        (at(T0), "success"),
        (at("2026-05-04 11:00"), "success"),
        (at("2026-05-04 12:00"), "success"),
    ]
    assert [call["run_time"] for call in control.CALLS] == [at(T0), at("2026-05-04 11:00"), at("2026-05-04 12:00")]
    assert rows("record")[0].output == "recorded  2026-05-04T10:00:00+00:00"
    assert job("record").last_success == at("2026-05-04 12:00")


@pytest.mark.django_db(transaction=True)
def test_a_failing_task_on_a_worker_is_a_failure_and_backs_off(jobs):
    jobs(
        [{"task": "tests.jobs.tasks.failing", "name": "failing", "frequency": "1h", "backfill": True, "backend": "db"}]
    )
    tick(at(T0))
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:01"))
    (log,) = rows("failing")
    assert (log.outcome, log.error_type) == ("failure", "ValueError")
    assert "failing on purpose for 2026-05-04T10:00:00+00:00" in log.traceback
    assert job("failing").error_count == 1
    tick(at("2026-05-04 10:01:30"))  # backing off: nothing is queued
    assert len(rows("failing")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_result_that_never_comes_ends_interrupted_and_the_slot_runs_again(jobs):
    from django_tasks_db.models import DBTaskResult

    jobs([{"cmd": "record", "frequency": "1h", "backfill": True, "backend": "db", "timeout": 60}])
    tick(at(T0))
    DBTaskResult.objects.all().delete()  # the queue lost it
    tick(at("2026-05-04 10:01"))  # within the timeout: still waited for
    assert outcomes("record") == [(at(T0), "queued")]
    tick(at("2026-05-04 10:02"))
    first, again = rows("record")
    assert (first.outcome, first.error_type) == ("interrupted", "Lost")
    assert (again.slot, again.outcome, again.attempt) == (at(T0), "queued", 2)


@pytest.mark.django_db(transaction=True)
def test_cronlist_and_health_show_a_queued_attempt(jobs):
    jobs([{"cmd": "record", "frequency": "1h", "backend": "db", "timeout": 60}])
    tick(at(T0))
    log = rows("record")[0]
    out = StringIO()
    call_command("cronlist", "--format=json", stdout=out)
    (entry,) = json.loads(out.getvalue())
    assert entry["queued"] == {"slot": "2026-05-04T10:00:00+00:00", "backend": "db", "result_id": log.result_id,
                               "since": log.started_at.isoformat()}  # fmt: skip
    table = StringIO()
    call_command("cronlist", stdout=table)
    assert f"queued on db ({log.result_id})" in table.getvalue()
    from freezegun import freeze_time

    with freeze_time(at("2026-05-04 10:00:30")):
        Job.objects.update()
        assert health.report().code == health.OK
    with freeze_time(at("2026-05-04 10:05")):
        from django.utils import timezone

        from crontabber.models import Control

        Control.record_tick(timezone.now(), timezone.now(), "test")
        report = health.report()
    assert report.code == health.CRITICAL
    assert report.problems == [
        f"record: attempt queued on db since 2026-05-04 10:00:00+00:00 ({log.result_id}), longer than 0:01:10"
    ]


@pytest.mark.django_db(transaction=True)
def test_the_admin_shows_a_queued_attempt_its_backend_and_result_id(jobs, admin_client):
    from django.urls import reverse

    jobs([{"cmd": "record", "frequency": "1h", "backend": "db"}])
    tick(at(T0))
    log = rows("record")[0]
    page = admin_client.get(reverse("admin:crontabber_log_changelist")).content.decode()
    assert "queued" in page and f"db ({log.result_id})" in page
    detail = admin_client.get(reverse("admin:crontabber_log_change", args=[log.pk])).content.decode()
    assert log.result_id in detail
    jobs_page = admin_client.get(reverse("admin:crontabber_job_changelist")).content.decode()
    assert f"stuck</strong> (on db: {log.result_id})" in jobs_page  # queued hours ago
    from freezegun import freeze_time

    with freeze_time(at("2026-05-04 10:00:30")):
        jobs_page = admin_client.get(reverse("admin:crontabber_job_changelist")).content.decode()
    assert f"queued</strong> (on db: {log.result_id})" in jobs_page


@pytest.mark.django_db
def test_a_rerun_of_a_job_on_a_backend_waits_for_its_result(jobs):
    jobs([{"cmd": "record", "frequency": "1h", "backfill": True, "backend": "default"}])
    tick(at(T0))
    tick(at("2026-05-04 11:00"))
    call_command("cronrerun", "record", "--from", "2026-05-04T10:00Z", "--to", "2026-05-04T11:00Z", stdout=StringIO())
    assert [log.outcome for log in rows("record")] == ["success"] * 4
    assert [log.attempt for log in rows("record")] == [1, 1, 2, 2]


@pytest.mark.django_db(transaction=True)
def test_a_command_on_a_worker_is_stopped_at_its_timeout_there(jobs):
    jobs([{"name": "slow", "cmd": "work", "cmd_args": ["--seconds", "5"], "frequency": "1h", "backend": "db",
           "timeout": 0.3}])  # fmt: skip
    tick(at(T0))
    worker_runs_ready_tasks()  # in its main thread, as db_worker runs tasks: the timeout's alarm works
    tick(at("2026-05-04 10:01"))
    (log,) = rows("slow")
    assert (log.outcome, log.error_type) == ("timeout", "Timeout")
    assert log.duration < 5 and log.output == "working 5.0 s"


@pytest.mark.django_db(transaction=True)
def test_a_dependency_on_a_worker_holds_the_dependent_slot_until_it_succeeded(jobs):
    jobs(
        [
            {"name": "first", "task": "tests.jobs.tasks.rollup", "frequency": "1h", "backfill": True, "backend": "db"},
            {"name": "then", "cmd": "record", "frequency": "1h", "backfill": True, "backend": "db",
             "depends_on": ["first"]},
        ]
    )  # fmt: skip
    tick(at(T0))
    assert outcomes("then") == []  # waits: first's slot is only queued
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:01"))
    assert outcomes("first") == [(at(T0), "success")]
    assert outcomes("then") == [(at(T0), "queued")]
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:02"))
    assert outcomes("then") == [(at(T0), "success")]
