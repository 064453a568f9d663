"""Clock changes told ahead: `cronlist NAME --next N` marks the coming slots a clock
change moves or merges, and a system check warns of a fixed-time job's wall time that
falls into a gap or a fold of its zone within the next year."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from crontabber.registry.jobs import CLOCK_CHANGE_WARNING
from crontabber.schedules import build_override, build_schedule
from crontabber.schedules.clocks import clock_warnings, coming
from tests.helpers import at


def local(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(ZoneInfo("UTC"))


def notes_around(schedule, start: str, count: int = 3) -> list[tuple[str, str]]:
    return [(item.local(), item.note) for item in coming(schedule, at(start), at(start), count)]


# --- pure: the notes, in four zones -----------------------------------------------------------


def test_berlin_spring_a_wall_time_in_the_gap_is_moved_and_said_so():
    nightly = build_schedule("1d", "02:30", zone="Europe/Berlin")
    found = notes_around(nightly, "2027-03-27 00:00")
    assert found[0] == ("2027-03-27 02:30 CET", "")
    assert found[1] == (
        "2027-03-28 03:00 CEST",
        "02:30 Europe/Berlin does not exist on 2027-03-28 (the clocks go forward); "
        "it runs at 03:00 CEST (01:00 UTC) that day",
    )
    assert found[2] == ("2027-03-29 02:30 CEST", "")


def test_berlin_spring_wall_times_merged_into_one_run_are_said_to_be():
    [merged, following, _] = notes_around(build_override("02:00,02:30,03:00", "Europe/Berlin"), "2027-03-27 23:00")
    assert following == ("2027-03-29 02:00 CEST", "")
    assert merged[0] == "2027-03-28 03:00 CEST"
    assert "02:00 and 02:30 Europe/Berlin do not exist on 2027-03-28" in merged[1]
    assert "they run with 03:00, once, at 03:00 CEST (01:00 UTC)" in merged[1]


def test_new_york_autumn_a_wall_time_in_the_fold_runs_once_at_the_first():
    [item, *_] = notes_around(build_schedule(cron="30 1 * * *", zone="America/New_York"), "2027-11-07 00:00", 1)
    assert item == (
        "2027-11-07 01:30 EDT",
        "01:30 America/New_York happens twice on 2027-11-07 (the clocks go back); "
        "it runs once, at the first: 01:30 EDT (05:30 UTC)",
    )


def test_new_york_spring_a_real_time_cron_says_the_skipped_hour_does_not_run():
    found = notes_around(build_schedule(cron="30 * * * *", zone="America/New_York"), "2027-03-14 06:00")
    assert [when for when, _ in found] == ["2027-03-14 01:30 EST", "2027-03-14 03:30 EDT", "2027-03-14 04:30 EDT"]
    assert found[0][1] == "" and "skipped wall times do not run" in found[1][1] and found[2][1] == ""


def test_lord_howe_moves_by_thirty_minutes():
    spring = notes_around(build_schedule("1d", "02:15", zone="Australia/Lord_Howe"), "2027-10-02 00:00", 2)
    assert spring[0][0] == "2027-10-03 02:30 +11"
    assert spring[0][1].startswith("02:15 Australia/Lord_Howe does not exist on 2027-10-03")
    autumn = notes_around(build_schedule("1d", "01:45", zone="Australia/Lord_Howe"), "2027-04-03 00:00", 2)
    assert autumn[0][1].startswith("01:45 Australia/Lord_Howe happens twice on 2027-04-04")
    assert "at the first: 01:45 +11 (14:45 UTC)" in autumn[0][1] and autumn[1][1] == ""
    # 02:00 is not in Lord Howe's half-hour fold (01:30 to 02:00): nothing to say.
    assert notes_around(build_schedule("1d", "02:00", zone="Australia/Lord_Howe"), "2027-04-03 00:00", 1)[0][1] == ""


def test_chatham_changes_at_a_quarter_to_three():
    job = build_schedule("1d", "02:50", zone="Pacific/Chatham")
    [warning_autumn, warning_spring] = clock_warnings(job, at("2026-12-07 00:00"))
    assert warning_autumn.startswith("02:50 Pacific/Chatham happens twice on 2027-04-04")
    assert warning_spring == (
        "02:50 Pacific/Chatham does not exist on 2027-09-26 (the clocks go forward); "
        "it runs at 03:45 +1345 (14:00 UTC) that day"
    )


def test_no_warning_for_wall_times_no_clock_change_reaches_or_real_elapsed_time():
    now = at("2026-12-07 00:00")
    assert clock_warnings(build_schedule("1d", "04:00", zone="Europe/Berlin"), now) == []
    assert clock_warnings(build_schedule("1h"), now) == []
    assert clock_warnings(build_schedule(cron="*/15 * * * *", zone="Europe/Berlin"), now) == []
    assert clock_warnings(build_schedule("1d", "02:30", zone="UTC"), now) == []


# --- the system check and cronlist --------------------------------------------------------------

NIGHTLY = {"name": "nightly", "cmd": "record", "frequency": "1d", "time": "02:30", "timezone": "Europe/Berlin"}


def clock_checks():
    return [m for m in checks.run_checks(tags=["crontabber"]) if m.id == CLOCK_CHANGE_WARNING]


def test_the_system_check_warns_of_the_gap_and_the_fold_within_a_year(settings):
    settings.CRONTABBER_JOBS = [NIGHTLY, {**NIGHTLY, "name": "morning", "time": "04:00"}]
    with freeze_time(at("2026-12-07 12:00")):
        found = clock_checks()
    assert all(m.level == checks.WARNING for m in found)
    assert [m.msg for m in found] == [
        "nightly: 02:30 Europe/Berlin does not exist on 2027-03-28 (the clocks go forward); "
        "it runs at 03:00 CEST (01:00 UTC) that day",
        "nightly: 02:30 Europe/Berlin happens twice on 2027-10-31 (the clocks go back); "
        "it runs once, at the first: 02:30 CEST (00:30 UTC)",
    ]


def test_no_clock_warning_for_a_disabled_job_or_a_broken_registry(settings):
    settings.CRONTABBER_JOBS = [{**NIGHTLY, "enabled": False}]
    assert clock_checks() == []
    settings.CRONTABBER_JOBS = [NIGHTLY, {"name": "bad", "cmd": "record", "frequency": "often"}]
    assert clock_checks() == []


@pytest.mark.django_db
def test_cronlist_next_lists_the_coming_slots_and_marks_the_clock_change(settings, capsys):
    settings.CRONTABBER_JOBS = [NIGHTLY]
    with freeze_time(at("2027-03-26 12:00")):
        call_command("cronlist", "nightly", "--next", "3")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "nightly: every 1d at 02:30 Europe/Berlin"
    assert lines[1].split() == ["2027-03-27", "02:30", "CET", "2027-03-27", "01:30Z"]
    assert lines[2].startswith("  2027-03-28 03:00 CEST") and "2027-03-28 01:00Z  ! 02:30 Europe/Berlin" in lines[2]
    assert "!" not in lines[3]
    with freeze_time(at("2027-03-26 12:00")):
        call_command("cronlist", "nightly", "--next", "2", "--format", "json")
    [entry] = json.loads(capsys.readouterr().out)
    assert [slot["slot"] for slot in entry["slots"]] == ["2027-03-27T01:30:00+00:00", "2027-03-28T01:00:00+00:00"]
    assert entry["slots"][0]["clock_change"] is None and "does not exist" in entry["slots"][1]["clock_change"]


@pytest.mark.django_db
def test_cronlist_next_needs_names_and_a_sensible_count(settings):
    settings.CRONTABBER_JOBS = [NIGHTLY]
    with pytest.raises(CommandError, match="lists the slots of the jobs named"):
        call_command("cronlist", "--next", "3")
    with pytest.raises(CommandError, match="not a number of slots from 1 to 1000"):
        call_command("cronlist", "nightly", "--next", "0")
    with pytest.raises(CommandError, match="unknown job 'nightl' \\(did you mean 'nightly'\\?\\)"):
        call_command("cronlist", "nightl", "--next", "3")
