"""Schedules: which instants ("slots") a job is meant to run at.

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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = UTC
MINUTE = timedelta(minutes=1)
_FREQUENCY = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A range in one term of a field: "5-5", "MON-FRI/2" (names are read by _field_value).
_RANGE = re.compile(r"^(\w+)-(\w+)(/\d+)?$")
_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
# How far a search for the next matching day may look before the cron expression
# is declared unsatisfiable (Feb 29 on a Monday recurs within 28 years).
_MAX_DAYS_SEARCHED = 366 * 29


class ScheduleError(ValueError):
    """A frequency, time, cron expression or zone that cannot be understood."""


def parse_frequency(text: str) -> timedelta:
    """'5m', '2h', '1d' -> timedelta. Only whole minutes, hours or days."""
    match = _FREQUENCY.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ScheduleError(f"{text!r} is not a frequency like '5m', '2h' or '1d'")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


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
        raise ScheduleError(f"{name!r} is not a known IANA time zone") from None


def truncate_to_minute(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


def to_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("naive datetime: schedules work on aware instants only")
    return instant.astimezone(UTC)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _is_ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    return wall.replace(tzinfo=zone, fold=0).utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset() and _exists(
        wall, zone
    )


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant a fixed wall time stands for: its first occurrence if it happens
    twice, the first valid instant after it if it does not happen at all."""
    while not _exists(wall, zone):
        wall += MINUTE  # gaps end on a whole minute; at most a few hours of steps
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def real_instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant at which a wall time really passes: none, one or two."""
    if not _exists(wall, zone):
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


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A five-field cron expression (or a macro such as ``@daily``) read in ``zone``."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset  # ints and 'l' (last day of the month); empty = any
    months: frozenset  # empty = any
    days_of_week: frozenset  # 0 = Sunday; empty = any
    nth_weekday: dict  # day of week -> {n}: "5#2" is the second Friday, "L5" ({'l'}) the last
    days_and: bool  # both day fields must match (one of them starts with '*')
    real_time: bool  # minute or hour field starts with '*': keep real elapsed spacing
    zone: ZoneInfo
    description: str

    def __hash__(self):
        return hash(self.description)

    def _day_matches(self, day: date) -> bool:
        if self.months and day.month not in self.months:
            return False
        dom_ok = (
            not self.days_of_month
            or day.day in self.days_of_month
            or ("l" in self.days_of_month and (day + timedelta(days=1)).month != day.month)
        )
        dow = (day.weekday() + 1) % 7
        nth = self.nth_weekday.get(dow)
        last = (day + timedelta(days=7)).month != day.month
        dow_ok = not self.days_of_week or (
            dow in self.days_of_week and (not nth or (day.day - 1) // 7 + 1 in nth or ("l" in nth and last))
        )
        if self.days_and or not self.days_of_month or not self.days_of_week:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def _day_slots(self, day: date) -> list[datetime]:
        """The day's slots as sorted UTC instants (at most 1,440)."""
        midnight = datetime(day.year, day.month, day.day)
        offset = midnight.replace(tzinfo=self.zone).utcoffset()
        following = (midnight + timedelta(days=1)).replace(tzinfo=self.zone).utcoffset()
        if offset == following and _exists(midnight, self.zone):
            # No transition today (the common case): one offset for every wall time.
            base = (midnight - offset).replace(tzinfo=UTC)
            return [base + timedelta(hours=h, minutes=m) for h in self.hours for m in self.minutes]
        slots: set[datetime] = set()
        for hour in self.hours:
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if self.real_time:
                    slots.update(real_instants(wall, self.zone))
                else:
                    slots.add(resolve_wall_time(wall, self.zone))
        return sorted(slots)

    def _days(self, start: date, step: int) -> Iterator[date]:
        for offset in range(_MAX_DAYS_SEARCHED):
            day = start + timedelta(days=offset * step)
            if self._day_matches(day):
                yield day

    def first_slot(self, seen):
        return self.next_after(truncate_to_minute(seen) - MINUTE, seen)

    def next_after(self, instant, anchor=None):
        instant = to_utc(instant)
        # A day's slots can fall before local midnight (a skipped hour resolved
        # forward), so start one day early.
        start = instant.astimezone(self.zone).date() - timedelta(days=1)
        for day in self._days(start, 1):
            for slot in self._day_slots(day):
                if slot > instant:
                    return slot
        return None

    def slots_after(self, instant, anchor=None):
        # Day by day rather than next_after() per slot: one day's work per day.
        instant = to_utc(instant)
        day = instant.astimezone(self.zone).date() - timedelta(days=1)
        while True:
            matching = next(self._days(day, 1), None)
            if matching is None:
                return
            for slot in self._day_slots(matching):
                if slot > instant:
                    yield slot
            day = matching + timedelta(days=1)

    def latest_at_or_before(self, instant, anchor=None):
        instant = to_utc(instant)
        start = instant.astimezone(self.zone).date() + timedelta(days=1)
        for day in self._days(start, -1):
            for slot in reversed(self._day_slots(day)):
                if slot <= instant:
                    return slot
        return None


def _field_value(text: str, field: int):
    names = _NAMES.get(field, [])
    if text.lower() in names:
        return names.index(text.lower()) + (1 if field == 3 else 0)
    return int(text) if text.isdigit() else text.lower()


def _single_values_for_croniter(fields: list[str]) -> str:
    """The expression with every one-value range ("5-5", "MON-MON/2") written as its
    value: croniter reads such a range as the whole cycle ("0 0 * * 6-6" as every day),
    cron (Debian, cronsim) as that one value."""

    def term(text: str, field: int) -> str:
        match = _RANGE.match(text)
        if match and _field_value(match[1], field) == _field_value(match[2], field):
            return match[1]
        return text

    return " ".join(",".join(term(text, i) for text in field.split(",")) for i, field in enumerate(fields))


def parse_cron(expression: str, zone: ZoneInfo) -> CronSchedule:
    from croniter import croniter  # croniter parses the fields; iteration is ours

    text = " ".join(str(expression).split())
    fields_text = _MACROS.get(text.lower(), text)
    fields = fields_text.split()
    if len(fields) != 5 or text.lower() == "@reboot":
        raise ScheduleError(f"{expression!r} is not a five-field cron expression or a macro such as '@daily'")
    if "w" in fields[2].lower():
        # croniter accepts "15W" (the weekday nearest the 15th) but expands it to plain 15.
        raise ScheduleError(f"{expression!r}: 'W' (nearest weekday) is not supported")
    try:
        expanded, nth = croniter.expand(_single_values_for_croniter(fields))
    except Exception as error:  # croniter raises several unrelated types
        raise ScheduleError(f"{expression!r} is not a valid cron expression: {error}") from None

    def values(field, every=()):
        return frozenset(every) if field == ["*"] else frozenset(field)

    minutes, hours, dom, months, dow = expanded
    schedule = CronSchedule(
        minutes=tuple(range(60)) if minutes == ["*"] else tuple(sorted(minutes)),
        hours=tuple(range(24)) if hours == ["*"] else tuple(sorted(hours)),
        # croniter also writes '*' for a day field that only covers every day ("0/1"
        # beside "1,*/2"); spelled out, it still takes part in the OR of the day fields.
        days_of_month=values(dom, range(1, 32)),
        months=values(months),
        days_of_week=values(dow, range(7)),
        nth_weekday={day: frozenset(ns) for day, ns in nth.items()},
        days_and=fields[2].startswith("*") or fields[4].startswith("*"),
        real_time=fields[0].startswith("*") or fields[1].startswith("*"),
        zone=zone,
        description=f"cron {text} {zone.key}",
    )
    # Every day has at least one matching time, so a matching day is enough to know.
    if next(schedule._days(date(2026, 1, 1), 1), None) is None:
        raise ScheduleError(f"{expression!r} never matches a real date")
    return schedule


def build_schedule(
    frequency: str | None = None,
    at: str | None = None,
    cron: str | None = None,
    zone: str = "UTC",
) -> Schedule:
    """A schedule from registry values. Raises ScheduleError naming what is wrong."""
    tz = parse_zone(zone)
    if cron is not None:
        if frequency is not None or at is not None:
            raise ScheduleError("'cron' cannot be combined with 'frequency' or 'time'")
        return parse_cron(cron, tz)
    frequency = "1d" if frequency is None else frequency
    step = parse_frequency(frequency)
    wall = parse_time(at) if at is not None else None
    # The unit decides, not the length: "24h" is a real-time grid like "1h"; "1d" steps
    # calendar days (23 or 25 hours long when the clocks change).
    if _FREQUENCY.match(str(frequency)).group(2) == "d":
        days = step.days
        where = f" at {wall:%H:%M}" if wall else ""
        return CalendarSchedule(days, wall, tz, f"every {frequency.strip()}{where} {tz.key}")
    if wall is not None:
        raise ScheduleError(f"'time' needs a frequency in whole days ('1d', '7d'), not {frequency!r}")
    return IntervalSchedule(step, f"every {frequency.strip()}")


def parse_instant(text: str, default_zone=UTC) -> datetime:
    """ISO 8601 -> aware UTC instant; a naive value is read in ``default_zone``."""
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise ScheduleError(f"{text!r} is not an ISO 8601 time like 2026-03-29T02:00:00+00:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_zone)
    return value.astimezone(UTC)


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

    def next_after(self, instant, anchor):
        found = [s for part in self.parts if (s := part.next_after(instant, anchor)) is not None]
        return min(found, default=None)

    def latest_at_or_before(self, instant, anchor):
        found = [s for part in self.parts if (s := part.latest_at_or_before(instant, anchor)) is not None]
        return max(found, default=None)


def build_override(text: str, zone: str = "UTC") -> Schedule:
    """An operator's schedule override: an interval ('30m', '2h', '1d') or daily wall
    times ('03:00' or '03:00,15:30'), read in ``zone``."""
    text = str(text).strip()
    if ":" not in text:
        return build_schedule(frequency=text, zone=zone)
    times = sorted({parse_time(part) for part in text.split(",") if part.strip()})
    if not times:
        raise ScheduleError(f"{text!r} is neither times like '03:00,15:30' nor an interval like '2h'")
    parts = tuple(build_schedule(frequency="1d", at=f"{t:%H:%M}", zone=zone) for t in times)
    if len(parts) == 1:
        return parts[0]
    return UnionSchedule(parts, f"daily at {','.join(f'{t:%H:%M}' for t in times)} {parse_zone(zone).key}")
