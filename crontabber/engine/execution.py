"""Running one job command once: in this process, or in a child process
(``python -m crontabber.engine.child``), with its output captured, its timeout and a stop
requested from outside (capture.py), and the database connection it leaves checked.

In this process (the default) a command costs no start-up. A ``"process": True`` job runs
as a child: a timeout or stop sends SIGTERM to its process group, then SIGKILL after
CRONTABBER_KILL_GRACE_SECONDS, so even a job stuck in C code stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import redirect_stderr, redirect_stdout

from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections

from .. import SkipRun, conf, logger
from ..outcomes import Attempt, Interruption, Outcome
from .capture import CLOCK, Deadlines, JobTimeout, OutputCapture, StopRun
from .child import SKIP_EXIT_STATUS, environment


def _stopped(kind: type[BaseException], timeout: float | None, reason: str, elapsed: float) -> Attempt:
    if kind is JobTimeout:
        return Attempt(
            Outcome.TIMEOUT,
            error_type="Timeout",
            error_value=f"stopped after {elapsed:.1f} s (timeout {timeout} s)",
        )
    return Attempt.interrupted(Interruption.STOPPED, reason or "the runner was stopped")


# Command name -> its argument parser, built once per process.
_parsers: dict[str, object] = {}


def load_command(cmd: str) -> BaseCommand:
    """A new instance of the command, as call_command makes one, but with the argument
    parser built once per process: building it (argparse, Django's default options and
    their translations) is most of what calling a quick command costs."""
    try:
        app_name = get_commands()[cmd]
    except KeyError:
        raise CommandError(f"Unknown command: {cmd!r}") from None
    command = app_name if isinstance(app_name, BaseCommand) else load_command_class(app_name, cmd)
    if cmd not in _parsers:
        _parsers[cmd] = command.create_parser("", cmd)
    parser = _parsers[cmd]
    command.create_parser = lambda prog_name, subcommand, **kwargs: parser
    return command


def run_in_process(name: str, cmd: str, argv: list[str], timeout: float | None, deadlines: Deadlines) -> Attempt:
    body = lambda capture: call_command(load_command(cmd), *argv, stdout=capture, stderr=capture)  # noqa: E731
    return run_function(name, body, timeout, deadlines)


def run_function(name: str, body, timeout: float | None, deadlines: Deadlines) -> Attempt:
    """``body(capture)`` run in this process as a command is: its output captured, its
    timeout and a stop enforced, SkipRun and the connection it leaves checked."""
    capture = OutputCapture(name)
    started = CLOCK["now"]()
    before = connection_state()
    try:
        with deadlines.running(timeout, in_process=True):
            with redirect_stdout(capture), redirect_stderr(capture):
                body(capture)
        attempt = Attempt(Outcome.SUCCESS)
    except SkipRun as skip:
        attempt = Attempt(Outcome.SKIPPED, error_value=str(skip))
    except SystemExit as exit_:
        failed = exit_.code not in (None, 0)
        attempt = Attempt.failed(exit_, f"exit status {exit_.code}") if failed else Attempt(Outcome.SUCCESS)
    except JobTimeout:
        attempt = _stopped(JobTimeout, timeout, "", CLOCK["now"]() - started)
    except StopRun as stop:
        attempt = _stopped(StopRun, timeout, str(stop), 0)
    except KeyboardInterrupt:
        raise  # Ctrl-C without cronrun's handler: the runner stops
    except BaseException as error:  # of any kind: the job's failure, not the runner's
        attempt = Attempt.failed(error)
    if deadlines.fired is not None and attempt.outcome not in (Outcome.TIMEOUT, Outcome.INTERRUPTED):
        # The job caught what it was stopped with and went on: it was stopped all the same.
        attempt = _stopped(deadlines.fired, timeout, deadlines.stop_reason, CLOCK["now"]() - started)
        attempt.error_value += "; the job caught the exception that stopped it and ran on"
    attempt = _check_connection(before, attempt)
    attempt.duration = CLOCK["now"]() - started
    attempt.output = capture.finish()
    return attempt


def connection_state() -> tuple | None:
    """What a job must leave as it found: atomic blocks, autocommit, and (outside an
    atomic block) a transaction open on the server. None while there is no connection."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # once: each read through the proxy looks it up again
    raw = wrapper.connection
    if raw is None:
        return None
    info = getattr(raw, "info", None)  # psycopg: transaction_status 0 is idle; sqlite3: in_transaction
    status = getattr(info, "transaction_status", None) if info is not None else getattr(raw, "in_transaction", None)
    atomic = wrapper.in_atomic_block
    return (atomic, len(wrapper.savepoint_ids), wrapper.get_autocommit(), None if atomic else int(status or 0))


def _check_connection(before: tuple | None, attempt: Attempt) -> Attempt:
    """An in-process job that left the connection in a transaction, with autocommit off
    or broken has failed, whatever it returned: what it wrote there was never committed.
    The runner closes the connection (the server rolls the transaction back) and goes on
    with a fresh one."""
    after = connection_state()
    if after is None:
        return attempt
    if isinstance(attempt.exception, DatabaseError) and not connection.is_usable():
        return attempt  # the database went away under the job: the runner's next write fails the tick
    if after != (before or (False, 0, True, 0)):
        why = "left its database connection in a transaction (or with autocommit off)"
    elif connection.errors_occurred and not connection.is_usable():
        why = "left its database connection broken"
    else:
        return attempt
    _reset_connection(before)
    value = f"the job {why}: nothing it wrote in that transaction was kept; the runner reconnected"
    if attempt.is_error:
        value += f" (it also failed: {attempt.error_type}: {attempt.error_value})"
    return Attempt(Outcome.FAILURE, error_type="DatabaseConnection", error_value=value, traceback=attempt.traceback)


def _reset_connection(before: tuple | None) -> None:
    if before is None or not before[0]:  # the runner's own code is in no atomic block
        connection.in_atomic_block, connection.needs_rollback = False, False
        connection.savepoint_ids, connection.atomic_blocks = [], []
    connection.close()
    connection.errors_occurred = False


def child_command(cmd: str, argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "crontabber.engine.child", cmd, *argv]


def run_in_child(name: str, cmd: str, argv: list[str], timeout: float | None, deadlines: Deadlines) -> Attempt:
    capture, started = OutputCapture(name), CLOCK["now"]()
    # The child imports the same project: same settings module, same import path.
    env = {**environment(), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        child_command(cmd, argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
    )
    stopped_by = _watch(child, capture, timeout, deadlines)
    output = capture.finish()
    if stopped_by:
        attempt = _stopped(stopped_by, timeout, deadlines.stop_reason, CLOCK["now"]() - started)
    else:
        attempt = _exited(child.returncode, output)
    attempt.duration, attempt.output = CLOCK["now"]() - started, output
    return attempt


def _watch(child: subprocess.Popen, capture: OutputCapture, timeout, deadlines: Deadlines):
    """Its output captured line by line until it exits, or until its timeout or the
    runner's stop, which terminate it: then what stopped it."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")), daemon=True)
    reader.start()
    stopped_by = None
    with deadlines.running(timeout, in_process=False):
        while child.poll() is None and not stopped_by:
            while lines:
                capture.write(lines.pop(0))
            stopped_by = deadlines.expired()
            if stopped_by:
                _terminate(child)
            else:
                try:
                    child.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
    reader.join(timeout=5)
    for line in lines:
        capture.write(line)
    return stopped_by


def _exited(status: int, output: str) -> Attempt:
    """What a child's exit status says: success, skipped (SkipRun) or a failure."""
    if status == 0:
        return Attempt(Outcome.SUCCESS)
    last = output.rsplit("\n", 1)[-1] if output else ""
    if status == SKIP_EXIT_STATUS:
        return Attempt(Outcome.SKIPPED, error_value=last.removeprefix("SkipRun: "))
    return Attempt(
        Outcome.FAILURE, error_type="ExitStatus", error_value=f"exit status {status}: {last}", traceback=output
    )


def _terminate(child: subprocess.Popen) -> None:
    """SIGTERM to the child's process group; SIGKILL if it is still there after the grace."""
    grace = conf.get("CRONTABBER_KILL_GRACE_SECONDS")
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            logger.warning("child %s still running %s s after %s", child.pid, wait, signal.Signals(signum).name)
