"""Django's Tasks framework as crontabber uses it: its API (``django.tasks`` on Django 6,
the django-tasks backport on 5.2), the registry's checks of task jobs and backends, a
task's keyword arguments, and a finished TaskResult as an Attempt.

Nothing here is imported unless a job names a task or a backend: crontabber runs
without either package.
"""

from __future__ import annotations

import functools
import inspect
import json
from datetime import datetime, timedelta
from importlib import import_module
from importlib.util import find_spec
from types import SimpleNamespace

from django.utils.module_loading import import_string

from . import conf
from .attempt import Attempt, Outcome
from .schedule import format_instant

SHIPPED_TASK = "crontabber.tasks.run_command"  # runs a command job's attempt on a worker
SKIP_RUN = "crontabber.SkipRun"
TASK_ERROR = "crontabber.E009"


class TasksUnavailable(Exception):
    """Neither django.tasks (Django 6) nor the django-tasks backport can be imported."""


@functools.cache
def api() -> SimpleNamespace:
    """The Tasks API of this Django: task, Task, task_backends, TaskResultStatus,
    TaskResultDoesNotExist, ImmediateBackend."""
    root = "django.tasks" if find_spec("django.tasks") else "django_tasks"
    if root == "django_tasks" and not find_spec("django_tasks"):
        raise TasksUnavailable("Django's Tasks framework needs Django 6, or the django-tasks package on Django 5.2")
    package, base = import_module(root), import_module(f"{root}.base")
    return SimpleNamespace(
        task=base.task,
        Task=base.Task,
        TaskResultStatus=base.TaskResultStatus,
        task_backends=package.task_backends,
        # Backends written for the backport (django-tasks-rq) raise its exception on Django 6 too.
        TaskResultDoesNotExist=tuple(
            import_module(f"{name}.exceptions").TaskResultDoesNotExist
            for name in dict.fromkeys([root, "django_tasks"])
            if find_spec(name)
        ),
        ImmediateBackend=import_module(f"{root}.backends.immediate").ImmediateBackend,
    )


def load_task(path: str):
    """The Task at a dotted path; ValueError, one line, when there is none."""
    try:
        found = import_string(path)
    except ImportError as error:
        raise ValueError(f"cannot import {path!r}: {error}") from None
    if not isinstance(found, api().Task):
        raise ValueError(f"{path!r} is not a Task (decorate the function with @task)")
    return found


def backend(alias: str):
    return api().task_backends[alias]


def runs_inline(alias: str) -> bool:
    """The backend runs an attempt as it is enqueued (Tasks' immediate backend)."""
    return isinstance(backend(alias), api().ImmediateBackend)


def patience(spec) -> timedelta:
    """How long a started attempt on a worker may go without a result: the job's timeout
    (and the grace the worker's own timeout needs), else the lease."""
    if spec.timeout:
        return timedelta(seconds=spec.timeout + conf.get("CRONTABBER_KILL_GRACE_SECONDS"))
    return timedelta(seconds=conf.get("CRONTABBER_LEASE_SECONDS"))


def default_backend() -> str:
    return conf.get("CRONTABBER_TASK_BACKEND") or ""


# --- the registry's checks ------------------------------------------------------------------


def problems(entry: dict) -> list[tuple[str, str, str]]:
    """(key, message, id) for what is wrong with a job's task or backend; [] for a command
    job run in the runner, without importing anything."""
    alias = entry.get("backend", default_backend())
    if "task" not in entry and not alias:
        return []
    try:
        api()
    except TasksUnavailable as error:
        return [("task" if "task" in entry else "backend", str(error), TASK_ERROR)]
    found = _backend_problems(alias) if alias else []
    if "task" in entry:
        found += _task_problems(entry)
    return found


def _backend_problems(alias: str) -> list[tuple[str, str, str]]:
    aliases = list(api().task_backends.settings)
    if alias not in aliases:
        return [("backend", f"unknown task backend {alias!r} (TASKS has {', '.join(aliases) or 'none'})", TASK_ERROR)]
    if not (backend(alias).supports_get_result or runs_inline(alias)):
        return [("backend", f"task backend {alias!r} cannot read results back (supports_get_result)", TASK_ERROR)]
    return []


def _task_problems(entry: dict) -> list[tuple[str, str, str]]:
    found = [
        (key, "is for command jobs, not a task", TASK_ERROR) for key in ("cmd", "cmd_args", "process") if key in entry
    ]
    try:
        task = load_task(entry["task"])
    except ValueError as error:
        return [*found, ("task", str(error), TASK_ERROR)]
    parameters = inspect.signature(task.func).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return found + [
        (flag, f"task {entry['task']!r} does not accept the keyword argument {argument}", TASK_ERROR)
        for flag, argument in (("backfill", "run_time"), ("last_success", "last_success"))
        if entry.get(flag) is True and argument not in parameters and not takes_any
    ]


# --- an attempt's arguments and result ------------------------------------------------------


def task_kwargs(spec, slot: datetime, last_success: datetime | None, extra: dict) -> dict:
    """A task job's keyword arguments: JSON, as the command options are text."""
    kwargs = {}
    if spec.backfill:
        kwargs["run_time"] = format_instant(slot)
    if spec.last_success and last_success is not None:
        kwargs["last_success"] = format_instant(last_success)
    return {**kwargs, **extra}


def returned(value, printed: str = "") -> str:
    """A task's output: what it printed (when it ran in the runner) and its return value, as
    JSON, their tail kept."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    text = "\n".join(filter(None, [printed, text]))
    tail = conf.get("CRONTABBER_OUTPUT_TAIL_CHARS")
    return text[-tail:] if tail else ""


def attempt_of(result, shipped: bool) -> Attempt:
    """A finished result as an Attempt. The shipped task returns the attempt it ran; a
    task job's own result has its status, error and times; its return value is its output."""
    status = api().TaskResultStatus
    duration = (
        (result.finished_at - result.started_at).total_seconds() if result.started_at and result.finished_at else 0.0
    )
    if result.status == status.SUCCESSFUL and shipped:
        values = result.return_value
        return Attempt(**{**values, "outcome": Outcome(values["outcome"])})
    if result.status == status.SUCCESSFUL:
        return Attempt(Outcome.SUCCESS, duration=duration, output=returned(result.return_value))
    error = result.errors[-1] if result.errors else None
    path = error.exception_class_path if error else "UnknownError"
    trace = error.traceback if error else ""
    message = trace.strip().rsplit("\n", 1)[-1].split(": ", 1)[-1] if trace.strip() else ""
    if path == SKIP_RUN:
        return Attempt(Outcome.SKIPPED, duration=duration, error_value=message)
    return Attempt(
        Outcome.FAILURE, duration=duration, error_type=path.rsplit(".", 1)[-1], error_value=message, traceback=trace
    )
