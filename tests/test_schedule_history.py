"""Schedule changes keep history: an override, a new schedule or zone in the registry and
a rename are recorded with their time (and, from the admin, who made them); the slots
before a change come from the old schedule, those after it from the new one."""

from datetime import datetime, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from crontabber.admin.display import slots_in_force
from crontabber.models import Log, ScheduleChange
from crontabber.registry import load_jobs, validate
from crontabber.schedules import Switched, build_override, build_schedule, from_description
from crontabber.schedules.history import TICK
from tests.helpers import at, job, outcomes, tick
from tests.jobs import control

BERLIN = ZoneInfo("Europe/Berlin")


def local(text: str, zone=BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))


# --- pure: a schedule through its changes ----------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        build_schedule("5m"),
        build_schedule("2h"),
        build_schedule("1d", "02:30", zone="Europe/Berlin"),
        build_schedule("7d", zone="Pacific/Chatham"),
        build_override("02:00,02:30", "Australia/Lord_Howe"),
        build_schedule(cron="*/15 2 * * 1-5", zone="America/New_York"),
        build_schedule(cron="@daily"),
    ],
)
def test_a_schedule_is_built_again_from_its_description(schedule):
    assert from_description(schedule.description) == schedule


def test_a_switched_schedule_has_the_old_slots_before_the_change_and_the_new_after_it():
    hourly, half_past = build_schedule(cron="0 * * * *"), build_schedule(cron="30 * * * *")
    switched, anchor = Switched(hourly, half_past, at("2026-05-01 12:10")), at("2026-05-01 00:00")
    slots = list(zip(range(5), switched.slots_after(at("2026-05-01 10:00"), anchor), strict=False))
    assert [slot for _, slot in slots] == [
        at("2026-05-01 11:00"),
        at("2026-05-01 12:00"),
        at("2026-05-01 12:30"),
        at("2026-05-01 13:30"),
        at("2026-05-01 14:30"),
    ]
    assert switched.latest_at_or_before(at("2026-05-01 12:20"), anchor) == at("2026-05-01 12:00")
    assert switched.latest_at_or_before(at("2026-05-01 12:40"), anchor) == at("2026-05-01 12:30")
    assert switched.description == half_past.description


SCHEDULES = [
    build_schedule("7m"),
    build_schedule("1h"),
    build_schedule("1d", "02:30", zone="Europe/Berlin"),
    build_schedule(cron="*/20 * * * *", zone="Australia/Lord_Howe"),
    build_override("01:15,02:45", "Pacific/Chatham"),
]


@settings(max_examples=150, deadline=None)
@given(
    before=st.sampled_from(SCHEDULES),
    after=st.sampled_from(SCHEDULES),
    change=st.integers(0, 3 * 24 * 60),
    start=st.integers(-600, 3 * 24 * 60),
)
def test_a_switched_schedule_is_the_old_one_before_the_change_and_the_new_one_after(before, after, change, start):
    anchor = at("2026-03-27 00:00")  # Berlin's clocks go forward on the 29th, Lord Howe's and Chatham's back on 5 April
    at_change, since = anchor + timedelta(minutes=change), anchor + timedelta(minutes=start)
    switched, end = Switched(before, after, at_change), at_change + timedelta(days=1)
    slots = list(takewhile(lambda s: s < end, switched.slots_after(since, anchor)))
    old = list(takewhile(lambda s: s < at_change, before.slots_after(since, anchor)))
    new = list(takewhile(lambda s: s < end, after.slots_after(max(since, at_change - TICK), anchor)))
    assert slots == old + new
    for slot in slots:
        assert switched.latest_at_or_before(slot, anchor) == slot


# --- the engine --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_backlog_across_a_registry_change_runs_the_old_slots_before_it_and_the_new_after(jobs):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    # Down from 10:00; the new schedule is deployed at 13:10 and the runner is back then.
    jobs([{"name": "j", "cmd": "record", "cron": "30 * * * *", "backfill": True}])
    tick(at("2026-05-01 13:10"))
    tick(at("2026-05-01 14:35"))
    assert [slot for slot, _ in outcomes("j")] == [
        at("2026-05-01 10:00"),
        at("2026-05-01 11:00"),
        at("2026-05-01 12:00"),
        at("2026-05-01 13:00"),  # the old schedule's, owed before the change: none skipped
        at("2026-05-01 13:30"),  # the new one's from the change on: 10:30 to 12:30 are not replayed
        at("2026-05-01 14:30"),
    ]
    change = ScheduleChange.objects.get()
    assert (change.what, change.at, change.by) == ("registry", at("2026-05-01 13:10"), "")
    assert (change.before, change.after) == ("cron 0 * * * * UTC", "cron 30 * * * * UTC")
    (spec,) = load_jobs()
    strip = slots_in_force(spec, job("j"), at("2026-05-01 14:35"), 24)
    assert strip == [slot for slot, _ in outcomes("j")], "the admin's strip shows the slots of each schedule"


@pytest.mark.django_db
def test_a_later_wall_time_that_already_passed_today_does_not_fire_at_once(jobs):
    zone = {"timezone": "Europe/Berlin"}
    jobs([{"name": "nightly", "cmd": "record", "frequency": "1d", "time": "03:00", **zone}])
    tick(local("2026-05-01 03:00"))
    jobs([{"name": "nightly", "cmd": "record", "frequency": "1d", "time": "04:00", **zone}])
    tick(local("2026-05-01 10:00"))
    assert len(outcomes("nightly")) == 1, "04:00 today fell before the change: not replayed"
    assert job("nightly").next_run == local("2026-05-02 04:00")


@pytest.mark.django_db
def test_a_zone_change_keeps_the_old_zones_slots_before_it(jobs):
    daily = {"name": "d", "cmd": "record", "frequency": "1d", "time": "03:00", "backfill": True}
    jobs([{**daily, "timezone": "Europe/Berlin"}])
    tick(local("2026-03-27 03:00"))
    # Down over Berlin's spring clock change; the zone changes to New York on the 30th, 12:00 UTC.
    jobs([{**daily, "timezone": "America/New_York"}])
    tick(at("2026-03-30 12:00"))
    tick(at("2026-03-31 12:00"))
    new_york = ZoneInfo("America/New_York")
    assert [slot for slot, _ in outcomes("d")] == [
        local("2026-03-27 03:00"),
        local("2026-03-28 03:00"),
        local("2026-03-29 03:00"),  # 03:00 CEST, the first morning of summer time
        local("2026-03-30 03:00"),
        local("2026-03-31 03:00", new_york),
    ]
    assert ScheduleChange.objects.get().after == "every 1d at 03:00 America/New_York"


@pytest.mark.django_db
def test_a_rerun_across_a_change_reruns_the_slots_of_the_schedule_then_in_force(jobs):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 11:00"))
    jobs([{"name": "j", "cmd": "record", "cron": "*/30 * * * *", "backfill": True}])
    tick(at("2026-05-01 11:10"))
    tick(at("2026-05-01 12:00"))
    control.CALLS.clear()
    with freeze_time(at("2026-05-01 12:05")):
        call_command("cronrerun", "j", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T12:00Z")
    assert [call["run_time"] for call in control.CALLS] == [
        at("2026-05-01 10:00"),
        at("2026-05-01 11:00"),  # the hourly schedule's, in force then
        at("2026-05-01 11:30"),  # the half-hourly one's, from 11:10 on
        at("2026-05-01 12:00"),
    ]


@pytest.mark.django_db
def test_a_renamed_job_keeps_its_state_and_its_attempts(jobs):
    jobs([{"name": "old", "cmd": "record", "frequency": "1h", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    jobs([{"name": "new", "formerly": "old", "cmd": "record", "frequency": "1h", "backfill": True}])
    tick(at("2026-05-01 12:00"))
    assert [slot for slot, _ in outcomes("new")] == [
        at("2026-05-01 10:00"),
        at("2026-05-01 11:00"),  # its backlog, caught up: the rename lost nothing
        at("2026-05-01 12:00"),
    ]
    assert job("new").last_success == at("2026-05-01 12:00") and not Log.objects.filter(job__name="old").exists()
    change = ScheduleChange.objects.get()
    assert (change.what, change.before, change.after) == ("rename", "old", "new")
    tick(at("2026-05-01 12:30"))  # the key may stay: nothing more happens
    assert ScheduleChange.objects.count() == 1


@pytest.mark.django_db
def test_a_dry_run_of_a_rename_shows_the_backlog_the_renamed_job_will_catch_up(jobs, capsys):
    jobs([{"name": "old", "cmd": "record", "frequency": "1h", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    jobs([{"name": "new", "formerly": "old", "cmd": "record", "frequency": "1h", "backfill": True}])
    with freeze_time(at("2026-05-01 12:00")):
        call_command("cronrun", "--dry-run")
    out = capsys.readouterr().out
    assert "would run new for 2026-05-01T11:00:00+00:00" in out and "would run new for 2026-05-01T12:00" in out
    assert job("old").last_success == at("2026-05-01 10:00") and not ScheduleChange.objects.exists()


@pytest.mark.django_db
def test_a_former_name_that_is_still_registered_is_a_registry_error(settings):
    settings.CRONTABBER_JOBS = [
        {"name": "old", "cmd": "record"},
        {"name": "new", "formerly": "old", "cmd": "record"},
    ]
    problems = validate()[1]
    assert [(p.job, p.key) for p in problems] == [("new", "formerly")]
    assert "'old' is still a registered job" in problems[0].message


@pytest.mark.django_db
def test_an_override_from_the_admin_is_recorded_with_who_made_it_and_shown_on_the_job_page(jobs, admin_client):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    pk = job("j").pk
    with freeze_time(at("2026-05-01 10:20")):
        admin_client.post(f"/admin/crontabber/job/{pk}/change/", {"enabled_override": "", "schedule_override": "15m"})
    tick(at("2026-05-01 11:05"))  # the runner applies it from 10:20, when it was made
    assert [slot for slot, _ in outcomes("j")][1:] == [
        at("2026-05-01 10:30"),  # the 15-minute grid (from the first run) after 10:20
        at("2026-05-01 10:45"),
        at("2026-05-01 11:00"),
    ]
    change = ScheduleChange.objects.get()
    assert (change.what, change.at, change.by) == ("override", at("2026-05-01 10:20"), "admin")
    page = admin_client.get(f"/admin/crontabber/job/{pk}/change/").content.decode()
    assert "Schedule changes" in page and "cron 0 * * * * UTC" in page and "every 15m" in page


@pytest.mark.django_db
def test_an_override_taken_back_before_a_tick_does_not_date_a_later_change(jobs, admin_client):
    jobs([{"name": "j", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    url = f"/admin/crontabber/job/{job('j').pk}/change/"
    for when, value in (("10:05", "15m"), ("10:06", "")):
        with freeze_time(at(f"2026-05-01 {when}")):
            admin_client.post(url, {"enabled_override": "", "schedule_override": value})
    tick(at("2026-05-01 11:00"))  # nothing to apply: the schedule is the registry's again
    assert job("j").schedule_changed is None and len(outcomes("j")) == 2
    jobs([{"name": "j", "cmd": "record", "cron": "*/15 * * * *", "backfill": True}])
    tick(at("2026-05-01 11:20"))  # a deploy, seen at 11:20: it counts from then
    latest = ScheduleChange.objects.first()
    assert (latest.what, latest.at) == ("registry", at("2026-05-01 11:20"))
    taken_back = ScheduleChange.objects.order_by("at")[1]
    assert (taken_back.what, taken_back.before, taken_back.after) == ("override", "every 15m", "cron 0 * * * * UTC")
    assert [slot for slot, _ in outcomes("j")][2:] == [], "the next slot is 11:30, after the change"
    assert job("j").next_slot == at("2026-05-01 11:30")
