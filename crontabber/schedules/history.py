"""A job's schedule through its changes: the schedule in force at each time. Pure logic,
no Django import.

A change at ``at`` from ``before`` to ``after`` (an operator's override, a new schedule
or zone in the registry) keeps the old schedule's slots before ``at`` and takes the new
one's from ``at`` on, so a change never replays a slot of the new schedule that fell
before it, nor skips one of the old schedule still owed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .base import Schedule, ScheduleError

TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Switched(Schedule):
    """``before``'s slots until ``at`` (excluded), ``after``'s from then on."""

    before: Schedule
    after: Schedule
    at: datetime

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.after.description  # the state is computed for the schedule in force now

    def first_slot(self, seen):
        return self.after.first_slot(seen)

    def wall_times(self):
        return self.after.wall_times()

    def next_after(self, instant, anchor):
        if instant < self.at:
            slot = self.before.next_after(instant, anchor)
            if slot is not None and slot < self.at:
                return slot
        return self.after.next_after(max(instant, self.at - TICK), anchor)

    def latest_at_or_before(self, instant, anchor):
        if instant >= self.at:
            slot = self.after.latest_at_or_before(instant, anchor)
            if slot is not None and slot >= self.at:
                return slot
        return self.before.latest_at_or_before(min(instant, self.at - TICK), anchor)


def in_force(changes, current: Schedule, build) -> Schedule:
    """The schedule in force at each time. ``changes``: (at, description of the schedule
    it ended) oldest first; ``current``: the schedule in force now; ``build``: a
    description -> Schedule. One that cannot be built any more (its zone left the tz
    database) gives way to the schedule after it."""
    schedules = [current]
    for _, before in reversed(changes):
        try:
            schedules.insert(0, build(before))
        except ScheduleError:
            schedules.insert(0, schedules[0])
    schedule = schedules[0]
    for (at, _), following in zip(changes, schedules[1:], strict=True):
        schedule = Switched(schedule, following, at)
    return schedule
