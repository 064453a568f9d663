"""Repairs shared by the commands (cronreset, cronmarksuccess, cronunlock) and the admin.

Each one acts on jobs already selected by name, in one transaction, all or nothing: if
one job refuses (it is running, its claim is live), RepairError is raised and nothing is
changed. The message of a RepairError is one line, the one the commands print.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import models, transaction
from django.utils import timezone

from ..models import Control, Job, Log
from ..outcomes import Interruption, Outcome
from ..registry import JobSpec, effective_spec
from ..schedules import format_instant
from ..words import plural, span
from .plan import count_between, next_run

MARK_BACKLOG_ASKED = 10_000  # slots: a mark that leaves more to run is asked about first


class RepairError(Exception):
    """A repair was refused; nothing was changed. str() is one line."""


def reset(names, now: datetime | None = None) -> dict[str, Job]:
    """Forget the named jobs' state (next slot, last success, errors; the Log is kept):
    each runs as if new, at its first slot from now. Returns the jobs that had state, by name; a
    name without a row has nothing to forget. A running job refuses the whole reset."""
    now = now or timezone.now()
    with transaction.atomic():
        jobs = {job.name: job for job in Job.objects.select_for_update().filter(name__in=list(names))}
        running = [job for job in jobs.values() if job.is_claimed(now)]
        if running:
            raise RepairError(
                "cannot reset a running job: "
                + ", ".join(
                    f"{job.name} (claimed by {job.claimed_by} since {job.claimed_at:%Y-%m-%d %H:%M:%S}Z)"
                    for job in running
                )
                + "; nothing was changed"
            )
        Job.objects.filter(name__in=jobs).update(**Job.FORGOTTEN)
        Control.ask(now)
    return jobs


class Unconfirmed(RepairError):
    """A mark that moves a job's last success back, or leaves a long backlog, was not
    confirmed; str() says what it would have done."""


class Marked(NamedTuple):
    job: Job
    consequence: str  # what the mark did beyond the ordinary ('' when nothing): see consequence()

    def said(self, shown: Callable[[datetime], str] = format_instant) -> str:
        """What was done, its times ``shown`` as the reader reads them."""
        then = f"marked succeeded at {shown(self.job.last_success)}; next run {shown(self.job.next_run)}"
        return f"{then}; it {self.consequence}" if self.consequence else then


def runs_next_after_reset(
    spec: JobSpec, job: Job, now: datetime, shown: Callable[[datetime], str] = format_instant
) -> str:
    """When a job reset at ``now`` runs as a new job, its times ``shown`` as the reader reads them."""
    spec = effective_spec(spec, job)
    if not spec.enabled:
        return "it is disabled, so it does not run until it is enabled"
    first = next_run(spec, None, now)
    if first <= now:
        return "it runs on the next tick as a new job"
    return f"it runs as a new job at {shown(first)} (in {span(first - now)})"


def mark_success(
    specs: list[JobSpec],
    marked: datetime,
    now: datetime | None = None,
    by: str = "cronmarksuccess",
    confirmed: bool = False,
) -> list[Marked]:
    """Record a success of slot ``marked`` for each job without running it, so the slots
    before it are not backfilled; clears the errors. Each gets a Log row saying ``by``
    whom it was marked. The job's next slot follows ``marked`` on its effective schedule
    (the admin's override, if any). A running job refuses the whole repair, and so does a
    mark with a consequence (see consequence()) unless ``confirmed``."""
    now = now or timezone.now()
    with transaction.atomic():
        marks = []
        for spec in specs:
            job, _ = Job.objects.select_for_update().get_or_create(
                name=spec.name, defaults={"schedule": spec.schedule.description}
            )
            if job.is_claimed(now):
                raise RepairError(
                    f"cannot mark {spec.name}: it is running (claimed by {job.claimed_by}); nothing was changed"
                )
            marks.append(Marked(job, consequence(effective_spec(spec, job), job, marked, now)))
        asked = [f"{job.name}: marking {format_instant(marked)} {said}" for job, said in marks if said]
        if asked and not confirmed:
            raise Unconfirmed("; ".join(asked))
        for (job, _), spec in zip(marks, specs, strict=True):
            _mark(job, effective_spec(spec, job).schedule, marked, now, by)
        Control.ask(now)
    return marks


def consequence(spec: JobSpec, job: Job, marked: datetime, now: datetime) -> str:
    """What marking ``job`` at ``marked`` does beyond the ordinary, which an operator is
    asked to confirm: moving its last success back (every slot after it runs again), or
    leaving more than MARK_BACKLOG_ASKED slots to backfill. '' when neither."""
    anchor = job.first_run or marked
    after = marked + timedelta(microseconds=1)  # the slots after the marked one
    runs = count_between(spec, after, now, anchor, MARK_BACKLOG_ASKED + 1)
    slots = f"more than {MARK_BACKLOG_ASKED:,} slots" if runs > MARK_BACKLOG_ASKED else plural(runs, "slot")
    if job.last_success is not None and job.last_success > marked:
        back = format_instant(job.last_success)
        return f"moves its last success back from {back}: {slots} after it will run again"
    return f"leaves {slots} to backfill" if runs > MARK_BACKLOG_ASKED else ""


def _mark(job: Job, schedule, marked: datetime, now: datetime, by: str) -> None:
    job.mark_succeeded(schedule, marked)
    job.save(
        update_fields=[
            "first_run",
            "schedule",
            "last_success",
            "next_slot",
            "next_run",
            "error_count",
            "last_error",
            "crash_count",
        ]
    )
    Log.objects.create(
        job=job,
        slot=marked,
        started_at=now,
        duration=0,
        outcome=Outcome.SUCCESS,
        output=f"marked as succeeded by {by}; the command did not run",
        host=socket.gethostname()[:200],
    )


def give_up_queued(names, by: str = "cronunlock --queued") -> dict[str, int]:
    """End the named jobs' attempts queued on task backends, whose results will never come
    (their queue lost them, or the job is gone) as interrupted: their slots run again.
    Returns how many each job had."""
    queued = Log.objects.queued().filter(job__name__in=list(names))
    counts = dict(queued.order_by().values_list("job__name").annotate(n=models.Count("id")))
    queued.update(outcome=Outcome.INTERRUPTED, error_type=Interruption.GIVEN_UP, error_value=f"given up by {by}")
    Control.ask(timezone.now())
    return counts


@dataclass
class Released:
    name: str
    claimed_by: str
    claimed_at: datetime | None


def unlock(
    names,
    force: bool = False,
    now: datetime | None = None,
    by: str = "cronunlock",
    force_hint: str = "use --force to release anyway",
) -> list[Released]:
    """Release the named jobs' claims (a runner that died holding them); their unfinished
    attempts end as interrupted and their slots run again. A claim that has not expired
    (its runner may be alive) refuses the whole repair unless ``force``. Returns the
    claims released; names that were not claimed are left out."""
    now = now or timezone.now()
    with transaction.atomic():
        jobs = list(Job.objects.select_for_update().filter(name__in=list(names)).exclude(claimed_by=""))
        live = [job for job in jobs if job.is_claimed(now)]
        if live and not force:
            held = ", ".join(
                f"{job.name} (held by {job.claimed_by} until {job.claim_expires:%H:%M:%S}Z)" for job in live
            )
            raise RepairError(
                f"claim not expired, its runner may still be running: {held}; {force_hint}; nothing was changed"
            )
        for job in jobs:
            job.logs.interrupt_running(Interruption.UNLOCKED, f"claim of {job.claimed_by} released by {by}")
        Job.objects.filter(pk__in=[job.pk for job in jobs]).release()
        Control.ask(now)
    return [Released(job.name, job.claimed_by, job.claimed_at) for job in jobs]
