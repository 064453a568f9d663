"""A starting deadline (the registry's ``starting_deadline``): a slot that cannot start
within that long after it fell due is recorded ``missed`` (one row for a span of them,
saying how many) and not run; the schedule moves on. Real elapsed time counts, through
clock changes."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from freezegun import freeze_time

from crontabber import signals
from crontabber.admin.display import describe
from crontabber.admin.strip import cells, recent_slots
from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from crontabber.outcomes import Outcome
from crontabber.registry import JobSpec, load_jobs
from crontabber.schedules import build_schedule
from crontabber.web import health, metrics
from tests.helpers import at, job, outcomes, tick
from tests.jobs import control
from tests.test_admin_slots import Row

pytestmark = pytest.mark.django_db

HOURLY = {"name": "hourly", "cmd": "record", "cron": "0 * * * *"}
DEADLINE_30M = {"starting_deadline": 1800}
BERLIN = {"cmd": "record", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "starting_deadline": 3600}


def hours(first, last):
    return [first + timedelta(hours=n) for n in range(int((last - first) / timedelta(hours=1)) + 1)]


def missed_rows(name):
    return [
        (log.since, log.slot, log.covers)
        for log in Log.objects.filter(job__name=name, outcome=Outcome.MISSED).order_by("id")
    ]


def ran(name):
    return [slot for slot, outcome in outcomes(name) if outcome == Outcome.SUCCESS]


def test_a_backfill_job_misses_the_slots_older_than_its_deadline_and_runs_the_rest(jobs):
    jobs([{**HOURLY, "backfill": True, "starting_deadline": 3 * 3600}])
    tick(at("2026-05-01 00:00"))
    report = tick(at("2026-05-01 10:00"))
    assert missed_rows("hourly") == [(at("2026-05-01 01:00"), at("2026-05-01 06:00"), 6)]
    # 07:00 is exactly three hours late: within the deadline, it runs.
    assert ran("hourly") == hours(at("2026-05-01 00:00"), at("2026-05-01 00:00")) + hours(
        at("2026-05-01 07:00"), at("2026-05-01 10:00")
    )
    assert job("hourly").next_slot == at("2026-05-01 11:00") and job("hourly").error_count == 0
    assert report.missed["hourly"].covers == 6 and not report.errors
    assert "6 slots missed" in report.summary(at("2026-05-01 10:00"))


def test_without_backfill_the_one_run_for_the_latest_slot_runs_within_the_deadline_else_is_missed(jobs):
    jobs([{**HOURLY, "starting_deadline": 600}])
    tick(at("2026-05-01 09:00"))
    tick(at("2026-05-01 10:05"))  # five minutes late: runs
    tick(at("2026-05-01 12:30"))  # 11:00 and 12:00 due, the latest half an hour late: missed
    assert ran("hourly") == [at("2026-05-01 09:00"), at("2026-05-01 10:00")]
    assert missed_rows("hourly") == [(at("2026-05-01 11:00"), at("2026-05-01 12:00"), 2)]
    assert job("hourly").next_run == at("2026-05-01 13:00")
    tick(at("2026-05-01 13:00"))  # the schedule moved on: its next slot runs on time
    assert ran("hourly")[-1] == at("2026-05-01 13:00")


def test_a_week_down_of_an_every_minute_job_is_one_row_not_ten_thousand(jobs):
    jobs([{"name": "minutely", "cmd": "record", "cron": "* * * * *", "backfill": True, "starting_deadline": 120}])
    tick(at("2026-05-01 00:00"))
    tick(at("2026-05-08 00:00"))
    assert missed_rows("minutely") == [(at("2026-05-01 00:01"), at("2026-05-07 23:57"), 7 * 1440 - 3)]
    assert ran("minutely") == [
        at("2026-05-01 00:00"),
        *[at("2026-05-07 23:58") + timedelta(minutes=n) for n in range(3)],
    ]
    assert Log.objects.count() == 5


def test_a_forced_run_and_a_run_now_have_no_deadline(jobs):
    jobs([{**HOURLY, "backfill": True, "starting_deadline": 60}])
    tick(at("2026-05-01 00:00"))
    Job.objects.filter(name="hourly").update(run_requested=at("2026-05-01 02:59"))
    tick(at("2026-05-01 03:00"))
    assert ran("hourly") == hours(at("2026-05-01 00:00"), at("2026-05-01 03:00")) and not missed_rows("hourly")


def test_the_dry_run_says_which_slots_would_be_missed(jobs, capsys):
    jobs([{**HOURLY, "backfill": True, "starting_deadline": 3 * 3600}])
    tick(at("2026-05-01 00:00"))
    tick(at("2026-05-01 10:00"), dry_run=True)
    assert not missed_rows("hourly")


def test_the_deadline_is_checked_by_the_system_check(jobs):
    jobs([{**HOURLY, "starting_deadline": 0}])
    with pytest.raises(Exception, match="starting_deadline.*positive"):
        load_jobs()
    jobs([{**HOURLY, "starting_deadline": "10m"}])
    with pytest.raises(Exception, match="starting_deadline"):
        call_command("check")


# --- clock changes: the deadline counts real elapsed time --------------------------------


def test_berlin_autumn_a_deadline_counts_real_time_across_the_repeated_hour(jobs):
    # 02:30 on 2026-10-25 happens twice in Berlin; the job runs at the first (00:30 UTC).
    jobs([{**BERLIN, "name": "night"}])
    tick(at("2026-10-24 01:00"))
    tick(at("2026-10-25 01:20"))  # 02:20 CET on the wall, ten minutes "before" 02:30, but 50 minutes late: runs
    assert ran("night")[-1] == at("2026-10-25 00:30")
    jobs([{**BERLIN, "name": "other"}])
    tick(at("2026-10-24 01:00"))
    tick(at("2026-10-25 01:40"))  # 02:40 CET on the wall, ten minutes after 02:30, but 70 minutes late: missed
    assert missed_rows("other") == [(at("2026-10-25 00:30"), at("2026-10-25 00:30"), 1)]


def test_new_york_spring_a_backfill_job_misses_by_real_hours_across_the_gap(jobs):
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); an hourly job keeps real spacing.
    jobs([{**HOURLY, "backfill": True, "timezone": "America/New_York", "starting_deadline": 2 * 3600}])
    tick(at("2026-03-08 04:00"))
    tick(at("2026-03-08 10:00"))
    assert missed_rows("hourly") == [(at("2026-03-08 05:00"), at("2026-03-08 07:00"), 3)]
    assert ran("hourly")[1:] == hours(at("2026-03-08 08:00"), at("2026-03-08 10:00"))


def test_lord_howe_spring_a_daily_job_in_the_half_hour_gap_runs_within_its_deadline(jobs):
    # 2026-10-04 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11): 02:00 does not happen; the job
    # runs at the first instant after it, 2026-10-03 15:30 UTC.
    entry = {"cmd": "record", "frequency": "1d", "time": "02:00", "timezone": "Australia/Lord_Howe"}
    jobs([{**entry, "name": "early", "starting_deadline": 1200}, {**entry, "name": "late", "starting_deadline": 1200}])
    tick(at("2026-10-02 16:00"))
    Job.objects.update(next_slot=at("2026-10-03 15:30"), next_run=at("2026-10-03 15:30"))
    jobs([{**entry, "name": "early", "starting_deadline": 1200}])
    tick(at("2026-10-03 15:45"))  # 15 minutes after the slot: runs
    jobs([{**entry, "name": "late", "starting_deadline": 1200}])
    tick(at("2026-10-03 15:55"))  # 25 minutes after: missed
    assert ran("early")[-1] == at("2026-10-03 15:30")
    assert missed_rows("late") == [(at("2026-10-03 15:30"), at("2026-10-03 15:30"), 1)]
    assert job("late").next_slot == at("2026-10-04 15:00")  # 02:00 LHDT (+11) the next day


def test_chatham_autumn_a_deadline_in_the_repeated_hour_counts_real_time(jobs):
    # 2026-04-05 03:45 CHADT (+13:45) goes back to 02:45 CHAST (+12:45); 03:00 happens twice,
    # the job runs at the first (2026-04-04 13:15 UTC).
    jobs([{"name": "chatham", "cmd": "record", "cron": "0 3 * * *", "timezone": "Pacific/Chatham"} | DEADLINE_30M])
    tick(at("2026-04-03 14:00"))
    tick(at("2026-04-04 14:00"))  # 03:15 CHAST on the wall, 15 minutes after 03:00, but 45 minutes late
    assert missed_rows("chatham") == [(at("2026-04-04 13:15"), at("2026-04-04 13:15"), 1)]


# --- what users see of missed slots -------------------------------------------------------


@pytest.fixture
def missed_hourly(jobs):
    jobs([{**HOURLY, "backfill": True, "starting_deadline": 3 * 3600}])
    tick(at("2026-05-01 00:00"))
    control.FAILING.add("*")  # the slots within the deadline fail: the job has not succeeded since
    tick(at("2026-05-01 10:00"))
    control.FAILING.clear()


def test_cronlist_shows_the_missed_slots_in_its_table_and_json(missed_hourly):
    out = StringIO()
    call_command("cronlist", "--format=json", stdout=out)
    (entry,) = json.loads(out.getvalue())
    assert entry["last_missed"] == "2026-05-01T06:00:00+00:00"
    with freeze_time(at("2026-05-01 10:01")):
        call_command("cronlist", stdout=(out := StringIO()))
    assert (
        "hourly: missed its slots up to 2026-05-01 06:00Z: not started within its starting_deadline" in out.getvalue()
    )


def test_health_warns_of_missed_slots_until_the_job_succeeds_again(missed_hourly):
    Job.objects.filter(name="hourly").update(error_count=0, last_error="")
    Control.objects.filter(pk=1).update(last_tick=at("2026-05-01 10:00"))
    found = health.report(now=at("2026-05-01 10:01"))
    assert found.code == health.WARNING and found.jobs[0].status == "missed"
    assert "hourly missed its slots up to 2026-05-01T06:00:00+00:00" in found.problems[0]
    tick(at("2026-05-01 11:00"))  # 07:00 (now four hours late) is missed too; 08:00 to 11:00 succeed
    assert health.report(now=at("2026-05-01 11:01")).code == health.OK


def test_metrics_count_the_missed_slots_not_the_rows(missed_hourly):
    text = metrics.exposition(now=at("2026-05-01 10:01")).decode()
    assert 'crontabber_job_slots_not_run_total{job="hourly",outcome="missed"} 6.0' in text
    assert 'crontabber_job_attempts_total{job="hourly",outcome="missed"}' not in text


def test_the_strip_shows_each_missed_slot_with_its_own_symbol():
    first = at("2026-05-01 06:00")
    hourly = JobSpec(name="j", cmd="noop", schedule=build_schedule("1h"), backfill=True)
    row = Job(first_run=first, next_slot=at("2026-05-01 10:00"))
    span = Row(9, 1, at("2026-05-01 09:00"), at("2026-05-01 10:00"), 0.0, "missed", 1, "", at("2026-05-01 07:00"), 3)
    attempts = [Row(1, 1, first, first, 1.0, "success", 1, "", None, 1), span]
    shown = cells(
        hourly, row, recent_slots(hourly, row, at("2026-05-01 10:30"), 5), attempts, at("2026-05-01 10:30"), 5
    )
    assert [cell.state for cell in shown] == ["success", "missed", "missed", "missed", "backlog"]
    assert all(cell.attempt is span for cell in shown[1:4])
    assert describe(shown[1], "UTC") == (
        "2026-05-01 07:00 UTC: missed: not started within its starting deadline, not run "
        "(3 slots, 2026-05-01 07:00 UTC to 2026-05-01 09:00 UTC)"
    )


def test_a_slot_that_falls_past_its_deadline_during_the_tick_is_left_to_the_next_which_records_it(jobs, receivers):
    jobs([{"name": "minutely", "cmd": "record", "cron": "* * * * *", "backfill": True, "starting_deadline": 120}])
    tick(at("2026-05-01 09:57"))
    with freeze_time(at("2026-05-01 10:00")) as clock:

        def slow(log, **kwargs):  # the 09:58 attempt takes two and a half minutes
            if log.slot == at("2026-05-01 09:58"):
                clock.tick(timedelta(seconds=150))

        receivers.connect(signals.attempt_started, slow)
        Runner().tick()
    assert ran("minutely") == [at("2026-05-01 09:57"), at("2026-05-01 09:58")]  # 09:59 is late by now
    assert not missed_rows("minutely") and job("minutely").next_run == at("2026-05-01 09:59")
    tick(at("2026-05-01 10:02"))
    assert missed_rows("minutely") == [(at("2026-05-01 09:59"), at("2026-05-01 09:59"), 1)]
    assert ran("minutely")[2:] == [at("2026-05-01 10:00"), at("2026-05-01 10:01"), at("2026-05-01 10:02")]
