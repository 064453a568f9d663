"""Cron expressions, read as Vixie cron reads them, in a zone (see schedule.py for the
DST rules). croniter parses the fields; finding the slots is ours."""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .base import (
    MINUTE,
    UTC,
    Schedule,
    ScheduleError,
    real_instants,
    resolve_wall_time,
    to_utc,
    truncate_to_minute,
    wall_time_exists,
)

MACROS = {
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
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
# Each field's lowest and highest value (day of week: 7 is Sunday too, but a wrap-around
# ends at Saturday).
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
# How far a search for the next matching day may look before the cron expression
# is declared unsatisfiable (Feb 29 on a Monday recurs within 28 years).
_MAX_DAYS_SEARCHED = 366 * 29


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A five-field cron expression (or a macro such as ``@daily``) read in ``zone``."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset  # ints and 'l' (last day of the month)
    months: frozenset  # empty = any
    days_of_week: frozenset  # every week (0 = Sunday); a field of only "5#2"/"L5" terms has none
    nth_weekday: dict  # day of week -> {n}: "5#2" is the second Friday, "L5" ({'l'}) the last
    days_and: bool  # both day fields must match (one of them starts with '*')
    real_time: bool  # minute or hour field starts with '*': keep real elapsed spacing
    zone: ZoneInfo
    description: str

    def __hash__(self):
        return hash(self.description)

    def wall_times(self):
        """Its fixed wall times; None when it keeps real elapsed time (a leading '*')."""
        return None if self.real_time else [time(h, m) for h in self.hours for m in self.minutes]

    def crontab(self) -> str:
        """The five fields as cron reads them, for tools that take cron text (Sentry)."""
        text = self.description.removeprefix("cron ").removesuffix(f" {self.zone.key}")
        return single_values_for_croniter(MACROS.get(text.lower(), text).split())

    def _day_matches(self, day: date) -> bool:
        if self.months and day.month not in self.months:
            return False
        if self.days_and:
            return self._day_of_month_matches(day) and self._day_of_week_matches(day)
        return self._day_of_month_matches(day) or self._day_of_week_matches(day)  # cron's OR of the day fields

    def _day_of_month_matches(self, day: date) -> bool:
        if day.day in self.days_of_month:
            return True
        return "l" in self.days_of_month and (day + timedelta(days=1)).month != day.month

    def _day_of_week_matches(self, day: date) -> bool:
        """A plain weekday matches every week; "3#1" or "L3" only its week ("1,2,3#1" is either)."""
        dow = (day.weekday() + 1) % 7
        if dow in self.days_of_week:
            return True
        nth = self.nth_weekday.get(dow, ())
        last = (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 + 1 in nth or ("l" in nth and last)

    def _day_slots(self, day: date) -> tuple[datetime, ...]:
        """The day's slots as sorted UTC instants (at most 1,440), each day worked out once
        for every job of the same expression (a tick asks for today's of each job, twice)."""
        return _slots_of_day(self, day)

    def _slots_of(self, day: date) -> tuple[datetime, ...]:
        midnight = datetime(day.year, day.month, day.day)
        offset = midnight.replace(tzinfo=self.zone).utcoffset()
        following = (midnight + timedelta(days=1)).replace(tzinfo=self.zone).utcoffset()
        if offset == following and wall_time_exists(midnight, self.zone):
            # No transition today (the common case): one offset for every wall time.
            base = (midnight - offset).replace(tzinfo=UTC)
            return tuple(base + timedelta(hours=h, minutes=m) for h in self.hours for m in self.minutes)
        slots: set[datetime] = set()
        for hour in self.hours:
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if self.real_time:
                    slots.update(real_instants(wall, self.zone))
                else:
                    slots.add(resolve_wall_time(wall, self.zone))
        return tuple(sorted(slots))

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
            slots = self._day_slots(day)
            later = bisect_right(slots, instant)
            if later < len(slots):
                return slots[later]
        return None

    def slots_after(self, instant, anchor=None):
        # Day by day rather than next_after() per slot: one day's work per day, each day
        # once (so not kept: a year's backlog would fill the days kept for other jobs).
        instant = to_utc(instant)
        day = instant.astimezone(self.zone).date() - timedelta(days=1)
        while True:
            matching = next(self._days(day, 1), None)
            if matching is None:
                return
            for slot in self._slots_of(matching):
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


# Bounded: a long-lived loop keeps at most this many days of slots (a few MB at worst).
@functools.lru_cache(maxsize=256)
def _slots_of_day(schedule: CronSchedule, day: date) -> tuple[datetime, ...]:
    return schedule._slots_of(day)


def _field_value(text: str, field: int):
    names = _NAMES.get(field, [])
    if text.lower() in names:
        return names.index(text.lower()) + (1 if field == 3 else 0)
    return int(text) if text.isdigit() else text.lower()


def single_values_for_croniter(fields: list[str]) -> str:
    """The expression with every one-value range ("5-5", "MON-MON/2") written as its
    value: croniter reads such a range as the whole cycle ("0 0 * * 6-6" as every day),
    cron (Debian, cronsim) as that one value."""

    def term(text: str, field: int) -> str:
        match = _RANGE.match(text)
        if match and _field_value(match[1], field) == _field_value(match[2], field):
            return match[1]
        return text

    return " ".join(",".join(term(text, i) for text in field.split(",")) for i, field in enumerate(fields))


def _ascii_text(expression) -> str:
    """Fields one space apart; other than ASCII refused, as Vixie cron splits on blanks only."""
    text = str(expression)
    for char in text:
        if not (" " <= char <= "~" or char in "\t\n\r\x0b\x0c"):
            name = unicodedata.name(char, "a control character")
            raise ScheduleError(
                f"{expression!r} contains {name} (U+{ord(char):04X}): write cron expressions in ASCII, "
                "with plain spaces between the fields"
            )
    return " ".join(text.split())


def _wrap_around(start: int, end: int, step: str, field: int) -> str:
    """The two upward ranges that say what a downward range such as "5-1" means."""
    low, high = _BOUNDS[field]
    suffix = f"/{step}" if step else ""
    if field == 4 and end == 0:
        return f"{start}-7{suffix}"  # "FRI-SUN": 7 is Sunday too
    first = f"{start}-{high}{suffix}" if start < high else str(start)
    second = f"{low}-{end}{suffix}" if end > low else str(low)
    return f"{first},{second}"


def _check_term(expression: str, term: str, field: int) -> None:
    """Refuse a zero step and a downward range, as Vixie cron does (croniter ignores or wraps them)."""
    span, _, step = term.partition("/")
    where = f"{term!r} in the {_FIELD_NAMES[field]} field"
    if step.isdigit() and int(step) == 0:
        raise ScheduleError(f"{expression!r}: {where} has a step of 0; a step must be 1 or more")
    first, dash, last = span.partition("-")
    start, end = _field_value(first, field), _field_value(last, field)
    top = 7 if field == 4 else _BOUNDS[field][1]
    if not dash or not all(isinstance(v, int) and _BOUNDS[field][0] <= v <= top for v in (start, end)):
        return  # not a range, or one croniter refuses with its own message
    if start > end:
        raise ScheduleError(
            f"{expression!r}: {where} runs downward; ranges go up, so write a wrap-around as two "
            f"ranges: {_wrap_around(start, end, step, field)!r}"
        )


def _weekday_terms(field: str) -> tuple[str, str]:
    """Plain terms ("1,2") apart from n-th/last ones ("3#1", "L5"): croniter refuses them mixed."""
    terms = field.split(",")
    special = [term for term in terms if "#" in term or term.lower().startswith("l")]
    return ",".join(term for term in terms if term not in special), ",".join(special)


def _expand(expression: str, fields: list[str]):
    """croniter's reading of five fields, its errors as one-line ScheduleErrors."""
    from croniter import croniter  # croniter parses the fields; iteration is ours

    try:
        return croniter.expand(single_values_for_croniter(fields))
    except Exception as error:  # croniter raises several unrelated types
        raise ScheduleError(f"{expression!r} is not a valid cron expression: {error}") from None


def _values(field: list, every=()) -> frozenset:
    """A field croniter expanded; a '*' anywhere in its list is the whole field ("*,5")."""
    return frozenset(every) if "*" in field else frozenset(field)


def _fields(expression, text: str) -> list[str]:
    """The five fields of an expression or macro, each term checked."""
    fields = MACROS.get(text.lower(), text).split()
    if len(fields) != 5 or text.lower() == "@reboot":
        raise ScheduleError(f"{expression!r} is not a five-field cron expression or a macro such as '@daily'")
    if "w" in fields[2].lower():
        # croniter accepts "15W" (the weekday nearest the 15th) but expands it to plain 15.
        raise ScheduleError(f"{expression!r}: 'W' (nearest weekday) is not supported")
    for index, field in enumerate(fields):
        for term in field.split(","):
            _check_term(expression, term, index)
    return fields


def parse_cron(expression: str, zone: ZoneInfo) -> CronSchedule:
    """A cron expression read as Vixie cron reads it; ScheduleError (one line) if it cannot be."""
    text = _ascii_text(expression)
    fields = _fields(expression, text)
    plain, special = _weekday_terms(fields[4])
    (minutes, hours, dom, months, dow), _ = _expand(expression, [*fields[:4], plain or "*"])
    nth = _expand(expression, ["0", "0", "*", "*", special])[1] if special else {}
    schedule = CronSchedule(
        minutes=tuple(sorted(_values(minutes, range(60)))),
        hours=tuple(sorted(_values(hours, range(24)))),
        # croniter also writes '*' for a day field that only covers every day ("0/1"
        # beside "1,*/2"); spelled out, it still takes part in the OR of the day fields.
        days_of_month=_values(dom, range(1, 32)),
        months=_values(months),
        days_of_week=_values(dow, range(7)) if plain else frozenset(),
        nth_weekday={day: frozenset(ns) for day, ns in nth.items()},
        # As in Vixie cron: by the field's first character, so "*,5" is a '*' and "5,*" is not.
        days_and=fields[2].startswith("*") or fields[4].startswith("*"),
        real_time=fields[0].startswith("*") or fields[1].startswith("*"),
        zone=zone,
        description=f"cron {text} {zone.key}",
    )
    # Every day has at least one matching time, so a matching day is enough to know.
    if next(schedule._days(date(2026, 1, 1), 1), None) is None:
        raise ScheduleError(f"{expression!r} never matches a real date")
    return schedule
