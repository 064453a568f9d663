"""Running an attempt in this process: its output sent to the log line by line with its
tail kept (OutputCapture), its timeout and the runner's stop enforced (Deadlines, on the
real clock), SkipRun read, and the database connection it leaves checked. A command
costs no start-up here (its parser is built once per process).

A timeout or a stop is delivered as an exception raised by a SIGALRM handler: it
interrupts Python code and blocking system calls, not a long computation inside a C
extension, and it only works when the runner is in the main thread; a job that needs more
runs in a child process (child.py).
"""

from __future__ import annotations

import collections
import io
import os
import signal
import threading
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass

from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections

from .. import SkipRun, conf, logger, scrub
from ..outcomes import Attempt, Interruption, Outcome

# The real clock, kept out of freezegun's reach (it patches module-level references).
CLOCK = {"now": time.monotonic}


class JobTimeout(BaseException):
    """Raised inside an in-process job that ran past its timeout. BaseException, so a
    job's own ``except Exception`` does not swallow it."""


class StopRun(BaseException):
    """Raised inside an in-process job when the runner must stop (signal, grace over)."""


class OutputCapture(io.TextIOBase):
    """A stream that sends each complete line to the crontabber logger and keeps the tail."""

    LONGEST_LINE = 65536  # characters: a longer line is logged in pieces, so memory stays bounded

    def __init__(self, job_name: str):
        self.job_name = job_name
        self.tail_chars = conf.get("CRONTABBER_OUTPUT_TAIL_CHARS")
        self._lines = scrub.Lines()  # each line scrubbed before the log (and Sentry's breadcrumbs) and the tail
        self._partial: list[str] = []
        self._partial_size = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0

    def writable(self):
        return True

    def write(self, text: str) -> int:
        *lines, rest = text.split("\n")
        for line in lines:
            self._keep(self._lines.line("".join(self._partial) + line))
            self._partial, self._partial_size = [], 0
        self._partial.append(rest)
        self._partial_size += len(rest)
        if self._partial_size > self.LONGEST_LINE:
            done, rest = self._lines.piece("".join(self._partial))
            self._keep(done)
            self._partial, self._partial_size = [rest], len(rest)
        return len(text)

    def _keep(self, line: str) -> None:
        logger.info("%s: %s", self.job_name, line, extra={"crontabber_job": self.job_name})
        self._tail.append(line)
        self._tail_size += len(line) + 1
        # Drop the oldest line only while the others still hold the whole tail.
        while len(self._tail) > 1 and self._tail_size - len(self._tail[0]) - 1 >= self.tail_chars:
            self._tail_size -= len(self._tail.popleft()) + 1

    def finish(self) -> str:
        """Flush a last unterminated line and return the kept tail: the last
        CRONTABBER_OUTPUT_TAIL_CHARS characters of the output."""
        if self._partial_size:
            self._keep(self._lines.line("".join(self._partial)))
            self._partial, self._partial_size = [], 0
        return "\n".join(self._tail)[-self.tail_chars :] if self.tail_chars else ""


@dataclass
class Deadlines:
    """The job's timeout and the runner's stop deadline, as instants on the real clock.

    In the main thread they are enforced for in-process jobs with one SIGALRM timer set
    to the nearest; child processes are watched by polling instead."""

    job: float | None = None
    stop: float | None = None
    stop_reason: str = ""
    in_process_job: bool = False
    fired: type[BaseException] | None = None  # what was raised in the job under way
    _previous_handler: object = None

    @property
    def usable(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def install(self) -> None:
        if self.usable:
            self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)

    def uninstall(self) -> None:
        if self.usable and self._previous_handler is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous_handler)
            self._previous_handler = None

    def __enter__(self):
        self.install()
        return self

    def __exit__(self, *exc_info):
        self.uninstall()

    def expired(self) -> type[BaseException] | None:
        now = CLOCK["now"]()
        if self.job is not None and now >= self.job:
            return JobTimeout
        if self.stop is not None and now >= self.stop:
            return StopRun
        return None

    def rearm(self) -> None:
        if not (self.usable and self._previous_handler is not None):
            return
        pending = [d for d in (self.job, self.stop) if d is not None]
        if not pending or not self.in_process_job:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        # Then again every second: a job that swallows the exception is raised at again.
        signal.setitimer(signal.ITIMER_REAL, max(min(pending) - CLOCK["now"](), 0.001), 1.0)

    def _on_alarm(self, signum, frame) -> None:
        expired = self.expired()
        if expired is not None and self.in_process_job:
            self.fired = expired
            raise expired(self.stop_reason if expired is StopRun else "timeout")
        self.rearm()

    @contextmanager
    def running(self, timeout: float | None, in_process: bool):
        self.job = CLOCK["now"]() + timeout if timeout else None
        self.in_process_job = in_process
        self.fired = None
        self.rearm()
        try:
            yield
        finally:
            self.in_process_job = False
            self.job = None
            self.rearm()


def stopped(kind: type[BaseException], timeout: float | None, reason: str, elapsed: float) -> Attempt:
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
                _in_this_process(body, capture)
        attempt = Attempt(Outcome.SUCCESS)
    except SkipRun as skip:
        attempt = Attempt(Outcome.SKIPPED, error_value=str(skip))
    except SystemExit as exit_:
        failed = exit_.code not in (None, 0)
        attempt = Attempt.failed(exit_, f"exit status {exit_.code}") if failed else Attempt(Outcome.SUCCESS)
    except JobTimeout:
        attempt = stopped(JobTimeout, timeout, "", CLOCK["now"]() - started)
    except StopRun as stop:
        attempt = stopped(StopRun, timeout, str(stop), 0)
    except KeyboardInterrupt:
        raise  # Ctrl-C without cronrun's handler: the runner stops
    except BaseException as error:  # of any kind: the job's failure, not the runner's
        attempt = Attempt.failed(error)
    if deadlines.fired is not None and attempt.outcome not in (Outcome.TIMEOUT, Outcome.INTERRUPTED):
        # The job caught what it was stopped with and went on: it was stopped all the same.
        attempt = stopped(deadlines.fired, timeout, deadlines.stop_reason, CLOCK["now"]() - started)
        attempt.error_value += "; the job caught the exception that stopped it and ran on"
    attempt = _check_connection(before, attempt)
    attempt.duration = CLOCK["now"]() - started
    attempt.output = capture.finish()
    return attempt


def _in_this_process(body, capture) -> None:
    """``body(capture)``; a process it forked never comes back here: a child that returns or
    raises (sys.exit included) leaves at once with its exit status, instead of going on as
    a second runner (running later jobs, closing the runner's connection)."""
    pid = os.getpid()
    try:
        body(capture)
    except SystemExit as exit_:
        _leave_if_forked(pid, exit_.code if isinstance(exit_.code, int) else 1)
        raise
    except BaseException:
        _leave_if_forked(pid, 1)
        raise
    _leave_if_forked(pid, 0)


def _leave_if_forked(pid: int, status: int) -> None:
    if os.getpid() != pid:
        os._exit(status)


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
