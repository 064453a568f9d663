"""What clock changes do to a job's slots, told ahead: which coming slots a change of
the clocks moves (a wall time that does not happen) or merges (several wall times, or
one that happens twice, run once). Pure logic, no Django import; cronlist --next and the
system check read it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo

from .base import MINUTE, UTC, Schedule, UnionSchedule, resolve_wall_time, wall_time_exists
from .history import Switched

YEAR = timedelta(days=366)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Coming:
    """A coming slot and what a clock change does to it ('' when nothing)."""

    slot: datetime
    zone: ZoneInfo | None
    note: str

    def local(self) -> str:
        shown = self.slot.astimezone(self.zone) if self.zone else self.slot
        return f"{shown:%Y-%m-%d %H:%M} {shown.tzname()}"


def zone_of(schedule: Schedule) -> ZoneInfo | None:
    """The zone a schedule's wall times are read in; None for real elapsed time."""
    if isinstance(schedule, Switched):
        return zone_of(schedule.after)
    if isinstance(schedule, UnionSchedule):
        return zone_of(schedule.parts[0])
    return getattr(schedule, "zone", None)


def clock_changes_on(day: date, zone: ZoneInfo) -> bool:
    """The zone's clocks change on that local day (at midnight included)."""
    midnight = datetime.combine(day, time())
    after = (midnight + DAY).replace(tzinfo=zone).utcoffset()
    return midnight.replace(tzinfo=zone).utcoffset() != after or not wall_time_exists(midnight, zone)


def _hhmm(walls: list[time]) -> str:
    return " and ".join(f"{wall:%H:%M}" for wall in walls)


def _at(slot: datetime, zone: ZoneInfo) -> str:
    local = slot.astimezone(zone)
    return f"{local:%H:%M} {local.tzname()} ({slot:%H:%M} UTC)"


def fixed_note(walls: list[time], slot: datetime, zone: ZoneInfo) -> str:
    """What the clock change on the slot's day does to the fixed wall times it stands for."""
    day = slot.astimezone(zone).date()
    mine = [wall for wall in walls if resolve_wall_time(datetime.combine(day, wall), zone) == slot]
    missing = [wall for wall in mine if not wall_time_exists(datetime.combine(day, wall), zone)]
    if missing:
        return _moved(missing, [wall for wall in mine if wall not in missing], slot, zone)
    return _repeated(mine, slot, zone)


def _moved(missing: list[time], kept: list[time], slot: datetime, zone: ZoneInfo) -> str:
    one = len(missing) == 1
    runs = f"with {_hhmm(kept)}, once, " if kept else ("" if one else "once, ")
    said = f"{'it runs' if one else 'they run'} {runs}at {_at(slot, zone)} that day"
    day = slot.astimezone(zone).date()
    return f"{_hhmm(missing)} {zone.key} {'does' if one else 'do'} not exist on {day} (the clocks go forward); {said}"


def _repeated(walls: list[time], slot: datetime, zone: ZoneInfo) -> str:
    local = slot.astimezone(zone)
    twice = [
        w for w in walls if datetime.combine(local.date(), w, zone).replace(fold=1).utcoffset() != local.utcoffset()
    ]
    if not twice:
        return ""
    return (
        f"{_hhmm(twice)} {zone.key} happens twice on {slot.astimezone(zone).date()} (the clocks go back); "
        f"it runs once, at the first: {_at(slot, zone)}"
    )


def real_time_note(schedule: Schedule, slot: datetime, zone: ZoneInfo, anchor: datetime) -> str:
    """A slot of real elapsed time just after the clocks changed: wall times skipped or repeated."""
    previous = schedule.latest_at_or_before(slot - timedelta(microseconds=1), anchor)
    if previous is None or previous.astimezone(zone).utcoffset() == slot.astimezone(zone).utcoffset():
        return ""
    forward = slot.astimezone(zone).utcoffset() > previous.astimezone(zone).utcoffset()
    what = "go forward: the skipped wall times do not run" if forward else "go back: the repeated wall times run again"
    return f"the clocks {what} (real elapsed time is kept, as cron does); next at {_at(slot, zone)}"


def clock_note(schedule: Schedule, slot: datetime, anchor: datetime) -> str:
    """What a clock change does to ``slot``: '' when nothing."""
    zone = zone_of(schedule)
    if zone is None or not clock_changes_on(slot.astimezone(zone).date(), zone):
        return ""
    walls = schedule.wall_times()  # None: it keeps real elapsed time
    return fixed_note(walls, slot, zone) if walls is not None else real_time_note(schedule, slot, zone, anchor)


def coming(schedule: Schedule, after: datetime, anchor: datetime, count: int) -> list[Coming]:
    """The next ``count`` slots after ``after``, each with what a clock change does to it."""
    zone = zone_of(schedule)
    slots = islice(schedule.slots_after(after, anchor), count)
    return [Coming(slot, zone, clock_note(schedule, slot, anchor)) for slot in slots]


@functools.lru_cache(maxsize=512)
def clock_change_days(zone: ZoneInfo, first: date, days: int) -> tuple[date, ...]:
    """The local days from ``first`` on (``days`` of them) on which the zone's clocks
    change: worked out once per zone and day, however many jobs share the zone."""
    return tuple(day for day in (first + k * DAY for k in range(days)) if clock_changes_on(day, zone))


def slots_on(schedule: Schedule, day: date, zone: ZoneInfo, now: datetime) -> list[datetime]:
    """The schedule's slots on a local day, from ``now`` on."""
    start = max(datetime.combine(day, time(), zone), now) - timedelta(microseconds=1)
    end = datetime.combine(day + DAY, time(), zone)
    return list(takewhile(lambda slot: slot < end, schedule.slots_after(start.astimezone(UTC), now)))


def clock_warnings(schedule: Schedule, now: datetime) -> list[str]:
    """For a fixed-time schedule: each coming slot within a year that a clock change moves
    or merges, said with what will happen and when."""
    zone, walls = zone_of(schedule), schedule.wall_times()
    if zone is None or walls is None:
        return []
    notes = []
    for day in clock_change_days(zone, now.astimezone(zone).date(), YEAR.days):
        if not affected_walls(zone, day).isdisjoint(walls):  # most jobs: no slot to look at
            notes += [note for slot in slots_on(schedule, day, zone, now) if (note := fixed_note(walls, slot, zone))]
    return notes


@functools.lru_cache(maxsize=512)
def affected_walls(zone: ZoneInfo, day: date) -> frozenset[time]:
    """The wall times of a day that do not happen or happen twice in the zone: those
    between the clock change's old and new wall time (once per zone and day)."""
    start = datetime.combine(day - DAY, time(12), zone).astimezone(UTC)
    end = datetime.combine(day + DAY, time(12), zone).astimezone(UTC)
    before, after = start.astimezone(zone).utcoffset(), end.astimezone(zone).utcoffset()
    while end - start > MINUTE:  # the instant of the change, to the minute
        middle = start + (end - start) // MINUTE // 2 * MINUTE
        start, end = (middle, end) if middle.astimezone(zone).utcoffset() == before else (start, middle)
    first, last = (end + min(before, after)).replace(tzinfo=None), (end + max(before, after)).replace(tzinfo=None)
    walls = (first + k * MINUTE for k in range((last - first) // MINUTE))
    return frozenset(wall.time() for wall in walls if wall.date() == day)
