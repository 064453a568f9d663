"""Which jobs a tick runs, and which of their slots: pure functions of the registry, the
jobs' rows and the clock (no Django import), shared by real ticks, dry runs and re-runs."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, islice, takewhile
from typing import TYPE_CHECKING

from ..schedules import format_instant

if TYPE_CHECKING:
    from ..registry import JobSpec


@dataclass(frozen=True)
class Due:
    spec: JobSpec
    forced: bool  # runs even if no slot is due: --force, or an operator's "run now"


NEVER = datetime.max.replace(tzinfo=UTC)  # when a disabled job is due (a forced one runs anyway)
_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Span:
    """A job's slots that did not run, from the oldest to the newest: one Log row (missed or paused)."""

    since: datetime
    until: datetime
    covers: int  # how many slots


def span(spec: JobSpec, first: datetime, last: datetime | None, anchor: datetime) -> Span | None:
    """The job's slots from the slot ``first`` to the slot ``last``, counted; None when there are none."""
    if last is None or last < first:
        return None
    return Span(first, last, spec.schedule.count(first, last, anchor))


def missed(spec: JobSpec, next_slot: datetime | None, anchor: datetime, now: datetime) -> Span | None:
    """The due slots that can no longer start within the job's starting_deadline: of a
    backfill job each one older than the deadline; of another, all its due slots when the
    latest, its one run, is that old. None when none are (or it has no deadline)."""
    if spec.starting_deadline is None:
        return None
    cutoff = now - timedelta(seconds=spec.starting_deadline)  # a slot before it is late
    last = spec.schedule.latest_at_or_before(cutoff - _BEFORE if spec.backfill else now, anchor)
    if last is not None and last >= cutoff:
        return None
    return span(spec, next_slot or spec.schedule.first_slot(now), last, anchor)


def paused(spec: JobSpec, next_slot: datetime | None, anchor: datetime, now: datetime) -> Span | None:
    """The slots that fell due while the job was off (disabled or held): from its next slot
    to the latest due now. None when none did."""
    if next_slot is None:
        return None
    return span(spec, next_slot, spec.schedule.latest_at_or_before(now, anchor), anchor)


def late(spec: JobSpec, slot: datetime, now: datetime) -> bool:
    """The slot could not start within the job's starting_deadline of falling due."""
    return spec.starting_deadline is not None and now - slot > timedelta(seconds=spec.starting_deadline)


@dataclass(frozen=True)
class Plan:
    """The jobs to run now, and the enabled job not due now that is due first (found in the
    same pass: an idle tick at 10,000 jobs looks at each once)."""

    due: list[Due]
    soonest: tuple[datetime, str] | None  # (when, name)


def plan(specs: list[JobSpec], rows: dict, now: datetime, force: bool = False) -> Plan:
    """The jobs to run now, each after the due jobs it depends on. ``specs``: the jobs as
    operators changed them (registry.effective_spec); ``rows``: each job's tick row by name
    (JobQuerySet.tick_rows). A job without one, or without a next run (reset), is new
    and due at its first slot."""
    due, soonest = [], (NEVER, "")
    for spec in specs:
        row = rows.get(spec.name)
        forced = force or (row is not None and row.run_requested is not None)  # or an operator's "run now"
        when = next_run(spec, row, now) if spec.enabled else NEVER
        if forced or when <= now:
            due.append(Due(spec, forced))
        elif when < soonest[0]:
            soonest = (when, spec.name)
    return Plan(in_dependency_order(due), soonest if soonest[0] < NEVER else None)


def next_run(spec: JobSpec, row, now: datetime) -> datetime:
    """When the job is next due: its row's next run, or a new (or reset) job's first slot."""
    return row.next_run if row is not None and row.next_run is not None else spec.schedule.first_slot(now)


def next_due(planned: Plan, rows: dict, now: datetime, ran: dict) -> tuple[str, datetime] | None:
    """The enabled job due next after the tick: of the jobs that were due, one that ran at
    its new next run (``ran``: name -> next run), another at its row's; else the soonest of
    the others."""
    when, name = min(next_runs(planned, rows, now, ran), default=(None, ""))
    return (name, when) if when is not None else None


def next_wake(planned: Plan, rows: dict, now: datetime, ran: dict) -> datetime | None:
    """When the first job this runner knows of falls due after ``now``: a due job that ran
    elsewhere or waits (for a dependency, a claim) is not counted, else a loop would spin."""
    return min((when for when, _ in next_runs(planned, rows, now, ran) if when > now), default=None)


def next_runs(planned: Plan, rows: dict, now: datetime, ran: dict) -> list[tuple[datetime, str]]:
    """(next run, name) of each enabled job that was due, and of the soonest of the others."""
    found = [
        (
            ran[item.spec.name] if item.spec.name in ran else next_run(item.spec, rows.get(item.spec.name), now),
            item.spec.name,
        )
        for item in planned.due
        if item.spec.enabled
    ]
    found += [planned.soonest] if planned.soonest else []
    return [item for item in found if item[0] is not None]


def sleep_seconds(now: datetime, interval: float, wake: datetime | None, poll: float | None) -> float:
    """How long a loop that ended a tick at ``now`` sleeps: to the next multiple of
    ``interval`` of the clock (so runners tick together), or sooner to ``wake`` (the next
    slot it knows of) or after ``poll`` (attempts wait on task workers); never below 0."""
    seconds = interval - now.timestamp() % interval
    if wake is not None:
        seconds = min(seconds, (wake - now).total_seconds())
    if poll is not None:
        seconds = min(seconds, poll)
    return max(seconds, 0.0)


def in_dependency_order(due: list[Due]) -> list[Due]:
    """Each job right after the due jobs it depends on, registry order otherwise."""
    by_name = {item.spec.name: item for item in due}
    placed: dict[str, Due] = {}

    def place(item: Due) -> None:
        if item.spec.name not in placed:
            for dep in item.spec.depends_on:
                if dep in by_name:
                    place(by_name[dep])
            placed[item.spec.name] = item

    for item in due:
        place(item)
    return list(placed.values())


def slots_to_run(
    spec: JobSpec, next_slot: datetime | None, anchor: datetime, now: datetime, forced: bool
) -> Iterator[datetime]:
    """The slots to run now, oldest first, lazily: every due one for a backfill job (at
    most max_backfill), else the latest due one. Forced with nothing due: one extra run of
    the latest slot of its schedule (a real one, which a backfill job computes its window
    from), or of this moment if there is none yet; the grid stays put either way."""
    pending = next_slot or spec.schedule.first_slot(now)
    if spec.backfill:
        due = takewhile(lambda slot: slot <= now, chain([pending], spec.schedule.slots_after(pending, anchor)))
        slots = islice(due, spec.max_backfill) if spec.max_backfill else due
    else:
        latest = spec.schedule.latest_at_or_before(now, anchor)
        slots = iter([latest] if latest is not None and latest >= pending else [])
    first = next(slots, None)
    if first is None and forced:
        return iter([spec.schedule.latest_at_or_before(now, anchor) or now.replace(microsecond=0)])
    if first is None:
        return iter([])
    return chain([first], slots)


def slots_between(spec: JobSpec, start: datetime, end: datetime, anchor: datetime) -> Iterator[datetime]:
    """The slots a re-run of ``start`` to ``end`` (both included) runs, oldest first,
    lazily: every one for a backfill job; for another job (which is not told its slot,
    so runs the same way for any) one run, for the latest, as a tick coalesces them."""
    if not spec.backfill:
        latest = spec.schedule.latest_at_or_before(end, anchor)
        return iter([latest] if latest is not None and latest >= start else [])
    return takewhile(lambda slot: slot <= end, spec.schedule.slots_after(start - timedelta(microseconds=1), anchor))


def count_between(spec: JobSpec, start: datetime, end: datetime, anchor: datetime, most: int | None = None) -> int:
    """How many slots slots_between yields (at most ``most``), counted, not listed."""
    first = next(slots_between(spec, start, end, anchor), None)
    return 0 if first is None else backlog(spec, first, end, anchor, most)


def backlog(spec: JobSpec, first: datetime, until: datetime, anchor: datetime, most: int | None = None) -> int:
    """How many runs the job's slots from the slot ``first`` to ``until`` take (at most
    ``most``): each one for a backfill job, counted without listing them; one for another
    job, which runs once for the latest."""
    if not spec.backfill:
        return 1 if first <= until else 0
    return spec.schedule.count(first, until, anchor, most)


class Upcoming:
    """A job's slots to run, oldest first, taken one by one; the next few can be looked at
    before they are taken (to open their rows together), keeping only those in memory."""

    def __init__(self, slots: Iterable[datetime]):
        self._rest, self._seen = iter(slots), deque()

    def __iter__(self) -> Iterator[datetime]:
        return self

    def __next__(self) -> datetime:
        return self._seen.popleft() if self._seen else next(self._rest)

    def peek(self, most: int) -> list[datetime]:
        """The next ``most`` slots (fewer if fewer are left), not taken."""
        self._seen.extend(islice(self._rest, max(most - len(self._seen), 0)))
        return list(islice(self._seen, most))


def numbered(slots: Upcoming, count) -> Iterator[tuple[datetime, int, int]]:
    """Each slot with its position and the number of slots when there are several,
    counted once by ``count`` (from the first slot; None: never more than one); 0, 0 for
    a lone slot, which costs nothing more: the second slot is looked at, not taken."""
    first = next(slots, None)
    if first is None:
        return
    total = count(first) if count is not None and slots.peek(1) else 0
    yield first, (1 if total else 0), total
    for position, slot in enumerate(slots, 2):
        yield slot, position, total


def waiting_for(spec: JobSpec, slot: datetime, last_successes: dict) -> str:
    """'' when every dependency has succeeded for this slot (or a later one), else why not."""
    waiting = [dep for dep in spec.depends_on if not last_successes.get(dep) or last_successes[dep] < slot]
    return f"waiting for {', '.join(waiting)} to succeed for {format_instant(slot)}" if waiting else ""


def why_not_run(spec: JobSpec, job, now: datetime, held_all: str) -> str:
    """Why a job named on the command line did not run this tick (``job``: its row or None)."""
    if held_all:
        return held_all
    if not spec.enabled:
        return "it is disabled"
    if job is not None and job.is_claimed(now):
        return f"another runner holds it ({job.claimed_by}, until {format_instant(job.claim_expires)})"
    if job is not None and job.next_run and job.next_run > now:
        backing_off = " (backing off after a failure)" if job.error_count else ""
        return f"it is not due: its next run is {format_instant(job.next_run)}{backing_off}; --force runs it now"
    return "it had no slot to run"
