"""What became of a job's latest slots: the admin's slot strip and grid, without the database.

The schedule says which slots there were (``recent_slots``: at most ``count`` steps back
from now, whatever the schedule); the attempts say what came of them (Log rows read for a
whole page at once: ``LogQuerySet.at_slots_since``); the job's next slot says which of the
others are still to run. Slots nobody attempted are classed here, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..registry import JobSpec

BACKLOG = "backlog"  # due and not run yet
COALESCED = "coalesced"  # a job without backfill runs once, for the latest of its due slots
NOT_RUN = "not run"  # a backfill job's slot passed over: marked succeeded before it, or reset
_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cell:
    slot: datetime
    state: str  # the outcome of the slot's latest attempt (or row covering it), or BACKLOG, COALESCED, NOT_RUN
    attempt: object = None  # that attempt or row (id, outcome, duration, attempt, error_type...); None: not run
    duration: float = 0.0  # seconds; a running attempt's so far


def recent_slots(spec: JobSpec, job, now: datetime, count: int) -> list[datetime]:
    """The job's last ``count`` slots at or before ``now`` on its schedule, oldest first;
    none before its first run (a job that never ran has none)."""
    if job.first_run is None:
        return []
    anchor, slots = job.anchor(now), []
    slot = spec.schedule.latest_at_or_before(now, anchor)
    while slot is not None and slot >= job.first_run and len(slots) < count:
        slots.append(slot)
        slot = spec.schedule.latest_at_or_before(slot - _BEFORE, anchor)
    return slots[::-1]


def cells(spec: JobSpec, job, slots: list[datetime], attempts, now: datetime, count: int) -> list[Cell]:
    """The last ``count`` slots, oldest first: the schedule's ``slots`` and any other slot
    attempted since the first of them (a run-now, an old schedule's), each with its latest
    attempt, or classed as backlog, coalesced or not run. ``attempts``: the job's Log rows
    at those slots, oldest first."""
    latest = {row.slot: row for row in attempts}  # oldest first: the latest attempt wins
    spans = [row for row in attempts if row.since is not None]  # rows covering slots from since to slot
    shown = sorted(set(slots) | set(latest))[-count:]
    due = slots[-1] if slots else None
    return [
        _attempted(slot, latest[slot], now) if slot in latest else _unattempted(spec, job, slot, due, spans)
        for slot in shown
    ]


def _unattempted(spec: JobSpec, job, slot: datetime, due: datetime | None, spans) -> Cell:
    """A slot without an attempt of its own: covered by a row of several (missed, paused), or classed."""
    covering = next((row for row in reversed(spans) if row.since <= slot <= row.slot), None)
    return Cell(slot, covering.outcome, covering) if covering else Cell(slot, _unrun(spec, job, slot, due))


def _attempted(slot: datetime, row, now: datetime) -> Cell:
    running = row.outcome == "running"
    duration = (now - row.started_at).total_seconds() if running else row.duration
    return Cell(slot, row.outcome, row, max(duration, 0.0))


def _unrun(spec: JobSpec, job, slot: datetime, due: datetime | None) -> str:
    """A slot nobody attempted: still to run, or passed over (coalesced into a later run)."""
    pending = job.next_slot is None or slot >= job.next_slot
    if spec.backfill:
        return BACKLOG if pending else NOT_RUN
    return BACKLOG if pending and slot == due else COALESCED
