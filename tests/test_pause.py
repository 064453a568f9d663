"""A pause is not a miss: a job disabled (registry, admin) or held, then enabled again,
has the slots that fell due while it was off recorded as one ``paused`` row; a backfill
job catches them up, another waits for its next slot. cronresume and the admin's enable
action choose otherwise, saying first how many slots they run."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from freezegun import freeze_time

from crontabber.models import Control, Job, Log
from crontabber.outcomes import Outcome
from tests.helpers import at, job, outcomes, tick

pytestmark = pytest.mark.django_db

HOURLY = {"name": "hourly", "cmd": "record", "cron": "0 * * * *"}
BACKFILL = {**HOURLY, "name": "backfill", "backfill": True}


def paused_rows(name):
    return [
        (log.since, log.slot, log.covers)
        for log in Log.objects.filter(job__name=name, outcome=Outcome.PAUSED).order_by("id")
    ]


def ran(name):
    return [slot for slot, outcome in outcomes(name) if outcome == Outcome.SUCCESS]


def hours(first, last):
    return [first + timedelta(hours=n) for n in range(int((last - first) / timedelta(hours=1)) + 1)]


def resume(*args, when):
    out = StringIO()
    with freeze_time(when):
        call_command("cronresume", *args, stdout=out)
    return out.getvalue()


def disabled(entry):
    return {**entry, "enabled": False}


def test_a_job_disabled_in_the_registry_and_enabled_again_waits_for_its_next_slot(jobs):
    jobs([HOURLY])
    tick(at("2026-05-01 09:00"))
    jobs([disabled(HOURLY)])
    tick(at("2026-05-01 09:30"))
    assert job("hourly").paused_since == at("2026-05-01 09:30")
    jobs([HOURLY])
    report = tick(at("2026-05-01 14:30"))
    assert paused_rows("hourly") == [(at("2026-05-01 10:00"), at("2026-05-01 14:00"), 5)]
    assert ran("hourly") == [at("2026-05-01 09:00")]  # never fires at once on resume
    assert job("hourly").next_run == at("2026-05-01 15:00") and job("hourly").paused_since is None
    assert not report.errors and not report.missed
    tick(at("2026-05-01 15:00"))
    assert ran("hourly")[-1] == at("2026-05-01 15:00")


def test_a_backfill_job_enabled_again_catches_up_every_paused_slot(jobs):
    jobs([BACKFILL])
    tick(at("2026-05-01 09:00"))
    jobs([disabled(BACKFILL)])
    tick(at("2026-05-01 09:30"))
    jobs([BACKFILL])
    tick(at("2026-05-01 12:30"))
    assert paused_rows("backfill") == [(at("2026-05-01 10:00"), at("2026-05-01 12:00"), 3)]
    assert ran("backfill") == hours(at("2026-05-01 09:00"), at("2026-05-01 12:00"))  # nothing lost


def test_a_hold_pauses_every_job_and_its_release_resumes_them_as_their_schedules_say(jobs):
    jobs([HOURLY, BACKFILL])
    tick(at("2026-05-01 09:00"))
    Control.hold("ops", at("2026-05-01 09:10"))
    tick(at("2026-05-01 11:00"))  # held: nothing runs
    Control.release()
    tick(at("2026-05-01 11:30"))
    assert paused_rows("hourly") == [(at("2026-05-01 10:00"), at("2026-05-01 11:00"), 2)]
    assert paused_rows("backfill") == [(at("2026-05-01 10:00"), at("2026-05-01 11:00"), 2)]
    assert ran("hourly") == [at("2026-05-01 09:00")]
    assert ran("backfill") == hours(at("2026-05-01 09:00"), at("2026-05-01 11:00"))


def test_a_job_paused_between_two_slots_records_nothing(jobs):
    jobs([HOURLY])
    tick(at("2026-05-01 09:00"))
    jobs([disabled(HOURLY)])
    tick(at("2026-05-01 09:10"))
    jobs([HOURLY])
    tick(at("2026-05-01 09:50"))
    assert not paused_rows("hourly") and job("hourly").paused_since is None


def test_cronresume_says_first_how_many_slots_catching_up_runs_and_asks_for_yes(jobs):
    jobs([BACKFILL])
    tick(at("2026-05-01 09:00"))
    Job.objects.filter(name="backfill").update(enabled_override=False, paused_since=at("2026-05-01 09:10"))
    with pytest.raises(CommandError) as asked:
        resume("backfill", when=at("2026-05-01 12:30"))
    assert str(asked.value) == (
        "backfill: 3 slots fell due while it was paused (2026-05-01T10:00:00+00:00 to 2026-05-01T12:00:00+00:00): "
        "catching up, 3 runs from the next tick; add --yes to resume, or --skip to run none; nothing was changed"
    )
    assert job("backfill").enabled_override is False and not paused_rows("backfill")
    said = resume("backfill", "--yes", when=at("2026-05-01 12:30"))
    assert said.startswith("backfill: enabled; 3 slots fell due while it was paused")
    assert job("backfill").enabled_override is None and job("backfill").next_run == at("2026-05-01 10:00")
    tick(at("2026-05-01 12:31"))
    assert ran("backfill") == hours(at("2026-05-01 09:00"), at("2026-05-01 12:00"))


def test_cronresume_skip_runs_none_without_asking(jobs):
    jobs([BACKFILL])
    tick(at("2026-05-01 09:00"))
    Job.objects.filter(name="backfill").update(enabled_override=False, paused_since=at("2026-05-01 09:10"))
    said = resume("backfill", "--skip", when=at("2026-05-01 12:30"))
    assert said == (
        "backfill: enabled; 3 slots fell due while it was paused (2026-05-01T10:00:00+00:00 to "
        "2026-05-01T12:00:00+00:00): skipped, none runs; next run 2026-05-01T13:00:00+00:00\n"
    )
    assert paused_rows("backfill") == [(at("2026-05-01 10:00"), at("2026-05-01 12:00"), 3)]
    tick(at("2026-05-01 12:31"))
    assert ran("backfill") == [at("2026-05-01 09:00")]


def test_cronresume_catch_up_fires_a_job_without_backfill_once(jobs):
    jobs([HOURLY])
    tick(at("2026-05-01 09:00"))
    Job.objects.filter(name="hourly").update(enabled_override=False, paused_since=at("2026-05-01 09:10"))
    said = resume("hourly", "--catch-up", "--yes", when=at("2026-05-01 12:30"))
    assert "3 slots fell due while it was paused" in said and "catching up, 1 run from the next tick" in said
    tick(at("2026-05-01 12:31"))
    assert ran("hourly") == [at("2026-05-01 09:00"), at("2026-05-01 12:00")]


def test_cronresume_refuses_a_job_the_registry_disables_and_any_while_held(jobs):
    jobs([disabled(HOURLY), BACKFILL])
    tick(at("2026-05-01 09:00"))
    with pytest.raises(CommandError, match=r"hourly is disabled in the registry \(enabled: False\): enable it there"):
        resume("hourly", "--skip", when=at("2026-05-01 10:00"))
    Control.hold("ops", at("2026-05-01 10:00"))
    with pytest.raises(CommandError, match="all jobs are held by ops .*: release the hold first; nothing was changed"):
        resume("backfill", "--skip", when=at("2026-05-01 11:00"))
    with pytest.raises(CommandError, match="not allowed with argument"):
        resume("backfill", "--skip", "--catch-up", when=at("2026-05-01 11:00"))


def test_the_dry_run_resumes_as_the_real_tick_does(jobs, capsys):
    jobs([HOURLY, BACKFILL])
    tick(at("2026-05-01 09:00"))
    Job.objects.update(paused_since=at("2026-05-01 09:10"))
    with freeze_time(at("2026-05-01 11:30")):
        call_command("cronrun", "--dry-run")
    out = capsys.readouterr().out
    assert "hourly: enabled again; 2 slots fell due while it was paused" in out
    assert "would run backfill for 2026-05-01T11:00:00+00:00" in out and "would run hourly" not in out
    assert job("hourly").paused_since is not None and not paused_rows("hourly")


# --- clock changes: a pause counts the slots of the schedule, in the job's zone -------------------


def test_berlin_a_daily_job_paused_across_the_autumn_change_counts_each_day_once(jobs):
    daily = {"name": "daily", "cmd": "record", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    jobs([daily])
    tick(at("2026-10-23 01:00"))  # 02:30 CEST on the 23rd is 00:30 UTC: due, runs
    jobs([disabled(daily)])
    tick(at("2026-10-23 02:00"))
    jobs([daily])
    tick(at("2026-10-27 12:00"))  # the 24th (CEST), the 25th (the repeated hour, once), 26th, 27th (CET)
    assert paused_rows("daily") == [(at("2026-10-24 00:30"), at("2026-10-27 01:30"), 4)]
    assert job("daily").next_run == at("2026-10-28 01:30")


def test_new_york_a_backfill_job_paused_across_the_spring_gap_catches_up_real_hours(jobs):
    jobs([{**BACKFILL, "timezone": "America/New_York"}])
    tick(at("2026-03-08 05:00"))  # 00:00 EST
    jobs([disabled({**BACKFILL, "timezone": "America/New_York"})])
    tick(at("2026-03-08 05:30"))
    jobs([{**BACKFILL, "timezone": "America/New_York"}])
    tick(at("2026-03-08 09:00"))  # 05:00 EDT: 01:00 EST, 03:00 EDT (02:00 never happens), 04:00, 05:00 EDT
    assert paused_rows("backfill") == [(at("2026-03-08 06:00"), at("2026-03-08 09:00"), 4)]
    assert ran("backfill") == hours(at("2026-03-08 05:00"), at("2026-03-08 09:00"))


def test_lord_howe_a_job_paused_across_the_half_hour_shift_counts_its_slots(jobs):
    # 2026-10-04 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11): a fixed 02:00 daily slot has
    # no wall time that day and runs at the first instant after it (15:30 UTC on the 3rd).
    entry = {"name": "lh", "cmd": "record", "frequency": "1d", "time": "02:00", "timezone": "Australia/Lord_Howe"}
    jobs([entry])
    tick(at("2026-10-02 15:30"))  # 02:00 LHST on the 3rd
    jobs([disabled(entry)])
    tick(at("2026-10-02 16:00"))
    jobs([entry])
    tick(at("2026-10-05 16:00"))
    assert paused_rows("lh") == [(at("2026-10-03 15:30"), at("2026-10-05 15:00"), 3)]


def test_chatham_a_job_paused_across_the_autumn_change_runs_the_repeated_wall_time_once(jobs):
    # 2026-04-05 03:45 CHADT (+13:45) goes back to 02:45 CHAST (+12:45): 03:00 happens twice.
    entry = {"name": "ch", "cmd": "record", "cron": "0 3 * * *", "timezone": "Pacific/Chatham", "backfill": True}
    jobs([entry])
    tick(at("2026-04-03 13:15"))  # 03:00 CHADT on the 4th
    jobs([disabled(entry)])
    tick(at("2026-04-03 14:00"))
    jobs([entry])
    tick(at("2026-04-06 15:00"))
    # the 5th's 03:00 at its first occurrence (13:15 UTC on the 4th), once; then 03:00 CHAST (+12:45)
    assert paused_rows("ch") == [(at("2026-04-04 13:15"), at("2026-04-06 14:15"), 3)]
    assert ran("ch") == [at("2026-04-03 13:15"), at("2026-04-04 13:15"), at("2026-04-05 14:15"), at("2026-04-06 14:15")]
