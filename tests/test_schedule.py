"""Schedules: grids, coalescing inputs, and DST days of 2026 (the property tests are elsewhere)."""

import itertools
from datetime import timedelta

import pytest

from crontabber.schedules import (
    ScheduleError,
    build_schedule,
    format_instant,
    parse_instant,
)
from tests.helpers import at


def take(schedule, after, n, anchor=None):
    return list(itertools.islice(schedule.slots_after(after, anchor or after), n))


def test_minute_frequency_is_a_fixed_grid_from_the_anchor():
    schedule = build_schedule(frequency="5m")
    anchor = at("2026-01-01 00:03")
    assert schedule.first_slot(at("2026-01-01 00:03") + timedelta(seconds=41)) == anchor
    assert schedule.next_after(anchor, anchor) == at("2026-01-01 00:08")
    assert schedule.next_after(at("2026-01-01 00:09"), anchor) == at("2026-01-01 00:13")
    assert schedule.latest_at_or_before(at("2026-01-01 00:17"), anchor) == at("2026-01-01 00:13")
    assert schedule.latest_at_or_before(at("2026-01-01 00:02"), anchor) is None


def test_hour_frequency_keeps_real_spacing_through_dst():
    schedule = build_schedule(frequency="1h", zone="Europe/Berlin")
    start = at("2026-10-24 23:00")
    slots = take(schedule, start, 4, anchor=start)
    assert [b - a for a, b in itertools.pairwise(slots)] == [timedelta(hours=1)] * 3


@pytest.mark.parametrize(
    "zone, day, wall, expected_utc",
    [
        # Spring forward: 02:30 does not happen; the first valid instant after it is 03:00.
        ("Europe/Berlin", "2026-03-29", "02:30", "2026-03-29 01:00"),
        ("America/New_York", "2026-03-08", "02:30", "2026-03-08 07:00"),
        # Fall back: 02:30 (Berlin) and 01:30 (New York) happen twice; the first counts.
        ("Europe/Berlin", "2026-10-25", "02:30", "2026-10-25 00:30"),
        ("America/New_York", "2026-11-01", "01:30", "2026-11-01 05:30"),
    ],
)
def test_daily_job_at_a_wall_time_runs_once_on_each_dst_change_day(zone, day, wall, expected_utc):
    for schedule in (
        build_schedule(frequency="1d", at=wall, zone=zone),
        build_schedule(cron=f"{wall[3:]} {int(wall[:2])} * * *", zone=zone),
    ):
        start = at(day + " 00:00") - timedelta(days=2)
        slots = take(schedule, start, 5)
        local_days = [slot.astimezone(schedule.zone).date() for slot in slots]
        assert len(set(local_days)) == 5, "one slot per calendar day"
        assert at(expected_utc) in slots


def test_daily_frequency_without_time_keeps_the_first_runs_wall_time():
    schedule = build_schedule(frequency="1d", zone="America/New_York")
    anchor = at("2026-03-06 15:00")  # 10:00 EST
    slots = take(schedule, anchor, 4, anchor=anchor)
    assert [s.astimezone(schedule.zone).strftime("%d %H:%M") for s in slots] == [
        "07 10:00",
        "08 10:00",
        "09 10:00",
        "10 10:00",
    ]
    assert slots[1] - slots[0] == timedelta(hours=23)  # the short day


def test_seven_day_frequency_at_a_time_counts_from_the_first_runs_date():
    schedule = build_schedule(frequency="7d", at="03:00")
    seen = at("2026-11-18 10:00")  # a Wednesday, after 03:00
    first = schedule.first_slot(seen)
    assert first == at("2026-11-25 03:00")
    assert schedule.next_after(first, seen) == at("2026-12-02 03:00")


def test_cron_with_wildcard_hour_keeps_real_spacing_in_repeated_and_skipped_hours():
    schedule = build_schedule(cron="*/30 * * * *", zone="Europe/Berlin")
    back = take(schedule, at("2026-10-24 23:59"), 6)
    assert [b - a for a, b in itertools.pairwise(back)] == [timedelta(minutes=30)] * 5
    forward = take(schedule, at("2026-03-28 23:59"), 6)
    assert [b - a for a, b in itertools.pairwise(forward)] == [timedelta(minutes=30)] * 5


def test_cron_names_macros_and_day_fields():
    assert take(build_schedule(cron="0 9 * * MON-FRI"), at("2026-11-20 10:00"), 2) == [
        at("2026-11-23 09:00"),
        at("2026-11-24 09:00"),
    ]
    assert take(build_schedule(cron="@monthly"), at("2026-11-20 10:00"), 1) == [at("2026-12-01 00:00")]
    # Day of month OR day of week when both are restricted (classic cron).
    either = take(build_schedule(cron="0 0 1 * FRI"), at("2026-11-26 00:00"), 3)
    assert either == [at("2026-11-27 00:00"), at("2026-12-01 00:00"), at("2026-12-04 00:00")]
    assert take(build_schedule(cron="0 0 L * *"), at("2026-02-01 00:00"), 1) == [at("2026-02-28 00:00")]
    assert take(build_schedule(cron="0 0 * * 5#2"), at("2026-11-01 00:00"), 1) == [at("2026-11-13 00:00")]


def days(expression, after, n):
    return [slot.strftime("%a %d %b") for slot in take(build_schedule(cron=expression), at(after), n)]


def test_a_star_in_a_list_is_the_whole_field():
    """Vixie cron reads '*' in a list as first-last; croniter kept a literal '*' value."""
    assert take(build_schedule(cron="*,5 * * * *"), at("2026-11-20 10:00"), 3) == [
        at("2026-11-20 10:01"),
        at("2026-11-20 10:02"),
        at("2026-11-20 10:03"),
    ]
    assert days("0 0 * *,2 *", "2026-11-20 10:00", 3) == ["Sat 21 Nov", "Sun 22 Nov", "Mon 23 Nov"]
    assert days("* * * * *,0", "2026-11-20 10:00", 1) == ["Fri 20 Nov"]  # was a TypeError


def test_a_star_in_a_day_field_counts_for_the_or_rule_only_as_its_first_character():
    """As in Vixie cron's entry.c (DOM_STAR/DOW_STAR from the field's first character)."""
    # '*,5' starts with '*': both day fields must match, so Mondays only.
    assert days("0 0 *,5 * 1", "2026-11-20 10:00", 3) == ["Mon 23 Nov", "Mon 30 Nov", "Mon 07 Dec"]
    # '5,*' does not: every day of the month OR Monday, so every day.
    assert days("0 0 5,* * 1", "2026-11-20 10:00", 3) == ["Sat 21 Nov", "Sun 22 Nov", "Mon 23 Nov"]
    assert days("0 0 13 * 3#1,*", "2026-11-20 10:00", 2) == ["Sat 21 Nov", "Sun 22 Nov"]
    assert days("0 0 13 * *,3#1", "2026-11-20 10:00", 2) == ["Sun 13 Dec", "Wed 13 Jan"]


def test_nth_and_last_weekdays_beside_plain_weekdays():
    # Monday, Tuesday or the first Wednesday of the month.
    assert days("0 0 * * 1,2,3#1", "2026-11-30 10:00", 7) == [
        "Tue 01 Dec",
        "Wed 02 Dec",
        "Mon 07 Dec",
        "Tue 08 Dec",
        "Mon 14 Dec",
        "Tue 15 Dec",
        "Mon 21 Dec",
    ]
    assert days("0 0 * * L5,MON", "2026-11-20 10:00", 3) == ["Mon 23 Nov", "Fri 27 Nov", "Mon 30 Nov"]
    assert days("0 0 * * 0,7#1", "2026-11-20 10:00", 2) == ["Sun 22 Nov", "Sun 29 Nov"]  # every Sunday


ZERO = "has a step of 0; a step must be 1 or more"
DOWN = "runs downward; ranges go up, so write a wrap-around as two ranges:"
ASCII = "write cron expressions in ASCII, with plain spaces between the fields"


@pytest.mark.parametrize(
    "expression, message",
    [
        ("5-5/0 * * * *", f"'5-5/0 * * * *': '5-5/0' in the minute field {ZERO}"),
        ("*/0 * * * *", f"'*/0 * * * *': '*/0' in the minute field {ZERO}"),
        ("0 0 * * MON-MON/00", f"'0 0 * * MON-MON/00': 'MON-MON/00' in the day-of-week field {ZERO}"),
        ("0 1,3/0 * * *", f"'0 1,3/0 * * *': '3/0' in the hour field {ZERO}"),
        ("5-1 * * * *", f"'5-1 * * * *': '5-1' in the minute field {DOWN} '5-59,0-1'"),
        ("0 0 * * 5-1", f"'0 0 * * 5-1': '5-1' in the day-of-week field {DOWN} '5-6,0-1'"),
        ("0 0 * * FRI-SUN", f"'FRI-SUN' in the day-of-week field {DOWN} '5-7'"),
        ("0 22-2/2 * * *", f"'22-2/2' in the hour field {DOWN} '22-23/2,0-2/2'"),
        ("0 0 25-5 * *", f"'25-5' in the day-of-month field {DOWN} '25-31,1-5'"),
        ("0 0 1 NOV-FEB *", f"'NOV-FEB' in the month field {DOWN} '11-12,1-2'"),
        ("0\u00a00 * * *", f"'0\\xa00 * * *' contains NO-BREAK SPACE (U+00A0): {ASCII}"),
        ("0 0 * * *\u2003", f"contains EM SPACE (U+2003): {ASCII}"),
        ("\u0665 * * * *", f"contains ARABIC-INDIC DIGIT FIVE (U+0665): {ASCII}"),
        ("0 0 * * \x1c", f"contains a control character (U+001C): {ASCII}"),
    ],
)
def test_cron_expressions_vixie_cron_refuses_are_refused_in_one_line(expression, message):
    with pytest.raises(ScheduleError) as refused:
        build_schedule(cron=expression)
    assert message in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(frequency="5x"), "not a frequency"),
        (dict(frequency="0m"), "not a frequency"),
        (dict(frequency="1d", at="25:00"), "not a time"),
        (dict(frequency="5m", at="03:00"), "whole days"),
        (dict(cron="61 * * * *"), "not a valid cron"),
        (dict(cron="0 0 30 2 *"), "never matches"),
        (dict(cron="@reboot"), "five-field"),
        (dict(cron="0 0 * * * *"), "five-field"),
        (dict(cron="0 0 * * *", frequency="1d"), "cannot be combined"),
        (dict(zone="Mars/Olympus"), "time zone"),
    ],
)
def test_bad_schedules_raise_schedule_error(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        build_schedule(**kwargs)


def test_run_time_round_trips_with_a_utc_offset():
    slot = at("2026-03-29 01:00")
    text = format_instant(slot)
    assert text == "2026-03-29T01:00:00+00:00"
    assert parse_instant(text) == slot
    assert parse_instant("2026-03-29T03:00:00+02:00") == slot


def test_slot_generation_is_lazy():
    schedule = build_schedule(cron="* * * * *")
    generator = schedule.slots_after(at("2016-01-01 00:00"), None)
    assert next(generator) == at("2016-01-01 00:01")  # ten years of minutes are not built


def test_the_days_of_slots_kept_for_other_jobs_are_bounded():
    # A long-lived loop asks every tick for today's slots of each cron job; the days it
    # keeps (so jobs of one expression share them) must not grow with the days it has run.
    from crontabber.schedules.cron import _slots_of_day

    schedule = build_schedule(cron="*/5 * * * *", zone="Europe/Paris")
    for day in range(1000):
        assert schedule.latest_at_or_before(at("2026-01-01 12:02") + timedelta(days=day), None) == at(
            "2026-01-01 12:00"
        ) + timedelta(days=day)
    assert _slots_of_day.cache_info().currsize <= _slots_of_day.cache_info().maxsize <= 256
