"""Attempts on a task backend's workers (a job's ``backend``): the executor that enqueues
them and reads their results back, the slot loop's one difference for them.

1. An attempt is enqueued (a command through the task crontabber ships, a task directly)
   and recorded ``queued``, with the backend and the result id; the job is released.
2. A later tick, of any runner, reads the result back and records it as a local run's
   would be; only then is the next slot queued, so a backfill job's slots still run
   oldest first, one at a time.
3. An attempt waiting for a worker is waited for. One a worker started and then went
   silent past the job's timeout (or the lease), or whose result is gone, ends
   ``interrupted`` (Interruption.LOST) and its slot is queued again; if its result comes
   after all, it is recorded on its row, late (so nothing a worker ran is unrecorded).
4. A backend that cannot be reached is the tick's read error, not the job's: the job
   waits, and the next tick reads again.

The immediate backend runs an attempt as it is enqueued: it is recorded at once. A
re-run waits for its result while a worker runs it; one no worker takes up within the
job's patience is left queued, and recorded when its result comes.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.utils import timezone

from .. import conf
from ..models import Log
from ..outcomes import Attempt, Interruption, Outcome
from ..registry import JobSpec
from ..registry.tasks import SHIPPED_TASK, SKIP_RUN, api, backend, load_task
from .executors import Executor, command_arguments, returned, slot_options

RERUN_POLL_SECONDS = 0.2
LATE_WINDOW = timedelta(days=1)  # how long the result of an attempt given up is still watched for


class Unreadable(Exception):
    """The backend could not be asked for a result (it is down, its store unreachable)."""


def patience(spec: JobSpec | None) -> timedelta:
    """How long a started attempt on a worker may go without a result: the job's timeout
    (and the grace the worker's own timeout needs), else the lease."""
    if spec is not None and spec.timeout:
        return timedelta(seconds=spec.timeout + conf.get("CRONTABBER_KILL_GRACE_SECONDS"))
    return conf.lease()


class TaskBackend(Executor):
    """Attempts enqueued on the job's task backend and read back on a later tick."""

    def pending(self, claimed):
        return list(claimed.job.logs.queued().order_by("slot", "id"))

    def late(self, claimed) -> list[tuple[Log, Attempt]]:
        """The job's attempts given up as lost whose results have come after all."""
        since = timezone.now() - LATE_WINDOW
        lost = claimed.job.logs.filter(error_type=Interruption.LOST, started_at__gte=since).exclude(result_id="")
        found = []
        for log in lost:
            result = self.result(log)
            if result is not None and result.is_finished:
                found.append((log, attempt_of(result, shipped=result.task.module_path == SHIPPED_TASK)))
        return found

    def read(self, spec, log, now):
        """A queued attempt's outcome: from its finished result, ``interrupted`` when it
        will not come, or None while it may still come. Unreadable when the backend cannot
        be asked."""
        result = self.result(log)
        if result is not None and result.is_finished:
            return attempt_of(result, shipped=result.task.module_path == SHIPPED_TASK)
        if result is not None and result.status == api().TaskResultStatus.READY:
            return None  # no worker has taken it yet: its patience has not begun
        since, why = silent_since(result, log)
        if now - since <= patience(spec):
            return None
        return Attempt.interrupted(
            Interruption.LOST,
            f"no result from {log.backend} ({log.result_id}) after {now - since}: {why}; the slot runs again",
        )

    @staticmethod
    def result(log):
        """The TaskResult of a queued attempt, or None when the backend no longer has it."""
        tasks = api()
        try:
            return backend(log.backend).get_result(log.result_id)
        except tasks.TaskResultDoesNotExist:
            return None
        except Exception as error:  # its store is down: nothing is known of the attempt
            raise Unreadable(f"could not read results from task backend {log.backend!r}: {error}") from error

    def run(self, claimed, log, extra, deadlines):
        """Enqueued: ``queued``, or the outcome when the backend ran it at once; a re-run
        waits for its result."""
        spec = claimed.spec
        result = enqueue(spec, slot_options(spec, log, claimed.job.last_success, extra))
        log.backend, log.result_id = spec.backend, str(result.id)[:200]
        if result.is_finished:
            return attempt_of(result, shipped=not spec.task)
        if claimed.again:
            return self._wait_for(spec, log)
        return Attempt(Outcome.QUEUED)

    def _wait_for(self, spec, log) -> Attempt:
        """A re-run's result, waited for here (the heartbeat keeps the claim) while a worker
        runs it; one no worker has taken up within the job's patience is left queued, and
        a later tick records it when it comes."""
        unclaimed_until = timezone.now() + patience(spec)
        while True:
            try:
                attempt = self.read(spec, log, timezone.now())
            except Unreadable:
                attempt = None  # asked again until its patience is over
            if attempt is not None:
                return attempt
            if timezone.now() > unclaimed_until and not _started(self.result(log)):
                return Attempt(Outcome.QUEUED)
            time.sleep(RERUN_POLL_SECONDS)


def _started(result) -> bool:
    return result is not None and result.status != api().TaskResultStatus.READY


def enqueue(spec: JobSpec, options: dict[str, str]):
    """One attempt sent to the job's backend: its TaskResult."""
    if spec.task:
        return load_task(spec.task).using(backend=spec.backend).enqueue(**options)
    argv = command_arguments(spec, options)  # the task crontabber ships, by the path backends store
    run_command = load_task(SHIPPED_TASK).using(backend=spec.backend)
    return run_command.enqueue(spec.name, spec.cmd, argv, spec.timeout, spec.process)


def silent_since(result, log: Log) -> tuple[datetime, str]:
    """Since when a queued attempt has given no sign of life, and why that is."""
    if result is None:
        return log.started_at, "its result is gone from the backend"
    return result.last_attempted_at or result.started_at or log.started_at, "its worker stopped without finishing it"


def attempt_of(result, shipped: bool) -> Attempt:
    """A finished result as an Attempt. The shipped task returns the attempt it ran; a
    task job's own result has its status, error and times; its return value is its output."""
    if result.status != api().TaskResultStatus.SUCCESSFUL:
        return _failed(result)
    if shipped:
        return Attempt(**{**result.return_value, "outcome": Outcome(result.return_value["outcome"])})
    return Attempt(Outcome.SUCCESS, duration=_duration(result), output=returned(result.return_value))


def _failed(result) -> Attempt:
    """A result that did not succeed: skipped (SkipRun), or failed with its last error."""
    error = result.errors[-1] if result.errors else None
    path = error.exception_class_path if error else "UnknownError"
    trace = error.traceback if error else ""
    message = trace.strip().rsplit("\n", 1)[-1].split(": ", 1)[-1] if trace.strip() else ""
    if path == SKIP_RUN:
        return Attempt(Outcome.SKIPPED, duration=_duration(result), error_value=message)
    return Attempt(
        Outcome.FAILURE,
        duration=_duration(result),
        error_type=path.rsplit(".", 1)[-1],
        error_value=message,
        traceback=trace,
    )


def _duration(result) -> float:
    if result.started_at and result.finished_at:
        return (result.finished_at - result.started_at).total_seconds()
    return 0.0
