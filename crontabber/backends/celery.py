"""A Django Tasks backend on Celery workers (``pip install "django-crontabber[celery]"``):
``enqueue`` sends a task's call to a Celery queue, ``get_result`` reads what came of it
from Celery's result backend, so crontabber can run jobs on Celery (docs/tasks.md).

Every Task goes through one Celery task, ``crontabber.run_task`` (its dotted path, its
arguments): a worker needs no registration of the project's tasks, only its code. What it
stores says what a TaskResult needs at each step: queued (the task, its arguments, when),
started (when), and at the end the return value or the exception, with both instants.

    TASKS = {"celery": {"BACKEND": "crontabber.backends.celery.CeleryBackend",
                        "OPTIONS": {"QUEUE_PREFIX": ""}}}   # a Task's queue_name, prefixed
    CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/0"      # a key-value store: results by id

    celery -A crontabber.backends.celery worker -Q default  # with DJANGO_SETTINGS_MODULE set
"""

from __future__ import annotations

import json
from datetime import datetime
from traceback import format_exception

from celery import Celery, states
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string

from ..registry.tasks import api

RUN_TASK = "crontabber.run_task"

app = Celery("crontabber")
app.config_from_object("django.conf:settings", namespace="CELERY")  # read when first used


def _key(result_id: str) -> str:
    return f"crontabber-task-{result_id}"


def _now() -> str:
    return timezone.now().isoformat()


def _instant(value) -> datetime | None:
    """An instant as stored (ISO 8601 text), or as Celery hands it back."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@app.task(name=RUN_TASK, bind=True)
def run_task(self, path: str, args: list, kwargs: dict) -> dict:
    """On the worker: the Task at ``path`` called; its return value, or its exception, with
    when it started and ended (an exception is this result's, not Celery's: Celery's own
    failures are a lost worker or a time limit)."""
    started = _now()
    self.update_state(state=states.STARTED, meta={"started_at": started})
    try:
        value = import_string(path).call(*args, **kwargs)
        outcome = {"value": json.loads(json.dumps(value))}
    except Exception as error:
        kind = type(error)
        outcome = {"error": [f"{kind.__module__}.{kind.__qualname__}", "".join(format_exception(error))]}
    return {"started_at": started, "finished_at": _now(), **outcome}


class CeleryBackend(api().BaseTaskBackend):
    """Tasks sent to Celery workers, their results read back from Celery's result backend."""

    supports_get_result = True

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        result_id, enqueued_at = get_random_string(32), timezone.now()
        queued = {"task": task.module_path, "args": list(args), "kwargs": dict(kwargs), "at": enqueued_at.isoformat()}
        app.backend.set(_key(result_id), json.dumps(queued))  # before it is sent: a worker may be quick
        queue = f"{self.options.get('QUEUE_PREFIX', '')}{task.queue_name}"
        app.send_task(RUN_TASK, args=[task.module_path, list(args), dict(kwargs)], task_id=result_id, queue=queue)
        return self._result(task, result_id, queued, api().TaskResultStatus.READY)

    def get_result(self, result_id: str):
        """What came of a call: queued, running, or finished with its value or error.
        TaskResultDoesNotExist once its record has expired (or never was)."""
        queued = app.backend.get(_key(result_id))
        if queued is None:
            raise api().TaskResultDoesNotExist(result_id)
        queued, meta = json.loads(queued), app.backend.get_task_meta(result_id)
        task = import_string(queued["task"]).using(backend=self.alias)
        state, stored = meta["status"], meta["result"] if isinstance(meta["result"], dict) else {}
        status = api().TaskResultStatus
        if state in states.READY_STATES:
            return self._finished(task, result_id, queued, meta, stored)
        running = state in (states.STARTED, states.RETRY)
        started = _instant(stored.get("started_at"))
        return self._result(task, result_id, queued, status.RUNNING if running else status.READY, started)

    def _finished(self, task, result_id: str, queued: dict, meta: dict, stored: dict):
        """A call that ended: its value, its own exception, or Celery's failure (a worker lost,
        a time limit: the exception's class and the traceback Celery kept)."""
        status = api().TaskResultStatus
        error = stored.get("error")
        if meta["status"] != states.SUCCESS:
            error = [
                f"{stored.get('exc_module', 'celery')}.{stored.get('exc_type', meta['status'])}",
                meta["traceback"],
            ]
        started = _instant(stored.get("started_at"))
        finished = _instant(stored.get("finished_at", meta["date_done"]))
        result = self._result(task, result_id, queued, status.FAILED if error else status.SUCCESSFUL, started, finished)
        if error:
            result.errors.append(api().TaskError(exception_class_path=error[0], traceback=error[1] or ""))
        else:
            object.__setattr__(result, "_return_value", stored.get("value"))
        return result

    def _result(self, task, result_id: str, queued: dict, status, started=None, finished=None):
        return api().TaskResult(
            task=task,
            id=result_id,
            status=status,
            enqueued_at=_instant(queued["at"]),
            started_at=started,
            last_attempted_at=started,
            finished_at=finished,
            args=queued["args"],
            kwargs=queued["kwargs"],
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
