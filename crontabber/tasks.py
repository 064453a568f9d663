"""The task crontabber ships: one attempt of a command job, run on a Tasks worker exactly
as the runner runs it (output tail, exception, duration, timeout). Its return value is
the attempt; the runner reads it back and records it. It writes nothing of crontabber's."""

from __future__ import annotations

from .engine.child import run_in_child
from .engine.execution import Deadlines, run_in_process
from .registry.tasks import api

ATTEMPT_FIELDS = ("duration", "output", "error_type", "error_value", "traceback")


@api().task
def run_command(name: str, cmd: str, argv: list[str], timeout: float | None = None, process: bool = False) -> dict:
    run = run_in_child if process else run_in_process
    with Deadlines() as deadlines:  # a timeout is enforced where the worker runs tasks in its main thread
        attempt = run(name, cmd, argv, timeout, deadlines)
    return {"outcome": attempt.outcome.value, **{field: getattr(attempt, field) for field in ATTEMPT_FIELDS}}
