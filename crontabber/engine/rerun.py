"""Re-running a range of a job's past slots (cronrerun, and the admin's queued re-runs):
what a range is, which are refused, and its slots claimed as one batch (claimed_range).
The running itself is the tick's (Tick.rerun): recorded and signalled as a tick's
attempts are."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.utils import timezone

from ..models import Control, Job, ScheduleChange
from ..registry import JobSpec, effective_spec
from ..schedules import ScheduleError, format_instant, parse_instant
from .claims import Claimed
from .plan import backlog, count_between, slots_between

MOST_UNASKED = 1_000  # slots: a longer re-run must be confirmed (--yes)


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


def slot_count(spec: JobSpec, first: datetime, last: datetime, now: datetime, most: int | None = None) -> int:
    """How many slots a re-run of the range runs (at most ``most``), on the job's schedule
    as operators changed it. RerunRefused if the job has never run (its grid is unknown)."""
    job = job_that_ran(spec.name)
    return count_between(effective_spec(spec, job), first, last, job.anchor(now), most)


def accepted(spec: JobSpec, first: datetime, last: datetime, now: datetime, confirmed: bool = False) -> int:
    """How many slots a re-run of the range runs. RerunRefused when none does, or when more
    than MOST_UNASKED do and the operator has not ``confirmed`` them."""
    count = slot_count(spec, first, last, now, None if confirmed else MOST_UNASKED + 1)
    if not count:
        span = f"from {format_instant(first)} to {format_instant(last)}"
        raise RerunRefused(f"no slot of its schedule {span}; nothing was re-run")
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


def claimed_range(spec: JobSpec, start: datetime, end: datetime, claims) -> list[Claimed]:
    """The job's slots from ``start`` to ``end`` (of the schedule then in force), claimed as
    one batch marked ``again``. RerunRefused, one line, when every job is held, the job has
    never run or another runner holds it."""
    control = Control.load()
    if control.hold_all:
        raise RerunRefused(f"{control.hold_reason()}; nothing was re-run")
    job = job_that_ran(spec.name)
    spec, anchor = effective_spec(spec, job), job.anchor(timezone.now())
    spec = ScheduleChange.objects.in_force(job, spec, start)
    count = partial(backlog, spec, until=end, anchor=anchor) if spec.backfill else None
    slots = slots_between(spec, start, end, anchor)
    batch = [Claimed.again_for(spec, held.job, slots, count) for held in claims.one(spec)]
    if not batch:
        holder = Job.objects.get(pk=job.pk).claimed_by or "another runner"
        raise RerunRefused(f"it is running (claimed by {holder}); nothing was re-run, try again later")
    return batch
