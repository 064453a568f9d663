"""Repairs shared by the commands (cronreset, cronmarksuccess, cronunlock) and the admin.

Each one acts on jobs already selected by name, in one transaction, all or nothing: if
one job refuses (it is running, its claim is live), RepairError is raised and nothing is
changed. The message of a RepairError is one line, the one the commands print.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime

from django.db import models, transaction
from django.utils import timezone

from ..models import Job, Log
from ..outcomes import Interruption, Outcome
from ..registry import JobSpec, effective_spec


class RepairError(Exception):
    """A repair was refused; nothing was changed. str() is one line."""


def reset(names, now: datetime | None = None) -> dict[str, Job]:
    """Forget the named jobs' state (next slot, last success, errors; the Log is kept):
    each runs on the next tick as if new. Returns the jobs that had state, by name; a
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
    return jobs


def mark_success(
    specs: list[JobSpec], marked: datetime, now: datetime | None = None, by: str = "cronmarksuccess"
) -> list[Job]:
    """Record a success of slot ``marked`` for each job without running it, so the slots
    before it are not backfilled; clears the errors. Each gets a Log row saying ``by``
    whom it was marked. The job's next slot follows ``marked`` on its effective schedule
    (the admin's override, if any). A running job refuses the whole repair."""
    now = now or timezone.now()
    done = []
    with transaction.atomic():
        for spec in specs:
            job, _ = Job.objects.select_for_update().get_or_create(
                name=spec.name, defaults={"schedule": spec.schedule.description}
            )
            if job.is_claimed(now):
                raise RepairError(
                    f"cannot mark {spec.name}: it is running (claimed by {job.claimed_by}); nothing was changed"
                )
            job.mark_succeeded(effective_spec(spec, job).schedule, marked)
            job.save(
                update_fields=[
                    "first_run",
                    "schedule",
                    "last_success",
                    "next_slot",
                    "next_run",
                    "error_count",
                    "last_error",
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
            done.append(job)
    return done


def give_up_queued(names, by: str = "cronunlock --queued") -> dict[str, int]:
    """End the named jobs' attempts queued on task backends, whose results will never come
    (their queue lost them, or the job is gone) as interrupted: their slots run again.
    Returns how many each job had."""
    queued = Log.objects.queued().filter(job__name__in=list(names))
    counts = dict(queued.order_by().values_list("job__name").annotate(n=models.Count("id")))
    queued.update(outcome=Outcome.INTERRUPTED, error_type=Interruption.GIVEN_UP, error_value=f"given up by {by}")
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
    return [Released(job.name, job.claimed_by, job.claimed_at) for job in jobs]
