"""The DST rules of docs/schedules.md, checked exhaustively in every zone we promise them for.

For each zone, every clock change of 2026 and 2027 is found from the zone data, and every
wall-clock minute it skips or repeats is checked against a brute-force reading of the
rule (walk real minutes, read the local clock). Zones without DST (Asia/Kolkata, UTC) get
the same checks on the dates the other zones change, where every wall time happens once.

Pure tests: no database, no Django.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from crontabber.schedules import build_schedule

UTC = UTC
MINUTE = timedelta(minutes=1)
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
# Dates on which the zones above change their clocks in 2026; used as ordinary days in
# zones without DST so that their checks run on the same calendar.
OTHER_ZONES_CHANGE_DAYS = (
    date(2026, 3, 8),
    date(2026, 3, 29),
    date(2026, 4, 5),
    date(2026, 10, 4),
    date(2026, 10, 25),
    date(2026, 11, 1),
)


@dataclass(frozen=True)
class Transition:
    """A clock change: from ``instant`` (UTC) on, the zone's offset is ``after``."""

    zone: ZoneInfo
    instant: datetime
    before: timedelta
    after: timedelta

    @property
    def forward(self) -> bool:
        return self.after > self.before

    @property
    def day(self) -> date:
        return self.instant.astimezone(self.zone).date()

    def walls(self) -> list[datetime]:
        """The wall-clock minutes (naive) the change skips (forward) or repeats (back)."""
        first = (self.instant + min(self.before, self.after)).replace(tzinfo=None)
        return [first + k * MINUTE for k in range(abs(self.after - self.before) // MINUTE)]


@functools.cache
def transitions(zone_name: str, first_year: int = 2026, last_year: int = 2029) -> tuple[Transition, ...]:
    """Every clock change of ``zone_name`` in the given years, to the minute."""
    zone = ZoneInfo(zone_name)
    offset = lambda instant: instant.astimezone(zone).utcoffset()  # noqa: E731
    found = []
    low = datetime(first_year, 1, 1, tzinfo=UTC)
    while low.year <= last_year:
        high = low + timedelta(hours=12)  # clock changes are months apart
        if offset(low) != offset(high):
            lo, hi = low, high  # offset(lo) is the old one, offset(hi) the new one
            while hi - lo > MINUTE:
                mid = lo + (hi - lo) // MINUTE // 2 * MINUTE
                lo, hi = (mid, hi) if offset(mid) == offset(lo) else (lo, mid)
            found.append(Transition(zone, hi, offset(lo), offset(hi)))
        low = high
    return tuple(found)


def changes_in(zone_name: str, years=(2026, 2027)) -> list[Transition]:
    return [t for t in transitions(zone_name) if t.instant.year in years]


def local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _hours_around(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Real time from well before to well after any instant the clock can show ``wall``
    (clock changes move it by at most an hour)."""
    guess = wall.replace(tzinfo=zone).astimezone(UTC)
    return guess - timedelta(hours=3), guess + timedelta(hours=3)


def first_instant_showing(wall: datetime, zone: ZoneInfo) -> datetime:
    """Brute force: the first whole minute at which the local clock shows ``wall`` or
    later. That is the wall time's first occurrence, or, if the clock never shows it,
    the first valid instant after it."""
    instant = _hours_around(wall, zone)[0]
    while local_wall(instant, zone) < wall:
        instant += MINUTE
    return instant


def occurrences(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Brute force: every instant at which the local clock shows ``wall``."""
    return instants_showing(lambda local: local == wall, *_hours_around(wall, zone), zone)


def instants_showing(match, start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """Brute force: every whole minute in [start, end) whose local clock reading matches."""
    count = (end - start) // MINUTE
    return [s for s in (start + k * MINUTE for k in range(count)) if match(local_wall(s, zone))]


def slots_between(schedule, start: datetime, end: datetime, anchor=None) -> list[datetime]:
    """The schedule's slots in (start, end]."""
    slots = schedule.slots_after(start, anchor or start)
    return list(itertools.takewhile(lambda slot: slot <= end, slots))


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A span of real time that holds the whole local ``day`` (and a little more)."""
    start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC) - timedelta(hours=3)
    return start, start + timedelta(hours=30)


def fixed_time_schedules(wall: datetime, zone: str):
    """The ways to ask for a job at one wall time: a daily frequency and two crons."""
    hh_mm = f"{wall:%H:%M}"
    return [
        build_schedule(frequency="1d", at=hh_mm, zone=zone),
        build_schedule(cron=f"{wall.minute} {wall.hour} * * *", zone=zone),
        build_schedule(cron=f"{wall.minute} {wall.hour} * * {(wall.weekday() + 1) % 7}", zone=zone),
    ]


def checked_walls(zone_name: str, forward: bool) -> list[datetime]:
    """The skipped (forward) or repeated wall minutes of 2026-2027; in a zone without
    such changes, the early-morning wall times of the days other zones change."""
    changes = [t for t in changes_in(zone_name) if t.forward == forward]
    if changes:
        return [wall for change in changes for wall in change.walls()]
    return [
        datetime.combine(day, time(hour, minute))
        for day in OTHER_ZONES_CHANGE_DAYS
        for hour in range(4)
        for minute in range(0, 60, 15)
    ]


@pytest.mark.parametrize(
    "zone_name, expected",
    [
        (
            "Europe/Berlin",
            ["2026-03-29T01:00 +1h", "2026-10-25T01:00 -1h", "2027-03-28T01:00 +1h", "2027-10-31T01:00 -1h"],
        ),
        (
            "America/New_York",
            ["2026-03-08T07:00 +1h", "2026-11-01T06:00 -1h", "2027-03-14T07:00 +1h", "2027-11-07T06:00 -1h"],
        ),
        # Lord Howe moves its clocks by 30 minutes, at 02:00 local time.
        (
            "Australia/Lord_Howe",
            [
                "2026-04-04T15:00 -30m",
                "2026-10-03T15:30 +30m",
                "2027-04-03T15:00 -30m",
                "2027-10-02T15:30 +30m",
            ],
        ),
        ("Asia/Kolkata", []),
        ("UTC", []),
    ],
)
def test_the_clock_changes_we_check_are_the_real_ones(zone_name, expected):
    def show(change):
        minutes = (change.after - change.before) // MINUTE
        shift = f"{minutes // 60:+d}h" if minutes % 60 == 0 else f"{minutes:+d}m"
        return f"{change.instant:%Y-%m-%dT%H:%M} {shift}"

    assert [show(change) for change in changes_in(zone_name)] == expected


@pytest.mark.parametrize("zone_name", ZONES)
def test_a_wall_time_that_happens_twice_runs_once_at_its_first_occurrence(zone_name):
    zone = ZoneInfo(zone_name)
    walls = checked_walls(zone_name, forward=False)
    assert walls
    for wall in walls:
        first = first_instant_showing(wall, zone)
        assert occurrences(wall, zone)[0] == first  # the brute-force reading agrees with the zone data
        assert first == wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        for schedule in fixed_time_schedules(wall, zone_name):
            on_the_day = [
                s
                for s in slots_between(schedule, *day_bounds(wall.date(), zone))
                if s.astimezone(zone).date() == wall.date()
            ]
            assert on_the_day == [first], (str(schedule), wall)
    if changes_in(zone_name):
        # In a zone with DST, these wall times really did happen twice.
        assert all(len(occurrences(wall, zone)) == 2 for wall in walls)


@pytest.mark.parametrize("zone_name", ZONES)
def test_a_wall_time_that_does_not_happen_runs_at_the_first_valid_instant_after_it(zone_name):
    zone = ZoneInfo(zone_name)
    walls = checked_walls(zone_name, forward=True)
    assert walls
    changes = {change.day: change for change in changes_in(zone_name) if change.forward}
    for wall in walls:
        expected = first_instant_showing(wall, zone)
        if wall.date() in changes:
            # The clock never shows it: the first valid instant after it is the change itself.
            assert not occurrences(wall, zone)
            assert expected == changes[wall.date()].instant
        for schedule in fixed_time_schedules(wall, zone_name):
            on_the_day = [
                s
                for s in slots_between(schedule, *day_bounds(wall.date(), zone))
                if s.astimezone(zone).date() == wall.date()
            ]
            assert on_the_day == [expected], (str(schedule), wall)


@pytest.mark.parametrize("zone_name", ZONES)
def test_skipped_wall_times_that_land_on_the_same_instant_run_once(zone_name):
    zone = ZoneInfo(zone_name)
    for change in [t for t in changes_in(zone_name) if t.forward]:
        skipped = change.walls()
        hours = sorted({wall.hour for wall in skipped} | {skipped[-1].hour + 1})
        # Every 10 minutes through the skipped hour and the next: "0-50/10 2,3 * * *" in
        # Berlin, whose 02:00 to 02:50 and 03:00 all run once, at 03:00.
        schedule = build_schedule(cron=f"0-50/10 {','.join(map(str, hours))} * * *", zone=zone_name)
        slots = [
            s for s in slots_between(schedule, *day_bounds(change.day, zone)) if s.astimezone(zone).date() == change.day
        ]
        expected = sorted(
            {
                first_instant_showing(datetime.combine(change.day, time(h, m)), zone)
                for h in hours
                for m in range(0, 60, 10)
            }
        )
        assert slots == expected
        assert slots.count(change.instant) == 1
    # A fixed-time job whose every wall time is real is untouched in any zone.
    schedule = build_schedule(cron="0-50/10 12 * * *", zone=zone_name)
    noon = datetime.combine(date(2026, 6, 1), time(12), tzinfo=zone).astimezone(UTC)
    assert slots_between(schedule, noon - MINUTE, noon + timedelta(hours=1)) == [
        noon + k * timedelta(minutes=10) for k in range(6)
    ]


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("wall", ["00:00", "01:30", "02:00", "02:15", "02:30", "03:00", "23:59"])
def test_a_daily_job_runs_once_on_every_calendar_day_of_two_years(zone_name, wall):
    zone = ZoneInfo(zone_name)
    start = datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC) - MINUTE
    end = datetime(2028, 1, 1, tzinfo=zone).astimezone(UTC) - MINUTE
    hour, minute = map(int, wall.split(":"))
    for schedule in (
        build_schedule(frequency="1d", at=wall, zone=zone_name),
        build_schedule(cron=f"{minute} {hour} * * *", zone=zone_name),
    ):
        slots = slots_between(schedule, start, end)
        days = [slot.astimezone(zone).date() for slot in slots]
        assert days == [date(2026, 1, 1) + timedelta(days=k) for k in range(730)], str(schedule)


STEP_FREQUENCIES = ["1m", "5m", "15m", "30m", "45m", "1h", "90m", "2h", "7h", "23h"]


@pytest.mark.parametrize("zone_name", ZONES)
def test_minute_and_hour_frequencies_keep_real_elapsed_spacing(zone_name):
    zone = ZoneInfo(zone_name)
    around = [change.instant for change in changes_in(zone_name)] or [
        datetime.combine(day, time(2), tzinfo=zone).astimezone(UTC) for day in OTHER_ZONES_CHANGE_DAYS
    ]
    for frequency in STEP_FREQUENCIES:
        schedule = build_schedule(frequency=frequency, zone=zone_name)
        step = schedule.step
        for instant in around:
            anchor = instant - timedelta(hours=25, minutes=7)
            slots = slots_between(schedule, anchor - MINUTE, instant + timedelta(hours=26), anchor)
            assert slots[0] == anchor
            assert {b - a for a, b in itertools.pairwise(slots)} == {step}, (frequency, instant)


# Cron jobs whose minute or hour field starts with '*': each matching wall time runs as it
# really passes (twice in a repeated hour, never in a skipped one).
REAL_TIME_CRONS = [
    "* * * * *",
    "*/5 * * * *",
    "*/15 * * * *",
    "*/30 * * * *",
    "0 * * * *",
    "30 * * * *",
    "10,40 */2 * * *",
    "*/20 1-3 * * *",
    "45 * * * *",
]


def _matcher(cron: str):
    minutes, hours = cron.split()[:2]

    def values(field, top):
        if field == "*":
            return set(range(top))
        result = set()
        for term in field.split(","):
            span, _, step = term.partition("/")
            low, _, high = span.partition("-")
            low, high = (0, top - 1) if span == "*" else (int(low), int(high or low))
            result.update(range(low, high + 1, int(step or 1)))
        return result

    minute_set, hour_set = values(minutes, 60), values(hours, 24)
    return lambda local: local.minute in minute_set and local.hour in hour_set


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("cron", REAL_TIME_CRONS)
def test_wildcard_cron_runs_at_each_matching_wall_time_as_it_really_passes(zone_name, cron):
    zone = ZoneInfo(zone_name)
    schedule = build_schedule(cron=cron, zone=zone_name)
    days = [change.day for change in changes_in(zone_name)] or list(OTHER_ZONES_CHANGE_DAYS)
    for day in days:
        start, end = day_bounds(day, zone)
        assert slots_between(schedule, start - MINUTE, end - MINUTE) == instants_showing(
            _matcher(cron), start, end, zone
        ), (cron, day)


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("cron", ["*/5 * * * *", "*/15 * * * *", "*/30 * * * *", "0 * * * *"])
def test_wildcard_cron_spacing_through_clock_changes(zone_name, cron):
    """Real elapsed spacing: a step that divides the clock change keeps its spacing; only
    Lord Howe's 30-minute change can leave a gap, for a job at one minute of each hour."""
    schedule = build_schedule(cron=cron, zone=zone_name)
    step = timedelta(hours=1) if cron.startswith("0 ") else timedelta(minutes=int(cron.split()[0][2:]))
    for change in changes_in(zone_name) or []:
        three_hours = timedelta(hours=3)
        slots = slots_between(schedule, change.instant - three_hours, change.instant + three_hours)
        gaps = [b - a for a, b in itertools.pairwise(slots)]
        if zone_name == "Australia/Lord_Howe" and cron == "0 * * * *":
            # 02:00 is skipped in spring (the clock jumps 02:00 -> 02:30) and happens only
            # once in autumn (02:00 -> 01:30): one 90-minute gap each time.
            assert sorted(set(gaps)) == [step, timedelta(minutes=90)]
            assert gaps.count(timedelta(minutes=90)) == 1
        else:
            assert set(gaps) == {step}, (cron, change.instant)
    if not changes_in(zone_name):
        start = datetime(2026, 3, 29, tzinfo=UTC)
        slots = slots_between(schedule, start, start + timedelta(days=2))
        assert {b - a for a, b in itertools.pairwise(slots)} == {step}
