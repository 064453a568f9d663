"""Schedules: which instants ("slots") a job runs at, in its zone, through clock changes.
Pure logic, no Django import: base.py has the rules and the interval, calendar and union
schedules, cron.py the cron expressions, history.py a schedule through its changes,
clocks.py what clock changes do to slots; this module builds one from registry values
or from its description."""

from __future__ import annotations

import re

from .base import (
    MINUTE,
    UTC,
    CalendarSchedule,
    IntervalSchedule,
    Schedule,
    ScheduleError,
    UnionSchedule,
    format_instant,
    parse_frequency,
    parse_instant,
    parse_time,
    parse_zone,
    truncate_to_minute,
)
from .cron import CronSchedule, parse_cron
from .history import Switched, in_force

__all__ = [
    "MINUTE",
    "UTC",
    "CalendarSchedule",
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "ScheduleError",
    "Switched",
    "UnionSchedule",
    "build_override",
    "build_schedule",
    "from_description",
    "in_force",
    "format_instant",
    "parse_frequency",
    "parse_instant",
    "parse_time",
    "parse_zone",
    "truncate_to_minute",
]


def build_schedule(
    frequency: str | None = None, at: str | None = None, cron: str | None = None, zone="UTC"
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
    if frequency.strip().endswith("d"):
        where = f" at {wall:%H:%M}" if wall else ""
        return CalendarSchedule(step.days, wall, tz, f"every {frequency.strip()}{where} {tz.key}")
    if wall is not None:
        raise ScheduleError(f"'time' needs a frequency in whole days ('1d', '7d'), not {frequency!r}")
    return IntervalSchedule(step, f"every {frequency.strip()}")


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


# Each form of Schedule.description, and how to build the schedule it stands for.
_DESCRIPTIONS = (
    (re.compile(r"cron (.+) (\S+)"), lambda m: parse_cron(m[1], parse_zone(m[2]))),
    (re.compile(r"daily at (\S+) (\S+)"), lambda m: build_override(m[1], m[2])),
    (re.compile(r"every (\d+[mh])"), lambda m: build_schedule(frequency=m[1])),
    (re.compile(r"every (\d+d)(?: at (\S+))? (\S+)"), lambda m: build_schedule(frequency=m[1], at=m[2], zone=m[3])),
)


def from_description(text: str) -> Schedule:
    """The schedule a description stands for (a Job row keeps the description of the
    schedule its state was computed for): 'every 5m', 'every 1d at 03:00 Europe/Berlin',
    'daily at 03:00,15:30 UTC', 'cron 0 3 * * * UTC'. ScheduleError if it is none of them."""
    for pattern, build in _DESCRIPTIONS:
        match = pattern.fullmatch(str(text))
        if match:
            return build(match)
    raise ScheduleError(f"{text!r} is not the description of a schedule")
