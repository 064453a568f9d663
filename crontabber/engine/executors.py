"""How a job's attempts run here: the executors the slot loop is handed, and what an
attempt is told (its slot's options, once for every kind of job).

- a command, in this process (the default) or in a child process (``process``, or a job
  whose runner died under it too often: Job.isolated);
- a task (``task``), called in this process, or in a child process as above;
- on a task backend (``backend``): backends.py.
"""

from __future__ import annotations

import json
from datetime import datetime

from .. import conf, logger, scrub
from ..models import Log
from ..outcomes import Attempt
from ..registry import JobSpec
from ..registry.tasks import load_task
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
    return [*spec.cmd_args, *as_arguments(options)]


def as_arguments(options: dict[str, str]) -> list[str]:
    """Options as a command reads them: ``--run-time=...``."""
    return [f"{OPTION_NAMES.get(name, '--' + name)}={value}" for name, value in options.items()]


class Executor:
    """Runs a job's attempts here: nothing is ever left pending. One is made for a job's
    slots in a tick."""

    _shown = ("", "")  # the command line's fixed part, and it scrubbed

    def command_line(self, cmd: str, spec: JobSpec, options: dict[str, str], extra: dict) -> str:
        """The command line the log shows, scrubbed. Its words from the registry and
        --job-arg are the same for each slot: scrubbed once; the instants crontabber passes
        hold no secret."""
        fixed = " ".join([cmd, *command_arguments(spec, extra)])
        if self._shown[0] != fixed:
            self._shown = (fixed, scrub.text(fixed))
        instants = {name: value for name, value in options.items() if name not in extra}
        return " ".join([self._shown[1], *as_arguments(instants)])

    def pending(self, claimed) -> Log | None:
        """The job's attempt left on a task backend, whose result is not read yet."""
        return None

    def late(self, claimed) -> list[tuple[Log, Attempt]]:
        """Attempts given up as lost whose results have come after all."""
        return []

    def read(self, spec: JobSpec, log: Log, now: datetime) -> Attempt | None:
        raise NotImplementedError

    def run(self, claimed, log: Log, extra: dict, deadlines) -> Attempt:
        raise NotImplementedError


class InProcess(Executor):
    def run(self, claimed, log, extra, deadlines):
        spec = claimed.spec
        options = slot_options(spec, log.slot, claimed.job.last_success, extra)
        logger.info("%s: running %s", spec.name, self.command_line(spec.cmd, spec, options, extra))
        argv = command_arguments(spec, options)
        return run_in_process(spec.name, spec.cmd, argv, spec.timeout, deadlines)


class ChildProcess(Executor):
    """A command, or a task, in a child process of its own (child.py)."""

    def run(self, claimed, log, extra, deadlines):
        spec = claimed.spec
        options = slot_options(spec, log.slot, claimed.job.last_success, extra)
        cmd, argv = (
            (TASK, [spec.task, json.dumps(options)]) if spec.task else (spec.cmd, command_arguments(spec, options))
        )
        shown = scrub.text(" ".join([cmd, *argv])) if spec.task else self.command_line(cmd, spec, options, extra)
        logger.info("%s: running %s in a child process", spec.name, shown)
        return run_in_child(spec.name, cmd, argv, spec.timeout, deadlines)


class TaskCall(Executor):
    """A task without a backend, called in this process as a command is run."""

    def run(self, claimed, log, extra, deadlines):
        spec, values = claimed.spec, []
        task, kwargs = load_task(spec.task), slot_options(spec, log.slot, claimed.job.last_success, extra)
        attempt = run_function(spec.name, lambda capture: values.append(task.call(**kwargs)), spec.timeout, deadlines)
        attempt.output = returned(values[0] if values else None, attempt.output)
        return attempt


def returned(value, printed: str = "") -> str:
    """A task's output: what it printed (when it ran in the runner) and its return value, as
    JSON, their tail kept."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    text = "\n".join(filter(None, [printed, text]))
    tail = conf.get("CRONTABBER_OUTPUT_TAIL_CHARS")
    return text[-tail:] if tail else ""
