"""Operators' controls every runner obeys (hold, run now, enable/disable, schedule
override), log retention, the attempt signals, and the cost of an idle tick."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from crontabber import signals
from crontabber.models import Control, Job, Log
from tests.helpers import at, job, outcomes, tick
from tests.jobs import control

pytestmark = pytest.mark.django_db


def test_hold_all_stops_every_job_but_still_records_the_tick(jobs, capsys):
    jobs([{"name": "j", "cmd": "record", "frequency": "5m"}])
    Control.objects.create(pk=1, hold_all=True, held_by="alice", held_since=at("2026-05-01 09:00"))
    report = tick(at("2026-05-01 10:00"))
    assert control.CALLS == [] and "held by alice" in report.held_all
    assert Control.load().last_tick == at("2026-05-01 10:00")
    Control.objects.filter(pk=1).update(hold_all=False)
    tick(at("2026-05-01 10:01"))
    assert len(control.CALLS) == 1


def test_run_now_runs_on_the_next_tick_once_and_leaves_the_schedule(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1d", "time": "03:00"}])
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="j").update(run_requested=at("2026-05-01 10:05"))
    tick(at("2026-05-01 10:10"))
    tick(at("2026-05-01 10:20"))
    assert len(control.CALLS) == 1
    state = job("j")
    assert state.run_requested is None and state.next_run == at("2026-05-02 03:00")


def test_enabled_override_disables_and_enables_regardless_of_the_registry(jobs):
    jobs(
        [
            {"name": "on", "cmd": "record", "cmd_args": ["--label", "on"], "frequency": "5m"},
            {
                "name": "off",
                "cmd": "record",
                "cmd_args": ["--label", "off"],
                "frequency": "5m",
                "enabled": False,
            },
        ]
    )
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="on").update(enabled_override=False)
    Job.objects.filter(name="off").update(enabled_override=True)
    control.CALLS.clear()
    tick(at("2026-05-01 10:05"))  # "off" was paused since 10:00: enabled, it waits for its next slot
    assert control.CALLS == []
    tick(at("2026-05-01 10:10"))
    assert [call["label"] for call in control.CALLS] == ["off"]


def test_schedule_override_with_times_replaces_the_registry_schedule_while_set(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1d", "time": "03:00", "timezone": "Europe/Berlin"}])
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="j").update(schedule_override="13:00,18:30")
    tick(at("2026-05-01 10:01"))
    assert job("j").next_run == at("2026-05-01 11:00")  # 13:00 in Berlin (CEST)
    tick(at("2026-05-01 11:00"))
    tick(at("2026-05-01 16:30"))
    assert [slot for slot, _ in outcomes("j")] == [at("2026-05-01 11:00"), at("2026-05-01 16:30")]
    Job.objects.filter(name="j").update(schedule_override="")
    tick(at("2026-05-01 16:31"))
    assert job("j").next_run == at("2026-05-02 01:00")


def test_schedule_override_with_an_interval(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1d"}])
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="j").update(schedule_override="30m")
    for minute in (1, 30, 60):
        tick(at("2026-05-01 10:00") + timedelta(minutes=minute))
    assert len(outcomes("j")) == 3


def test_a_broken_schedule_override_is_ignored(jobs, caplog):
    jobs([{"name": "j", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="j").update(schedule_override="25:99")
    tick(at("2026-05-01 11:00"))
    assert len(outcomes("j")) == 2 and "ignoring the schedule override" in caplog.text


def test_last_skipped_is_kept(jobs):
    jobs([{"name": "s", "cmd": "skipper", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    assert job("s").last_skipped == at("2026-05-01 10:00")


def test_old_log_rows_are_deleted_in_bounded_batches(jobs, settings):
    settings.CRONTABBER_LOG_RETENTION_DAYS = 90
    settings.CRONTABBER_LOG_PURGE_BATCH = 10
    jobs([{"name": "j", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    old = at("2026-01-01 00:00")
    Log.objects.bulk_create(
        [Log(job=job("j"), slot=old, started_at=old, duration=0, outcome="success") for _ in range(150)]
    )
    tick(at("2026-05-01 10:30"))
    assert Log.objects.filter(started_at=old).count() == 150, "at most one purge an hour"
    tick(at("2026-05-01 11:00:30"))
    assert Log.objects.filter(started_at=old).count() == 50, "ten batches of ten in one tick"
    tick(at("2026-05-01 11:01"))
    assert not Log.objects.filter(started_at=old).exists()
    assert Log.objects.count() == 2
    assert Control.load().last_purge == at("2026-05-01 11:01")


def test_attempt_signals_carry_the_previous_error_count(jobs, receivers):
    seen = []

    def on_finished(sender, spec, job, log, attempt, previous_error_count, **kwargs):
        seen.append((spec.name, log.outcome, previous_error_count, job.error_count))

    receivers.connect(signals.attempt_finished, on_finished)
    jobs([{"name": "j", "cmd": "record", "frequency": "1m"}])
    control.FAILING.add("*")
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 10:01"))
    control.FAILING.clear()
    tick(at("2026-05-01 10:05"))
    assert seen == [("j", "failure", 0, 1), ("j", "failure", 1, 2), ("j", "success", 2, 0)]


def test_a_receiver_that_raises_does_not_stop_the_runner(jobs, caplog, receivers):
    def broken(**kwargs):
        raise RuntimeError("mail server down")

    receivers.connect(signals.attempt_finished, broken)
    jobs([{"name": "j", "cmd": "record", "frequency": "1m"}])
    tick(at("2026-05-01 10:00"))
    assert outcomes("j") == [(at("2026-05-01 10:00"), "success")] and "mail server down" in caplog.text


@pytest.mark.parametrize("count", [10, 100, 400])
def test_a_tick_with_nothing_due_costs_the_same_queries_whatever_the_number_of_jobs(jobs, count):
    jobs([{"name": f"j{n}", "cmd": "noop", "frequency": "1h"} for n in range(count)])
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 10:01"))  # the hourly log purge is done
    with freeze_time(at("2026-05-01 10:02")), CaptureQueriesContext(connection) as queries:
        call_command("cronrun")
    assert len(queries) == 3, [q["sql"] for q in queries]  # the control row, the tick mark, the jobs


def test_dry_run_of_a_job_a_year_behind_lists_a_few_slots_and_where_they_end(jobs, capsys):
    jobs([{"name": "far", "cmd": "record", "cron": "*/5 * * * *", "backfill": True}])
    tick(at("2025-05-01 00:00"))
    with freeze_time(at("2026-05-01 00:02")):
        call_command("cronrun", "--dry-run")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "would run far for 2025-05-01T00:05:00+00:00"
    assert out[-1] == "... and more slots of far through 2026-05-01T00:00:00+00:00"
    assert len(out) == 21


def test_run_now_requested_while_the_job_runs_is_kept_for_the_next_tick(jobs, receivers):
    jobs([{"name": "j", "cmd": "record", "frequency": "1d", "time": "03:00"}])
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="j").update(run_requested=at("2026-05-01 10:05"))

    def request_again(**kwargs):  # an operator presses "run now" during the run
        Job.objects.filter(name="j").update(run_requested=at("2026-05-01 10:10:30"))

    receivers.connect(signals.attempt_started, request_again)
    tick(at("2026-05-01 10:10"))
    receivers.disconnect(signals.attempt_started, request_again)  # pressed during that run only
    assert job("j").run_requested == at("2026-05-01 10:10:30")
    tick(at("2026-05-01 10:11"))
    assert len(control.CALLS) == 2 and job("j").run_requested is None


@pytest.mark.parametrize("count", [100, 400])
def test_an_all_due_tick_of_quick_jobs_writes_in_batches_not_row_by_row(jobs, count):
    jobs([{"name": f"j{n}", "cmd": "noop", "frequency": "1h"} for n in range(count)])
    tick(at("2026-05-01 10:00"))
    with freeze_time(at("2026-05-01 11:00")), CaptureQueriesContext(connection) as queries:
        call_command("cronrun")
    assert Log.objects.filter(outcome="success").count() == 2 * count
    # Claims, the running rows, outcomes and job states: six statements per batch of up to
    # 200 jobs (batches are sized by time: smaller on a slow machine), where writing row by
    # row would take at least three per job.
    assert len(queries) < count / 2, [q["sql"][:80] for q in queries]
