"""How a job's attempts run: the executors the slot loop is handed, one per kind of job,
and what an attempt is told (its slot's options).

- a command, in this process (the default) or in a child process (``process``);
- a task (``task``), called in this process;
- on a task backend (``backend``, a command through the task crontabber ships or a task):
  enqueued and recorded ``queued``; a later tick, of any runner, reads its result back
  (``pending``, ``read``) and only then queues the job's next slot, so a backfill job's
  slots still run oldest first, one at a time. A result that never comes (its worker
  killed, the result expired) ends ``interrupted`` once the job's timeout (or the lease)
  has passed since the worker started it, or since it was queued if it is gone: the slot
  runs again. The immediate backend runs an attempt as it is enqueued; a re-run waits
  for its result, as it waits for a local run.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

from django.utils import timezone

from .. import conf, logger, scrub
from ..models import Log
from ..outcomes import Attempt, Interruption, Outcome
from ..registry import JobSpec
from ..registry.tasks import SHIPPED_TASK, SKIP_RUN, api, backend, load_task
from ..schedules import format_instant
from .child import TASK, run_in_child
from .execution import run_function, run_in_process

RERUN_POLL_SECONDS = 0.2
OPTION_NAMES = {"run_time": "--run-time", "last_success": "--last-success"}  # an option's name as a command reads it


def slot_options(spec: JobSpec, slot: datetime, last_success: datetime | None, extra: dict) -> dict[str, str]:
    """What an attempt is told, by name: its slot (``run_time``, a backfill job), the slot of
    the job's last success (``last_success``) and the --job-arg values."""
    options = {}
    if spec.backfill:
        options["run_time"] = format_instant(slot)
    if spec.last_success and last_success is not None:
        options["last_success"] = format_instant(last_success)
    return {**options, **extra}


def command_arguments(spec: JobSpec, options: dict[str, str]) -> list[str]:
    """The options as a command's arguments, after the job's own cmd_args."""
    return [*spec.cmd_args, *(f"{OPTION_NAMES.get(name, '--' + name)}={value}" for name, value in options.items())]


def patience(spec: JobSpec) -> timedelta:
    """How long a started attempt on a worker may go without a result: the job's timeout
    (and the grace the worker's own timeout needs), else the lease."""
    if spec.timeout:
        return timedelta(seconds=spec.timeout + conf.get("CRONTABBER_KILL_GRACE_SECONDS"))
    return conf.lease()


class Executor:
    """Runs a job's attempts here: nothing is ever left pending."""

    def pending(self, claimed) -> Log | None:
        """The job's attempt left on a task backend, whose result is not read yet."""
        return None

    def read(self, spec: JobSpec, log: Log, now: datetime) -> Attempt | None:
        raise NotImplementedError

    def run(self, claimed, log: Log, extra: dict, deadlines) -> Attempt:
        raise NotImplementedError


class InProcess(Executor):
    def run(self, claimed, log, extra, deadlines):
        spec = claimed.spec
        argv = command_arguments(spec, slot_options(spec, log.slot, claimed.job.last_success, extra))
        logger.info("%s: running %s", spec.name, scrub.text(" ".join([spec.cmd, *argv])))
        return run_in_process(spec.name, spec.cmd, argv, spec.timeout, deadlines)


class ChildProcess(Executor):
    """A command, or a task, in a child process of its own (child.py)."""

    def run(self, claimed, log, extra, deadlines):
        spec = claimed.spec
        options = slot_options(spec, log.slot, claimed.job.last_success, extra)
        cmd, argv = (
            (TASK, [spec.task, json.dumps(options)]) if spec.task else (spec.cmd, command_arguments(spec, options))
        )
        logger.info("%s: running %s in a child process", spec.name, scrub.text(" ".join([cmd, *argv])))
        return run_in_child(spec.name, cmd, argv, spec.timeout, deadlines)


class TaskCall(Executor):
    """A task without a backend, called in this process as a command is run."""

    def run(self, claimed, log, extra, deadlines):
        spec, values = claimed.spec, []
        task, kwargs = load_task(spec.task), slot_options(spec, log.slot, claimed.job.last_success, extra)
        attempt = run_function(spec.name, lambda capture: values.append(task.call(**kwargs)), spec.timeout, deadlines)
        attempt.output = returned(values[0] if values else None, attempt.output)
        return attempt


class TaskBackend(Executor):
    """Attempts enqueued on the job's task backend and read back on a later tick."""

    def pending(self, claimed):
        return claimed.job.logs.queued().first()

    def read(self, spec, log, now):
        """A queued attempt's outcome: from its finished result, ``interrupted`` when it
        will not come, or None while it may still come."""
        result = self.result(log)
        if result is not None and result.is_finished:
            return attempt_of(result, shipped=result.task.module_path == SHIPPED_TASK)
        if result is not None and result.status == api().TaskResultStatus.READY:
            return None  # no worker has taken it yet
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
        try:
            return backend(log.backend).get_result(log.result_id)
        except api().TaskResultDoesNotExist:
            return None

    def run(self, claimed, log, extra, deadlines):
        """Enqueued: ``queued``, or the outcome when the backend ran it at once; a re-run
        waits for its result."""
        spec = claimed.spec
        result = enqueue(spec, slot_options(spec, log.slot, claimed.job.last_success, extra))
        log.backend, log.result_id = spec.backend, str(result.id)[:200]
        if result.is_finished:
            return attempt_of(result, shipped=not spec.task)
        if claimed.again:
            return self._wait_for(spec, log)
        return Attempt(Outcome.QUEUED)

    def _wait_for(self, spec, log) -> Attempt:
        """A re-run's result, waited for here (the heartbeat keeps the claim), as long as a
        started attempt may take; then it is given up as interrupted."""
        deadline = timezone.now() + patience(spec)
        while (attempt := self.read(spec, log, timezone.now())) is None:
            if timezone.now() > deadline:
                return Attempt.interrupted(Interruption.LOST, f"no result from {log.backend} in time")
            time.sleep(RERUN_POLL_SECONDS)
        return attempt


def executor_for(spec: JobSpec, job=None) -> Executor:
    """How the job's attempts run: on its task backend; else in a child process when it is
    a ``process`` job or its runner died under it too often (Job.isolated); else here."""
    if spec.backend:
        return TaskBackend()
    if spec.process or (job is not None and job.isolated):
        return ChildProcess()
    return TaskCall() if spec.task else InProcess()


def enqueue(spec: JobSpec, options: dict[str, str]):
    """One attempt sent to the job's backend: its TaskResult."""
    if spec.task:
        return load_task(spec.task).using(backend=spec.backend).enqueue(**options)
    argv = command_arguments(spec, options)  # the task crontabber ships, by the path backends store
    run_command = load_task(SHIPPED_TASK).using(backend=spec.backend)
    return run_command.enqueue(spec.name, spec.cmd, argv, spec.timeout, spec.process)


def returned(value, printed: str = "") -> str:
    """A task's output: what it printed (when it ran in the runner) and its return value, as
    JSON, their tail kept."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    text = "\n".join(filter(None, [printed, text]))
    tail = conf.get("CRONTABBER_OUTPUT_TAIL_CHARS")
    return text[-tail:] if tail else ""


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
