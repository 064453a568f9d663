"""Django's Tasks framework as the registry sees it: its API (``django.tasks`` on Django 6,
the django-tasks backport on 5.2), a task at a dotted path, a backend by its alias, and
the checks of task jobs and backends.

Nothing here is imported unless a job names a task or a backend: crontabber runs
without either package.
"""

from __future__ import annotations

import functools
import inspect
from importlib import import_module
from importlib.util import find_spec
from types import SimpleNamespace

from django.utils.module_loading import import_string

SHIPPED_TASK = "crontabber.tasks.run_command"  # runs a command job's attempt on a worker
SKIP_RUN = "crontabber.SkipRun"
TASK_ERROR = "crontabber.E009"


class TasksUnavailable(Exception):
    """Neither django.tasks (Django 6) nor the django-tasks backport can be imported."""


@functools.cache
def api() -> SimpleNamespace:
    """The Tasks API of this Django: task, Task, task_backends, TaskResultStatus,
    TaskResultDoesNotExist, ImmediateBackend; for a backend, BaseTaskBackend, TaskResult
    and TaskError."""
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
        BaseTaskBackend=import_module(f"{root}.backends.base").BaseTaskBackend,
        TaskResult=base.TaskResult,
        TaskError=base.TaskError,
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


# --- the registry's checks ------------------------------------------------------------------


def problems(entry: dict, alias: str) -> list[tuple[str, str, str]]:
    """(key, message, id) for what is wrong with a job's task or its backend ``alias``."""
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
        for flag, argument in (("backfill", "run_time"), ("last_success", "last_success"), ("fold", "since"))
        if entry.get(flag) is True and argument not in parameters and not takes_any
    ]
