"""The engine: due slots, coalescing, backfill, failures, back-off, claims, output."""

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from crontabber import signals
from crontabber.engine.runner import Runner
from crontabber.models import Job, Log, retry_delay
from tests.helpers import at, job, outcomes, tick
from tests.jobs import control

pytestmark = pytest.mark.django_db


def run_times():
    return [call["run_time"] for call in control.CALLS]


def test_new_job_runs_on_its_first_tick_then_every_period(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00:20"))
    tick(at("2026-05-01 10:30:00"))
    tick(at("2026-05-01 11:00:05"))
    assert [slot for slot, _ in outcomes("j")] == [at("2026-05-01 10:00"), at("2026-05-01 11:00")]
    assert job("j").next_run == at("2026-05-01 12:00")


def test_five_minute_job_ticked_every_five_minutes_with_latency_runs_every_five_minutes(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "5m"}])
    start = at("2026-05-01 10:00")
    for k in range(24):  # each tick starts 5 minutes after the last, plus up to a second of latency
        tick(start + timedelta(minutes=5 * k, seconds=(k % 2) + 0.4 * k))
    slots = [slot for slot, _ in outcomes("j")]
    assert len(slots) == 24
    assert all(b - a == timedelta(minutes=5) for a, b in zip(slots, slots[1:]))


def test_non_backfill_job_coalesces_missed_slots_into_one_run_for_the_latest(jobs):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *"}])
    tick(at("2026-05-01 09:59"))
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 15:20"))  # five hours down
    assert [slot for slot, _ in outcomes("j")] == [at("2026-05-01 10:00"), at("2026-05-01 15:00")]
    assert run_times() == [None, None]  # not a backfill job: no --run-time


def test_backfill_job_down_for_three_days_runs_the_72_missed_hours_in_order(jobs):
    jobs([{"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 00:00"))
    tick(at("2026-05-04 00:00:30"))
    expected = [at("2026-05-01 00:00") + timedelta(hours=h) for h in range(73)]
    assert run_times() == expected
    assert [slot for slot, outcome in outcomes("hourly")] == expected
    assert job("hourly").last_success == at("2026-05-04 00:00")


def test_a_failure_mid_backfill_stops_at_the_failed_slot_and_the_next_tick_resumes_there(jobs):
    jobs([{"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 00:00"))
    control.FAILING.add(at("2026-05-01 04:00").isoformat())
    tick(at("2026-05-01 08:00"))
    assert run_times()[1:] == [at(f"2026-05-01 0{h}:00") for h in (1, 2, 3, 4)]
    state = job("hourly")
    assert state.last_success == at("2026-05-01 03:00"), "a failed slot never becomes last_success"
    assert state.next_slot == at("2026-05-01 04:00")
    assert state.error_count == 1 and "failing on purpose" in state.last_error
    control.CALLS.clear()
    tick(at("2026-05-01 08:00:30"))  # still backing off: nothing runs
    assert control.CALLS == []
    control.FAILING.clear()
    tick(state.next_run)
    assert run_times() == [at(f"2026-05-01 0{h}:00") for h in (4, 5, 6, 7, 8)]
    assert job("hourly").error_count == 0
    assert [log.attempt for log in Log.objects.filter(slot=at("2026-05-01 04:00")).order_by("id")] == [1, 2]


def test_failed_runs_back_off_longer_each_time_up_to_a_cap(jobs, settings):
    settings.CRONTABBER_RETRY_DELAY_SECONDS = 60
    settings.CRONTABBER_RETRY_MAX_DELAY_SECONDS = 600
    jobs([{"name": "j", "cmd": "record", "frequency": "1m"}])
    control.FAILING.add("*")
    now = at("2026-05-01 10:00")
    delays = []
    for _ in range(6):
        tick(now)
        next_run = job("j").next_run
        delays.append((next_run - now).total_seconds())
        now = next_run
    assert delays == [60, 120, 240, 480, 600, 600]
    assert job("j").error_count == 6
    assert job("j").last_success is None
    assert retry_delay(1) == timedelta(seconds=60)


def test_max_backfill_bounds_one_tick_and_the_rest_run_on_the_next(jobs):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *", "backfill": True, "max_backfill": 5}])
    tick(at("2026-05-01 00:00"))
    tick(at("2026-05-01 12:00"))
    assert len(control.CALLS) == 1 + 5
    assert job("j").next_run == at("2026-05-01 06:00")
    tick(at("2026-05-01 12:01"))
    tick(at("2026-05-01 12:02"))
    assert run_times()[-1] == at("2026-05-01 12:00")
    assert len(control.CALLS) == 1 + 12


def test_last_success_jobs_get_the_slot_of_their_last_success(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1h", "last_success": True}])
    tick(at("2026-05-01 10:00"))
    control.FAILING.add("*")
    tick(at("2026-05-01 11:00"))
    control.FAILING.clear()
    tick(at("2026-05-01 11:05"))
    assert [call["last_success"] for call in control.CALLS] == [
        None,  # the first run has no last success: the option is left out
        at("2026-05-01 10:00"),
        at("2026-05-01 10:00"),  # the failure did not count
    ]
    assert job("j").last_success == at("2026-05-01 11:00")


def test_run_time_and_last_success_are_iso_8601_with_offset(jobs, caplog):
    jobs(
        [
            {
                "name": "j",
                "cmd": "record",
                "cron": "30 2 * * *",
                "timezone": "Europe/Berlin",
                "backfill": True,
                "last_success": True,
            }
        ]
    )
    caplog.set_level(logging.INFO, logger="crontabber")
    tick(at("2026-03-27 00:00"))
    tick(at("2026-03-30 12:00"))
    assert "--run-time=2026-03-29T01:00:00+00:00 --last-success=2026-03-28T01:30:00+00:00" in caplog.text


def test_output_goes_to_the_logger_line_by_line_and_its_tail_is_kept(jobs, caplog, settings):
    settings.CRONTABBER_OUTPUT_TAIL_CHARS = 60
    jobs([{"name": "talk", "cmd": "chatty", "cmd_args": ["--lines", "20"], "frequency": "1h"}])
    caplog.set_level(logging.INFO, logger="crontabber")
    tick(at("2026-05-01 10:00"))
    lines = [r.getMessage() for r in caplog.records if getattr(r, "crontabber_job", None) == "talk"]
    assert lines[:2] == ["talk: line 0", "talk: line 1"]
    assert {"talk: from print", "talk: from stderr", "talk: no newline at the end"} <= set(lines)
    output = Log.objects.get().output
    assert output.endswith("no newline at the end") and len(output) <= 60
    assert "line 0\n" not in output


def test_a_job_that_raises_does_not_stop_the_others(jobs):
    jobs(
        [
            {"name": "bad", "cmd": "boom", "frequency": "1h"},
            {"name": "good", "cmd": "record", "frequency": "1h"},
        ]
    )
    tick(at("2026-05-01 10:00"))
    failed = Log.objects.get(job__name="bad")
    assert failed.outcome == "failure"
    assert failed.error_type == "RuntimeError" and failed.error_value == "boom"
    assert "Traceback" in failed.traceback and "about to fail" in failed.output
    assert outcomes("good") == [(at("2026-05-01 10:00"), "success")]
    assert job("bad").error_count == 1 and job("bad").last_error == "RuntimeError: boom"


def test_a_job_stuck_ongoing_for_a_day_and_ten_minutes_is_taken_over(jobs, caplog):
    jobs([{"name": "j", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    stuck_since = at("2026-05-01 11:00")
    Job.objects.filter(name="j").update(
        claimed_by="deadhost:4242:cafe",
        claimed_at=stuck_since,
        claim_expires=stuck_since + timedelta(minutes=5),
    )
    Log.objects.create(
        job=job("j"),
        slot=stuck_since,
        started_at=stuck_since,
        duration=0,
        outcome="running",
        host="deadhost",
        pid=4242,
    )
    tick(stuck_since + timedelta(days=1, minutes=10))
    assert len(control.CALLS) == 1, "its runner died under it, maybe of it: the slot runs after the back-off"
    assert "took over the claim of deadhost:4242:cafe" in caplog.text
    assert job("j").claimed_by == "" and (job("j").error_count, job("j").crash_count) == (1, 1)
    abandoned = Log.objects.get(host="deadhost")
    assert (
        abandoned.outcome == "interrupted" and "deadhost:4242:cafe stopped without finishing" in abandoned.error_value
    )
    tick(stuck_since + timedelta(days=1, minutes=12))
    assert len(control.CALLS) == 2
    assert outcomes("j")[-1] == (at("2026-05-02 11:00"), "success")
    assert (job("j").error_count, job("j").crash_count) == (0, 0)


def test_a_live_claim_is_respected(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    Job.objects.filter(name="j").update(
        claimed_by="otherhost:1:beef", claimed_at=at("2026-05-01 11:00"), claim_expires=at("2026-05-01 11:05")
    )
    tick(at("2026-05-01 11:01"))
    assert len(control.CALLS) == 1
    assert job("j").claimed_by == "otherhost:1:beef"


def test_a_runner_behind_another_skips_the_jobs_it_holds_in_one_read(jobs):
    jobs([{"name": f"j{n:02}", "cmd": "record", "frequency": "1h"} for n in range(40)])
    tick(at("2026-05-01 10:00"))
    taken = [f"j{n:02}" for n in range(38)]
    Job.objects.filter(name__in=taken).update(
        claimed_by="otherhost:1:beef", claimed_at=at("2026-05-01 11:00"), claim_expires=at("2026-05-01 11:05")
    )
    with CaptureQueriesContext(connection) as behind:
        tick(at("2026-05-01 11:01"))
    assert [o for o in outcomes("j39") if o[1] == "success"][-1][0] == at("2026-05-01 11:00")
    assert len(outcomes("j00")) == 1 and len(outcomes("j38")) == 2
    # The same tick an hour later with the other runner gone and its jobs not due: j38 and j39 alone.
    Job.objects.filter(name__in=taken).update(
        claimed_by="", claimed_at=None, claim_expires=None, next_run=at("2026-05-02 00:00")
    )
    with CaptureQueriesContext(connection) as alone:
        tick(at("2026-05-01 12:01"))
    assert outcomes("j39")[-1] == (at("2026-05-01 12:00"), "success")
    # Behind the other runner, its 38 jobs cost two statements: the first claim, which loses,
    # and one read that skips the other 37 (losing the race for each would cost one a job).
    assert len(behind) - len(alone) <= 2, [q["sql"][:80] for q in behind]


def test_skip_run_is_recorded_as_skipped_and_counts_as_handled(jobs):
    jobs([{"name": "s", "cmd": "skipper", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    log = Log.objects.get()
    assert (log.outcome, log.error_value) == ("skipped", "no new rows")
    state = job("s")
    assert state.error_count == 0 and state.next_run == at("2026-05-01 11:00") and state.last_success is None


def test_disabled_jobs_never_run(jobs):
    jobs([{"name": "off", "cmd": "record", "frequency": "1m", "enabled": False}])
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 11:00"))
    assert control.CALLS == []


def test_a_schedule_change_in_the_registry_realigns_the_next_slot(jobs):
    jobs([{"name": "j", "cmd": "record", "frequency": "1d", "time": "03:00"}])
    tick(at("2026-05-01 10:00"))
    assert job("j").next_run == at("2026-05-02 03:00")
    jobs([{"name": "j", "cmd": "record", "frequency": "1d", "time": "12:00"}])
    tick(at("2026-05-01 11:00"))
    assert job("j").next_run == at("2026-05-01 12:00"), (
        "the new schedule counts from the change: 12:00 today is after it"
    )
    assert job("j").schedule == "every 1d at 12:00 UTC"


def test_depends_on_holds_a_slot_until_the_dependency_has_succeeded_for_it(jobs):
    jobs(
        [
            {
                "name": "report",
                "cmd": "record",
                "cmd_args": ["--label", "report"],
                "cron": "0 * * * *",
                "depends_on": ["load"],
            },
            {"name": "load", "cmd": "record", "cmd_args": ["--label", "load"], "cron": "0 * * * *"},
        ]
    )
    tick(at("2026-05-01 09:59"))
    tick(at("2026-05-01 10:00"))
    assert [call["label"] for call in control.CALLS] == ["load", "report"], "dependencies run first"
    control.CALLS.clear()
    control.FAILING.add("*")
    tick(at("2026-05-01 11:00"))
    assert [call["label"] for call in control.CALLS] == ["load"], "report waits for load's 11:00"
    assert job("report").error_count == 0


def test_cronrun_job_runs_only_that_job_and_fails_if_it_fails(jobs):
    jobs([{"name": "a", "cmd": "record", "frequency": "1h"}, {"name": "b", "cmd": "boom", "frequency": "1h"}])
    from freezegun import freeze_time

    with freeze_time(at("2026-05-01 10:00")):
        call_command("cronrun", "--job", "a")
        assert len(control.CALLS) == 1 and not Log.objects.filter(job__name="b").exists()
        with pytest.raises(CommandError, match="b failure"):
            call_command("cronrun", "--job", "b")


def test_cronrun_force_runs_a_job_that_is_not_due_and_job_arg_passes_options(jobs):
    jobs([{"name": "a", "cmd": "record", "frequency": "1d", "time": "03:00"}])
    from freezegun import freeze_time

    with freeze_time(at("2026-05-01 10:00")):
        call_command("cronrun")
        assert control.CALLS == []  # first slot is tomorrow 03:00
        call_command("cronrun", "--job", "a", "--force", "--job-arg", "colour=blue")
    assert control.CALLS[0]["colour"] == "blue"
    state = job("a")
    assert state.next_run == at("2026-05-02 03:00"), "a forced extra run leaves the schedule alone"
    assert state.last_success == at("2026-05-01 03:00"), "it ran the latest slot of its schedule"


def test_cronrun_dry_run_prints_the_plan_and_changes_nothing(jobs, capsys):
    jobs(
        [
            {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True},
            {"name": "daily", "cmd": "record", "frequency": "1d"},
        ]
    )
    tick(at("2026-05-01 00:00"))
    before = list(Job.objects.values())
    logs = Log.objects.count()
    from freezegun import freeze_time

    with freeze_time(at("2026-05-01 03:10")):
        call_command("cronrun", "--dry-run")
    out = capsys.readouterr().out
    assert "would run hourly for 2026-05-01T01:00:00+00:00" in out
    assert "would run hourly for 2026-05-01T03:00:00+00:00" in out
    assert "daily" not in out
    assert list(Job.objects.values()) == before and Log.objects.count() == logs
    assert len(control.CALLS) == 2


def test_cronrun_dry_run_on_an_empty_database_creates_no_rows(jobs, capsys):
    jobs([{"name": "j", "cmd": "record", "frequency": "5m"}])
    from freezegun import freeze_time

    with freeze_time(at("2026-05-01 00:00")):
        call_command("cronrun", "--dry-run")
    assert "would run j for 2026-05-01T00:00:00+00:00" in capsys.readouterr().out
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--job", "nope"], "unknown job 'nope'"),
        (["--force"], "need --job"),
        (["--job", "a", "--job-arg", "novalue"], "not NAME=VALUE"),
    ],
)
def test_cronrun_rejects_bad_arguments_without_changing_anything(jobs, args, message):
    jobs([{"name": "a", "cmd": "record", "frequency": "5m"}])
    with pytest.raises(CommandError, match=message):
        call_command("cronrun", *args)
    assert not Job.objects.exists()


def test_a_schedule_change_keeps_a_backfill_jobs_backlog_of_the_old_schedule(jobs):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 00:00"))
    jobs([{"name": "j", "cmd": "record", "cron": "*/30 * * * *", "backfill": True}])
    tick(at("2026-05-01 02:10"))
    tick(at("2026-05-01 02:30"))
    assert run_times() == [
        at("2026-05-01 00:00"),
        at("2026-05-01 01:00"),  # owed by the hourly schedule before the change at 02:10
        at("2026-05-01 02:00"),
        at("2026-05-01 02:30"),  # the new schedule's, from the change on
    ]


def test_attempts_of_a_batch_that_never_start_leave_no_log_row(jobs, receivers):
    jobs([{"name": f"j{n}", "cmd": "record", "frequency": "1h"} for n in range(6)])
    tick(at("2026-05-01 10:00"))
    runner, opened = Runner(), []
    runner.claim_size = 6  # one batch of all six, however slow the machine makes the pace

    def stop_at_j3(sender, spec, **kwargs):
        if spec.name == "j3":
            opened.extend(Log.objects.filter(outcome="running").values_list("job__name", flat=True))
            runner.request_stop("test stop", 60)  # j3 finishes; j4 and j5 never start

    receivers.connect(signals.attempt_started, stop_at_j3)
    with freeze_time(at("2026-05-01 11:00")):
        runner.tick()
    receivers.disconnect(signals.attempt_started, stop_at_j3)
    second = [(log.job.name, log.outcome) for log in Log.objects.filter(slot=at("2026-05-01 11:00")).order_by("id")]
    assert {"j3", "j4", "j5"} <= set(opened)  # written with their batch, before any started
    assert [name for name, _ in second] == ["j0", "j1", "j2", "j3"] and {o for _, o in second} == {"success"}
    assert not Job.objects.exclude(claimed_by="").exists()
    tick(at("2026-05-01 11:01"))
    assert outcomes("j5") == [(at("2026-05-01 10:00"), "success"), (at("2026-05-01 11:00"), "success")]


def test_jobs_sharing_a_command_each_get_their_own_arguments_and_the_defaults(jobs):
    jobs(
        [
            {"name": "red", "cmd": "record", "cmd_args": ["--label", "a", "--colour", "red"], "frequency": "1h"},
            {"name": "plain", "cmd": "record", "frequency": "1h"},
            {"name": "blue", "cmd": "record", "cmd_args": ["--colour=blue"], "frequency": "1h"},
        ]
    )
    tick(at("2026-05-01 10:00"))
    assert [(call["label"], call["colour"]) for call in control.CALLS] == [("a", "red"), ("", ""), ("", "blue")]


def test_a_runner_that_lost_its_claim_leaves_the_job_to_the_new_holder(jobs, caplog, receivers):
    jobs([{"name": "a", "cmd": "record", "frequency": "1h"}, {"name": "b", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))

    def steal(sender, spec, **kwargs):  # another runner takes a's claim while a runs
        if spec.name == "a":
            Job.objects.filter(name="a").update(claimed_by="thief:1:cafe", claim_expires=at("2026-05-01 12:00"))

    receivers.connect(signals.attempt_started, steal)
    tick(at("2026-05-01 11:00"))
    a, b = job("a"), job("b")
    assert a.claimed_by == "thief:1:cafe" and a.last_success == at("2026-05-01 10:00")  # left alone
    assert b.claimed_by == "" and b.last_success == at("2026-05-01 11:00")
    assert "a: lost the claim to another runner" in caplog.text


def test_without_ids_from_a_bulk_insert_each_attempt_writes_its_own_row(jobs, monkeypatch):
    # MySQL returns no ids from a bulk INSERT: the batch opens no rows, each attempt writes its own.
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    jobs([{"name": f"j{n}", "cmd": "record", "frequency": "1h", "backfill": n == 0} for n in range(3)])
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 12:00"))
    assert outcomes("j0") == [(at(f"2026-05-01 {h}:00"), "success") for h in (10, 11, 12)]
    assert outcomes("j2") == [(at("2026-05-01 10:00"), "success"), (at("2026-05-01 12:00"), "success")]
    assert not Log.objects.filter(outcome="running").exists()


def test_a_tick_that_meets_a_deadlock_is_taken_again_and_other_errors_are_not(jobs, monkeypatch):
    from django.db import OperationalError

    from crontabber.models import Control

    jobs([{"name": "hourly", "cmd": "record", "frequency": "1h"}])
    load, raised = Control.load, []

    def deadlocked_once(error):
        def first_load():
            if not raised:
                raised.append(error)
                raise error
            return load()

        return first_load

    monkeypatch.setattr(
        Control, "load", deadlocked_once(OperationalError(1213, "Deadlock found when trying to get lock"))
    )
    with freeze_time("2026-05-01 10:00"):
        Runner().tick()
    assert raised and Log.objects.filter(job__name="hourly", outcome="success").count() == 1

    raised.clear()
    monkeypatch.setattr(Control, "load", deadlocked_once(OperationalError(2006, "MySQL server has gone away")))
    with freeze_time("2026-05-01 11:00"), pytest.raises(OperationalError):
        Runner().tick()
