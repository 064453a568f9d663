"""Re-running a range of a job's past slots (cronrerun, and the admin's queued re-runs):
what a range is, what became of its slots (the preview), which of them run in what order
(Choice), which re-runs are refused, and the slots of one claimed as a batch
(claimed_range). The running itself is the tick's (Tick.rerun): recorded and signalled
as a tick's attempts are."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import takewhile
from typing import NamedTuple

from django.utils import timezone

from ..models import Control, Job, ScheduleChange
from ..outcomes import HANDLED, UNFINISHED
from ..registry import JobSpec, effective_spec
from ..schedules import ScheduleError, format_instant, parse_instant
from ..words import plural
from .claims import Claimed
from .plan import Window, backlog, count_between, slots_between, window

MOST_UNASKED = 1_000  # slots: a longer re-run must be confirmed (--yes)

# What became of a slot, as the preview counts it.
MISSING, FAILED, DONE, PAUSED, UNDER_WAY = "missing", "failed", "done", "paused", "under way"
SAID = {MISSING: "missing (never attempted)", FAILED: "failed", DONE: "done", PAUSED: "paused"}
# Outcomes of the deadline work (issue 24): a span let pass while the job was paused, and
# a slot past its starting deadline, which never ran. Compared by value, so they count
# here as soon as outcomes.Outcome has them.
PAUSED_OUTCOME, MISSED_OUTCOME = "paused", "missed"


class Choice(NamedTuple):
    """Which slots of a range a re-run runs, and in what order."""

    failed_and_missing: bool = False  # only those that failed or were never attempted
    newest_first: bool = False  # the newest first (a folded job runs one attempt anyway)


EVERY = Choice()  # every slot of the range, oldest first


def status(outcome: str) -> str:
    """What a slot's latest attempt says of it."""
    if outcome in HANDLED:
        return DONE
    if outcome in UNFINISHED:
        return UNDER_WAY
    return {PAUSED_OUTCOME: PAUSED, MISSED_OUTCOME: MISSING}.get(outcome, FAILED)


def statuses(spec: JobSpec, job: Job, first: datetime, last: datetime, anchor: datetime) -> dict[datetime, str]:
    """Each slot of the schedule from ``first`` to ``last``, oldest first: what its latest
    attempt came to (a folded attempt counts for every slot it covers), or MISSING."""
    following = spec.schedule.slots_after(first - timedelta(microseconds=1), anchor)
    slots = list(takewhile(lambda slot: slot <= last, following))
    found = dict.fromkeys(slots, MISSING)
    for slot, since, outcome in job.logs.covering(first, last):  # oldest first: the latest wins
        for covered in slots[bisect_left(slots, since or slot) : bisect_right(slots, slot)]:
            found[covered] = status(outcome)
    return found


@dataclass(frozen=True)
class Preview:
    """How many slots of a range are missing, failed, done, paused (or under way)."""

    counts: Counter

    def __str__(self) -> str:
        shown = [f"{self.counts[key]:,} {said}" for key, said in SAID.items()]
        shown += [f"{self.counts[UNDER_WAY]:,} under way"] if self.counts[UNDER_WAY] else []
        return f"{plural(sum(self.counts.values()), 'slot')} in the range: {', '.join(shown)}"


def preview(spec: JobSpec, first: datetime, last: datetime, now: datetime) -> Preview:
    """What became of the range's slots, on the job's schedule as operators changed it.
    RerunRefused if the job has never run."""
    job = job_that_ran(spec.name)
    return Preview(Counter(statuses(effective_spec(spec, job), job, first, last, job.anchor(now)).values()))


def chosen(
    spec: JobSpec, job: Job, first: datetime, last: datetime, anchor: datetime, choice: Choice
) -> tuple[Iterable[datetime], Callable | None, Window | None]:
    """The slots a re-run of the range runs, in the order it runs them (lazily for the
    whole range), how they are counted from the first (as Claimed.count; None: one run),
    and a folded job's one window for them."""
    slots = slots_between(spec, first, last, anchor)
    if choice.failed_and_missing:
        found = statuses(spec, job, first, last, anchor)
        slots = [slot for slot in slots if found.get(slot, MISSING) in (FAILED, MISSING)]
    if spec.fold:
        return slots, None, window(spec, iter(slots), anchor, None if choice.failed_and_missing else last)
    if choice == EVERY:
        return slots, partial(backlog, spec, until=last, anchor=anchor) if spec.backfill else None, None
    slots = list(slots)[:: -1 if choice.newest_first else 1]
    return slots, (lambda _: len(slots)) if spec.backfill else None, None


class RerunRefused(Exception):
    """A re-run was refused; nothing ran. str() is one line."""


def parse_range(start: str, end: str, zone, now: datetime) -> tuple[datetime, datetime]:
    """--from and --to as instants (a time without offset is read in ``zone``); refused
    when unreadable, reversed or in the future."""
    try:
        first, last = parse_instant(start, zone), parse_instant(end, zone)
    except ScheduleError as error:
        raise RerunRefused(f"{error}; nothing was re-run") from None
    return check_range(first, last, now)


def check_range(first: datetime, last: datetime, now: datetime) -> tuple[datetime, datetime]:
    if first > last:
        raise RerunRefused(
            f"the range is reversed: {format_instant(first)} is after {format_instant(last)}; nothing was re-run"
        )
    if last > now:
        raise RerunRefused(f"{format_instant(last)} is in the future: only past slots re-run; nothing was re-run")
    return first, last


def slot_count(
    spec: JobSpec, first: datetime, last: datetime, now: datetime, most: int | None = None, choice=EVERY
) -> int:
    """How many slots a re-run of the range runs (at most ``most``), on the job's schedule
    as operators changed it. RerunRefused if the job has never run (its grid is unknown)."""
    job = job_that_ran(spec.name)
    spec, anchor = effective_spec(spec, job), job.anchor(now)
    if not choice.failed_and_missing:
        return count_between(spec, first, last, anchor, most)
    return len(chosen(spec, job, first, last, anchor, choice)[0])


def accepted(
    spec: JobSpec, first: datetime, last: datetime, now: datetime, confirmed: bool = False, choice=EVERY
) -> int:
    """How many slots a re-run of the range runs. RerunRefused when none does, or when more
    than MOST_UNASKED do and the operator has not ``confirmed`` them."""
    count = slot_count(spec, first, last, now, None if confirmed else MOST_UNASKED + 1, choice)
    if not count:
        span = f"from {format_instant(first)} to {format_instant(last)}"
        which = "failed or missing slot" if choice.failed_and_missing else "slot of its schedule"
        raise RerunRefused(f"no {which} {span}; nothing was re-run")
    if count > MOST_UNASKED and not confirmed:
        raise RerunRefused(
            f"more than {MOST_UNASKED:,} slots to re-run; add --yes (manage.py cronrerun) to run them all"
        )
    return count


def job_that_ran(name: str) -> Job:
    """The job's row; RerunRefused if it has never run (its grid is not known yet)."""
    job = Job.objects.filter(name=name).first()
    if job is None or job.first_run is None:
        raise RerunRefused("it has not run yet: it has no past slots to re-run")
    return job


def claimed_range(spec: JobSpec, start: datetime, end: datetime, claims, choice: Choice = EVERY) -> list[Claimed]:
    """The job's slots from ``start`` to ``end`` (of the schedule then in force) that
    ``choice`` picks, in its order, claimed as one batch marked ``again``. RerunRefused,
    one line, when every job is held, the job has never run or another runner holds it."""
    control = Control.load()
    if control.hold_all:
        raise RerunRefused(f"{control.hold_reason()}; nothing was re-run")
    job = job_that_ran(spec.name)
    spec, anchor = effective_spec(spec, job), job.anchor(timezone.now())
    spec = ScheduleChange.objects.in_force(job, spec, start)
    slots, count, folded = chosen(spec, job, start, end, anchor, choice)
    batch = [Claimed.again_for(spec, held.job, slots, count, folded) for held in claims.one(spec)]
    if not batch:
        holder = Job.objects.get(pk=job.pk).claimed_by or "another runner"
        raise RerunRefused(f"it is running (claimed by {holder}); nothing was re-run, try again later")
    return batch
