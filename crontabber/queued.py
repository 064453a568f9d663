"""One job's path through a tick when it names a task or runs on a task backend: the
runner's branch for Django's Tasks framework, beside Runner._run_job.

A task job without a backend runs in the runner, as a command does. With a backend, one
attempt is under way per job at a time:

1. The runner opens the attempt's row, enqueues it (a command job through the task
   crontabber ships, a task job directly), marks the row ``queued`` with the backend and
   the result id, releases the job and moves on.
2. A later tick, of any runner, claims the job as usual, reads the result and records
   the outcome as a local run's would be; only then is the next slot enqueued, so a
   backfill job's slots still run oldest first, one at a time.
3. A result that never comes (its worker killed, the result expired or lost) ends
   ``interrupted`` once the job's timeout (or the lease) has passed since the worker
   started it, or since it was queued if it is gone: the slot runs again. A result still
   waiting for a worker is waited for; health reports it once it waits that long.

The immediate backend runs the attempt as it is enqueued: it is recorded at once. A
re-run (cronrerun, the admin) waits for its results, as it waits for local runs.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.utils import timezone

from . import signals
from .attempt import Attempt, Outcome
from .bookkeeping import database_lost
from .execution import run_function
from .models import Log
from .plan import numbered
from .schedule import format_instant
from .tasking import SHIPPED_TASK, api, attempt_of, backend, load_task, patience, returned, task_kwargs

RERUN_POLL_SECONDS = 0.2


def run_job(runner, claimed, book, extra: dict, report) -> None:
    """The claimed job's queued attempt read, then its due slots run or enqueued, oldest
    first, until one is queued or not handled. What raises is this job's failure."""
    try:
        go_on, after, retrying = _resume(claimed, book, report)
        for slot, position, total in numbered(claimed.slots, claimed.count) if go_on else ():
            if after is not None and slot <= after:
                continue  # the attempt just read was this slot's
            if runner.stop_requested or book.lost(claimed) or runner._waits(claimed, slot, book, report):
                break
            log, retrying = _open(claimed, book, slot, retrying), False
            runner.progress.start(log, position, total)
            attempt = _attempt(runner, claimed, log, extra)
            if attempt is None:
                book.attempts += 1  # an attempt started: the batch's pace counts it
                report.queued.append(claimed.spec.name)
                break  # on the backend: a later tick reads its result
            book.record(claimed, log, attempt)
            if not attempt.handled:
                break
    except Exception as error:
        if database_lost(error):
            raise
        book.fail(claimed, error)
    book.release(claimed)


def _resume(claimed, book, report) -> tuple[bool, datetime | None, bool]:
    """The job's queued attempt, if it has one: recorded if its result has come. Returns
    whether the job goes on, the slot it is done with, and whether it retries that slot."""
    log = claimed.job.logs.queued().first()
    if log is None:
        return True, None, False
    attempt = read(claimed.spec, log, timezone.now())
    if attempt is None:
        report.queued.append(claimed.spec.name)  # still on the backend
        return False, log.slot, False
    claimed.running = log
    book.record(claimed, log, attempt)
    if attempt.outcome == Outcome.INTERRUPTED:
        return True, None, True  # lost on the backend: the slot is queued again at once
    return attempt.handled, log.slot, False


def read(spec, log: Log, now: datetime) -> Attempt | None:
    """A queued attempt's outcome: from its finished result, ``interrupted`` when it
    will not come, or None while it may still come."""
    tasks = api()
    try:
        result = backend(log.backend).get_result(log.result_id)
    except tasks.TaskResultDoesNotExist:
        result = None
    if result is not None and result.is_finished:
        return attempt_of(result, shipped=result.task.module_path == SHIPPED_TASK)
    if result is not None and result.status == tasks.TaskResultStatus.READY:
        return None  # no worker has taken it yet
    since = (result.last_attempted_at or result.started_at or log.started_at) if result else log.started_at
    if now - since <= patience(spec):
        return None
    why = "its worker stopped without finishing it" if result else "its result is gone from the backend"
    return Attempt(
        Outcome.INTERRUPTED,
        error_type="Lost",
        error_value=f"no result from {log.backend} ({log.result_id}) after {now - since}: {why}; the slot runs again",
    )


def _open(claimed, book, slot: datetime, retrying: bool) -> Log:
    """The attempt's row: as a local run's (opened ahead for this slot as its first try,
    or now), else, when it retries, a row of its own numbered after the slot's earlier
    attempts."""
    if not retrying:
        return book.open(claimed, slot)
    (log,) = Log.opened(claimed.job, [slot], timezone.now(), book.host, book.pid, True)
    log.save(force_insert=True)
    claimed.running = log
    return log


def _attempt(runner, claimed, log: Log, extra: dict) -> Attempt | None:
    """Run the attempt here, or enqueue it: its outcome, or None once it is queued."""
    spec, job = claimed.spec, claimed.job
    signals.send(signals.attempt_started, spec=spec, job=job, log=log)
    if not spec.backend:
        task, kwargs, values = load_task(spec.task), task_kwargs(spec, log.slot, job.last_success, extra), []
        attempt = run_function(
            spec.name, lambda capture: values.append(task.call(**kwargs)), spec.timeout, runner.deadlines
        )
        attempt.output = returned(values[0] if values else None, attempt.output)
        return attempt
    result = enqueue(spec, log.slot, job.last_success, extra)
    log.backend, log.result_id = spec.backend, str(result.id)[:200]
    if result.is_finished:
        Log.objects.filter(pk=log.pk).update(backend=log.backend, result_id=log.result_id)
        return attempt_of(result, shipped=not spec.task)
    if claimed.again:
        return _wait_for(spec, log)
    log.outcome = Outcome.QUEUED
    Log.objects.filter(pk=log.pk).update(outcome=log.outcome, backend=log.backend, result_id=log.result_id)
    claimed.running = None  # no longer this tick's: the row stays queued
    runner.say(f"{spec.name} {format_instant(log.slot)}: queued on {spec.backend} ({log.result_id})\n")
    return None


def enqueue(spec, slot: datetime, last_success: datetime | None, extra: dict):
    """One attempt sent to the job's backend: its TaskResult."""
    if spec.task:
        task = load_task(spec.task).using(backend=spec.backend)
        return task.enqueue(**task_kwargs(spec, slot, last_success, extra))
    from .runner import command_arguments  # runner.py imports this module
    from .tasks import run_command  # imports the Tasks API: only when a job uses it

    argv = command_arguments(spec, slot, last_success, extra)
    return run_command.using(backend=spec.backend).enqueue(spec.name, spec.cmd, argv, spec.timeout, spec.process)


def _wait_for(spec, log: Log) -> Attempt:
    """A re-run's result, waited for here (the heartbeat keeps the claim), as long as a
    started attempt may take; then it is given up as interrupted."""
    deadline = timezone.now() + patience(spec)
    while (attempt := read(spec, log, timezone.now())) is None:
        if timezone.now() > deadline:
            return Attempt(Outcome.INTERRUPTED, error_type="Lost", error_value=f"no result from {log.backend} in time")
        time.sleep(RERUN_POLL_SECONDS)
    return attempt
