"""Repairs shared by the commands (cronreset, cronmarksuccess, cronunlock) and the admin.

Each one acts on jobs already selected by name, in one transaction, all or nothing: if
one job refuses (it is running, its claim is live), RepairError is raised and nothing is
changed. The message of a RepairError is one line, the one the commands print.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .health import effective_spec
from .models import Control, Job, Log
from .registry import JobSpec
from .schedule import truncate_to_minute

# What a reset forgets: the job runs on the next tick as if new.
FORGOTTEN = dict(
    schedule="",
    first_run=None,
    last_run=None,
    last_success=None,
    next_slot=None,
    next_run=None,
    error_count=0,
    last_error="",
)


class RepairError(Exception):
    """A repair was refused; nothing was changed. str() is one line."""


def is_running(job: Job, now: datetime) -> bool:
    """The job is claimed and the claim has not expired: its runner may be running it."""
    return bool(job.claimed_by) and job.claim_expires is not None and job.claim_expires > now


def reset(names, now: datetime | None = None) -> dict[str, Job]:
    """Forget the named jobs' state (next slot, last success, errors; the Log is kept):
    each runs on the next tick as if new. Returns the jobs that had state, by name; a
    name without a row has nothing to forget. A running job refuses the whole reset."""
    now = now or timezone.now()
    with transaction.atomic():
        jobs = {job.name: job for job in Job.objects.select_for_update().filter(name__in=list(names))}
        running = [job for job in jobs.values() if is_running(job, now)]
        if running:
            raise RepairError(
                "cannot reset a running job: "
                + ", ".join(
                    f"{job.name} (claimed by {job.claimed_by} since {job.claimed_at:%Y-%m-%d %H:%M:%S}Z)"
                    for job in running
                )
                + "; nothing was changed"
            )
        Job.objects.filter(name__in=jobs).update(**FORGOTTEN)
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
                name=spec.name,
                defaults={"first_run": truncate_to_minute(now), "schedule": spec.schedule.description},
            )
            if is_running(job, now):
                raise RepairError(
                    f"cannot mark {spec.name}: it is running (claimed by {job.claimed_by}); nothing was changed"
                )
            schedule = effective_spec(spec, job).schedule
            job.first_run = job.first_run or truncate_to_minute(now)
            job.schedule = schedule.description
            job.last_success = marked
            job.next_slot = schedule.next_after(marked, job.first_run)
            job.next_run = job.next_slot
            job.error_count = 0
            job.last_error = ""
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
                outcome=Log.SUCCESS,
                output=f"marked as succeeded by {by}; the command did not run",
                host=socket.gethostname()[:200],
            )
            done.append(job)
    return done


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
        live = [job for job in jobs if is_running(job, now)]
        if live and not force:
            held = ", ".join(
                f"{job.name} (held by {job.claimed_by} until {job.claim_expires:%H:%M:%S}Z)" for job in live
            )
            raise RepairError(
                f"claim not expired, its runner may still be running: {held}; {force_hint}; nothing was changed"
            )
        for job in jobs:
            Log.objects.filter(job=job, outcome=Log.RUNNING).update(
                outcome=Log.INTERRUPTED,
                error_type="Unlocked",
                error_value=f"claim of {job.claimed_by} released by {by}",
            )
        Job.objects.filter(pk__in=[job.pk for job in jobs]).update(claimed_by="", claimed_at=None, claim_expires=None)
    return [Released(job.name, job.claimed_by, job.claimed_at) for job in jobs]


def hold_all(by: str, now: datetime | None = None) -> tuple[Control, bool]:
    """Hold every job: no runner starts any job until release_all(). Returns the control
    row and whether this call set the hold (False: it was already held, by whoever holds it)."""
    now = now or timezone.now()
    Control.get()
    changed = Control.objects.filter(pk=1, hold_all=False).update(hold_all=True, held_by=by[:150], held_since=now)
    return Control.objects.get(pk=1), bool(changed)


def release_all() -> tuple[Control, bool]:
    """Lift the hold. Returns the control row as it was, and whether it was held."""
    control = Control.get()
    changed = Control.objects.filter(pk=1, hold_all=True).update(hold_all=False, held_by="", held_since=None)
    return control, bool(changed)
