"""The schedules' rules: instants, wall times, DST, and the interval, calendar and union
schedules (cron expressions are cron.py's).

Pure logic, no Django import. Every instant in and out is an aware datetime; slots
are returned in UTC. Wall-clock rules (``time``, ``cron``, whole-day frequencies) are
read in the schedule's zone, with these DST rules:

* a wall time that happens twice (clocks go back) runs once, at its first occurrence;
* a wall time that does not happen (clocks go forward) runs at the first valid instant
  after it, once, however many skipped wall times map there;
* a cron job whose minute or hour field starts with ``*`` ("*/15 * * * *", "0 * * * *")
  keeps real elapsed spacing instead: it runs at each matching wall time as it really
  passes, so twice in a repeated hour and not at all in a skipped one (as Debian cron
  and cronsim do);
* minute and hour frequencies are fixed real-time grids; day frequencies step whole
  calendar days at a fixed wall time, so a daily job runs once per calendar day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ..words import did_you_mean

UTC = UTC
MINUTE = timedelta(minutes=1)
# ASCII digits and spaces only: int() would read "٣" as 3 and str.split() a no-break space.
_FREQUENCY = re.compile(r"^\s*(\d{1,12})\s*([mhd])\s*$", re.ASCII)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$", re.ASCII)
# The longest frequency: beyond it, slot arithmetic overflows datetimes soon enough to
# matter (and no upkeep job runs less than once a decade).
MAX_FREQUENCY = timedelta(days=3660)
# The instants crontabber takes from people: schedules look decades either side of one
# (a cron expression's matching day, a ten-year frequency), far from datetime's ends.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class ScheduleError(ValueError):
    """A frequency, time, cron expression or zone that cannot be understood."""


def parse_frequency(text: str) -> timedelta:
    """'5m', '2h', '1d' -> timedelta. Only whole minutes, hours or days."""
    match = _FREQUENCY.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ScheduleError(f"{text!r} is not a frequency like '5m', '2h' or '1d'")
    count, unit = int(match.group(1)), _UNITS[match.group(2)]
    if count > MAX_FREQUENCY / timedelta(**{unit: 1}):
        raise ScheduleError(f"{text!r} is longer than the longest frequency, {MAX_FREQUENCY.days}d (about ten years)")
    return timedelta(**{unit: count})


def parse_time(text: str) -> time:
    """'HH:MM' (24-hour clock) -> time."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise ScheduleError(f"{text!r} is not a time like '03:30'")
    return time(int(match.group(1)), int(match.group(2)))


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        guess = did_you_mean(name, available_timezones())
        raise ScheduleError(f"{name!r} is not a known IANA time zone{guess}") from None


def truncate_to_minute(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


def to_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("naive datetime: schedules work on aware instants only")
    return instant.astimezone(UTC)


def wall_time_exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _is_ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    return wall.replace(tzinfo=zone, fold=0).utcoffset() != wall.replace(
        tzinfo=zone, fold=1
    ).utcoffset() and wall_time_exists(wall, zone)


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant a fixed wall time stands for: its first occurrence if it happens
    twice, the first valid instant after it if it does not happen at all."""
    while not wall_time_exists(wall, zone):
        wall += MINUTE  # gaps end on a whole minute; at most a few hours of steps
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def real_instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant at which a wall time really passes: none, one or two."""
    if not wall_time_exists(wall, zone):
        return []
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if not _is_ambiguous(wall, zone):
        return [first]
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return sorted({first, second})


class Schedule:
    """A job's slots. ``anchor`` is the job's first run (UTC, whole minute); schedules
    anchored at a wall time or a cron expression ignore it."""

    description: str

    def first_slot(self, seen: datetime) -> datetime:
        """The first slot of a job first seen at ``seen``."""
        raise NotImplementedError

    def next_after(self, instant: datetime, anchor: datetime) -> datetime | None:
        """The first slot strictly after ``instant``, or None if there is none."""
        raise NotImplementedError

    def latest_at_or_before(self, instant: datetime, anchor: datetime) -> datetime | None:
        """The last slot at or before ``instant``, or None if there is none."""
        raise NotImplementedError

    def slots_after(self, instant: datetime, anchor: datetime) -> Iterator[datetime]:
        """Lazily, every slot strictly after ``instant``, oldest first."""
        slot = self.next_after(instant, anchor)
        while slot is not None:
            yield slot
            slot = self.next_after(slot, anchor)

    def wall_times(self) -> list[time] | None:
        """The wall times it means on the days it runs, or None: it keeps real elapsed time."""
        return None

    def count(self, first: datetime, until: datetime, anchor: datetime, most: int | None = None) -> int:
        """How many slots from the slot ``first`` to ``until``, both included (at most
        ``most``), without listing them: walked once here, a few microseconds a slot."""
        if first > until:
            return 0
        following = takewhile(lambda slot: slot <= until, self.slots_after(first, anchor))
        return 1 + sum(1 for _ in (islice(following, most - 1) if most else following))

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """Every ``step`` of real elapsed time from the anchor."""

    step: timedelta
    description: str

    def first_slot(self, seen):
        return truncate_to_minute(seen)

    def next_after(self, instant, anchor):
        elapsed = to_utc(instant) - anchor
        steps = 0 if elapsed < timedelta(0) else elapsed // self.step + 1
        return anchor + steps * self.step

    def latest_at_or_before(self, instant, anchor):
        elapsed = to_utc(instant) - anchor
        if elapsed < timedelta(0):
            return None
        return anchor + (elapsed // self.step) * self.step

    def count(self, first, until, anchor, most=None):
        """By arithmetic on the grid, whatever the length of the range."""
        following = self.next_after(first, anchor)
        if first > until:
            return 0
        total = 1 if following > until else 2 + (self.latest_at_or_before(until, anchor) - following) // self.step
        return min(total, most) if most else total


@dataclass(frozen=True)
class CalendarSchedule(Schedule):
    """Every ``days`` calendar days at one wall time in ``zone``.

    With ``at`` the wall time is fixed; without it, it is the anchor's. The day grid
    starts on the anchor's local date (irrelevant when ``days`` is 1)."""

    days: int
    at: time | None
    zone: ZoneInfo
    description: str

    def _wall_and_start(self, anchor: datetime) -> tuple[time, date]:
        local = anchor.astimezone(self.zone)
        return (self.at or local.time().replace(second=0, microsecond=0)), local.date()

    def _slot(self, k: int, anchor: datetime) -> datetime:
        wall, start = self._wall_and_start(anchor)
        return resolve_wall_time(datetime.combine(start + timedelta(days=k * self.days), wall), self.zone)

    def _index_near(self, instant: datetime, anchor: datetime) -> int:
        _, start = self._wall_and_start(anchor)
        return (to_utc(instant).astimezone(self.zone).date() - start).days // self.days

    def wall_times(self):
        return [self.at] if self.at is not None else None

    def first_slot(self, seen):
        seen = truncate_to_minute(seen)
        if self.at is None:
            return seen
        return self.next_after(seen - MINUTE, seen)

    def next_after(self, instant, anchor):
        k = max(self._index_near(instant, anchor) - 1, 0)
        while (slot := self._slot(k, anchor)) <= instant:
            k += 1
        return slot

    def latest_at_or_before(self, instant, anchor):
        k = self._index_near(instant, anchor) + 1
        while k >= 0:
            slot = self._slot(k, anchor)
            if slot <= instant:
                return slot
            k -= 1
        return None


def parse_instant(text: str, default_zone=UTC) -> datetime:
    """ISO 8601 -> aware UTC instant, from EARLIEST to LATEST; a naive value is read in
    ``default_zone``."""
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise ScheduleError(f"{text!r} is not an ISO 8601 time like 2026-03-29T02:00:00+00:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_zone)
    try:
        instant = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first instant a datetime holds
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ScheduleError(
            f"{text!r} is out of the range of times crontabber works with ({EARLIEST:%Y} to {LATEST:%Y})"
        )
    return instant


def format_instant(instant: datetime) -> str:
    """The form passed as --run-time and --last-success: ISO 8601, UTC offset."""
    return to_utc(instant).isoformat()


@dataclass(frozen=True)
class UnionSchedule(Schedule):
    """Every slot of any of ``parts`` (each slot once)."""

    parts: tuple[Schedule, ...]
    description: str

    def first_slot(self, seen):
        return min(part.first_slot(seen) for part in self.parts)

    def wall_times(self):
        walls = [part.wall_times() for part in self.parts]
        return None if None in walls else sorted({wall for part in walls for wall in part})

    def next_after(self, instant, anchor):
        found = [s for part in self.parts if (s := part.next_after(instant, anchor)) is not None]
        return min(found, default=None)

    def latest_at_or_before(self, instant, anchor):
        found = [s for part in self.parts if (s := part.latest_at_or_before(instant, anchor)) is not None]
        return max(found, default=None)
