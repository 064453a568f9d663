"""A batch of recorded attempts written: their Log rows and their jobs' states in one
transaction, only for the jobs the runner still holds (a job another runner took over is
left to it). A batch the database refuses is written job by job, so that one value it
refuses fails its own job alone; only the database going away fails the tick."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import logger
from ..models import Job, Log
from ..outcomes import Attempt, Interruption
from .bulk import update_rows
from .claims import Claimed

LOG_FIELDS = [
    "started_at", "duration", "outcome", "error_type", "error_value", "traceback", "output", "backend", "result_id",
]  # fmt: skip
JOB_FIELDS = [
    "last_run", "last_success", "last_skipped", "next_slot", "next_run", "error_count", "last_error",
    "claimed_by", "claimed_at", "claim_expires",
]  # fmt: skip


def database_lost(error: BaseException) -> bool:
    """The database itself is gone (not one value it refused): the tick's failure, not a job's."""
    return isinstance(error, DatabaseError) and not connection.is_usable()


@dataclass
class Recorded:
    """An attempt's outcome, recorded (``written``: False when another runner took the job over)."""

    claimed: Claimed
    log: Log
    attempt: Attempt
    previous_errors: int  # the job's consecutive errors before it
    written: bool = True


def write(recorded: list[Recorded], owner: str, served: dict[int, datetime]) -> tuple[list[Recorded], set[str]]:
    """The batch written for ``owner``; ``served``: job pk -> the start of the attempt that
    serves a "run now" requested before it. Returns what was recorded (a refused outcome
    replaced by the failure recorded instead) and the names of the jobs lost to another runner."""
    try:
        return recorded, _write(recorded, owner, served)
    except Exception as error:
        if database_lost(error):
            raise
        logger.exception("could not write %s outcomes together; writing each job's alone", len(recorded))
        return _write_each_job(recorded, owner, served)


def _write(recorded: list[Recorded], owner: str, served: dict[int, datetime]) -> set[str]:
    jobs = list({id(item.claimed.job): item.claimed.job for item in recorded}.values())
    with transaction.atomic():
        # Jobs first: on MariaDB a Log row's foreign key share-locks its job's row, and
        # upgrading that lock while another runner waits for the row is a deadlock.
        kept = _write_jobs(jobs, owner, served)
        update_rows(Log, [item.log for item in recorded], LOG_FIELDS)
    return _lost(jobs) if kept < len(jobs) else set()


def _write_each_job(recorded: list[Recorded], owner: str, served) -> tuple[list[Recorded], set[str]]:
    """Each job's outcomes on their own. A job whose outcome is refused has its first
    unwritten slot recorded as a failure (it runs again after the back-off), its later
    ones as interrupted."""
    by_job: dict[int, list[Recorded]] = {}
    for item in recorded:
        by_job.setdefault(id(item.claimed.job), []).append(item)
    written, lost = [], set()
    for items in by_job.values():
        try:
            lost |= _write(items, owner, served)
            written += items
        except Exception as error:
            logger.exception("%s: could not record its outcome", items[0].claimed.spec.name)
            written += _record_unwritable(items, owner, error)
    return written, lost


def _record_unwritable(items: list[Recorded], owner: str, error: Exception) -> list[Recorded]:
    claimed, first = items[0].claimed, items[0]
    claimed.job.refresh_from_db()  # its state as last written: the slots run again
    if claimed.released:
        claimed.job.drop_claim()
    attempt = Attempt.failed(error, f"the outcome ({first.attempt.outcome}) could not be recorded: {error}")
    retry = Recorded(claimed, first.log, attempt, claimed.job.error_count)
    claimed.job.apply_attempt(claimed.spec.schedule, first.log.slot, first.log.started_at, attempt, timezone.now())
    first.log.finish(attempt)
    try:
        _write([retry], owner, {})
    except Exception:
        logger.exception("%s: could not record the failure either; its claim expires", claimed.spec.name)
        return []
    Log.objects.filter(pk__in=[item.log.pk for item in items[1:]]).interrupt_running(
        Interruption.NOT_RECORDED, "ran, but its outcome could not be recorded: the slot runs again"
    )
    return [retry]


def _write_jobs(jobs: list[Job], owner: str, served: dict[int, datetime]) -> int:
    """The jobs' states, only where the claim is still ``owner``'s; a "run now" is cleared
    where the attempt that served it started after it was requested."""
    quote = connection.ops.quote_name
    requested = quote(Job._meta.get_field("run_requested").column)
    kept = update_rows(
        Job,
        jobs,
        JOB_FIELDS,
        row=("run_requested", lambda job: served.get(job.pk)),
        set_sql=f"{requested} = CASE WHEN {requested} <= {{row}} THEN NULL ELSE {requested} END",
        where_sql=f"{quote('claimed_by')} = %s",
        where_params=[owner],
    )
    for job in jobs:
        if job.run_requested is not None and job.pk in served and job.run_requested <= served[job.pk]:
            job.run_requested = None
    return kept


def _lost(jobs: list[Job]) -> set[str]:
    """The jobs whose row another runner's claim now holds."""
    held = set(Job.objects.filter(pk__in=[job.pk for job in jobs]).values_list("claimed_by", "name"))
    lost = {job.name for job in jobs if (job.claimed_by, job.name) not in held}
    logger.error("%s: lost the claim to another runner; its state is left to it", ", ".join(sorted(lost)))
    return lost
