"""Running one job command once: in this process or in a child process, with its
output sent to the log line by line, a timeout, and a stop requested from outside.

In this process (the default) a command costs no start-up, and a timeout or a stop
is delivered as an exception raised by a SIGALRM handler: it interrupts Python code and
blocking system calls, not a long computation inside a C extension, and it only works
when the runner is in the main thread. A job with ``"process": True`` runs as
``python -m crontabber.child``: a timeout or stop sends SIGTERM to its process group,
then SIGKILL after CRONTABBER_KILL_GRACE_SECONDS.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError

from . import SkipRun, scrub
from .child import environment as child_environment
from .models import Log

logger = logging.getLogger("crontabber")
# The real clock, kept out of freezegun's reach (it patches module-level references).
CLOCK = {"now": time.monotonic}
# A child process that exits with this status skipped its slot (sysexits EX_TEMPFAIL).
SKIP_EXIT_STATUS = 75


def setting(name: str, default):
    return getattr(settings, name, default)


class JobTimeout(BaseException):
    """Raised inside an in-process job that ran past its timeout. BaseException, so a
    job's own ``except Exception`` does not swallow it."""


class StopRun(BaseException):
    """Raised inside an in-process job when the runner must stop (signal, grace over)."""


@dataclass
class Attempt:
    outcome: str
    duration: float = 0.0
    output: str = ""
    error_type: str = ""
    error_value: str = ""
    traceback: str = ""
    exception: BaseException | None = None  # in-process failures only; not stored

    @property
    def handled(self) -> bool:
        return self.outcome in (Log.SUCCESS, Log.SKIPPED)

    @property
    def is_error(self) -> bool:
        return self.outcome in (Log.FAILURE, Log.TIMEOUT)


class OutputCapture(io.TextIOBase):
    """A stream that sends each complete line to the crontabber logger and keeps the tail."""

    def __init__(self, job_name: str):
        self.job_name = job_name
        self.tail_chars = setting("CRONTABBER_OUTPUT_TAIL_CHARS", 4000)
        self._partial = ""
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0

    def writable(self):
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        line = scrub.text(line)  # before the log (and Sentry's breadcrumbs) and the tail see it
        logger.info("%s: %s", self.job_name, line, extra={"crontabber_job": self.job_name})
        self._tail.append(line)
        self._tail_size += len(line) + 1
        while self._tail_size > self.tail_chars and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft()) + 1

    def finish(self) -> str:
        """Flush a last unterminated line and return the kept tail."""
        if self._partial:
            self._emit(self._partial)
            self._partial = ""
        return "\n".join(self._tail)[-self.tail_chars :]


class Deadlines:
    """The job's timeout and the runner's stop deadline, as instants on the real clock.

    In the main thread they are enforced for in-process jobs with one SIGALRM timer set
    to the nearest; child processes are watched by polling instead."""

    def __init__(self):
        self.job: float | None = None
        self.stop: float | None = None
        self.stop_reason = ""
        self.in_process_job = False
        self._previous_handler = None

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
        signal.setitimer(signal.ITIMER_REAL, max(min(pending) - CLOCK["now"](), 0.001))

    def _on_alarm(self, signum, frame) -> None:
        expired = self.expired()
        if expired is not None and self.in_process_job:
            raise expired(self.stop_reason if expired is StopRun else "timeout")
        self.rearm()

    @contextmanager
    def running(self, timeout: float | None, in_process: bool):
        self.job = CLOCK["now"]() + timeout if timeout else None
        self.in_process_job = in_process
        self.rearm()
        try:
            yield
        finally:
            self.in_process_job = False
            self.job = None
            self.rearm()


def _failure(error: BaseException, value: str, outcome: str = Log.FAILURE) -> Attempt:
    return Attempt(
        outcome,
        error_type=type(error).__name__,
        error_value=value,
        traceback="".join(traceback.format_exception(error)),
        exception=error,
    )


def _stopped(kind: type[BaseException], timeout: float | None, reason: str, elapsed: float) -> Attempt:
    if kind is JobTimeout:
        return Attempt(
            Log.TIMEOUT,
            error_type="Timeout",
            error_value=f"stopped after {elapsed:.1f} s (timeout {timeout} s)",
        )
    return Attempt(Log.INTERRUPTED, error_type="Interrupted", error_value=reason or "the runner was stopped")


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
    capture = OutputCapture(name)
    started = CLOCK["now"]()
    attempt = Attempt(Log.SUCCESS)
    try:
        with deadlines.running(timeout, in_process=True):
            with redirect_stdout(capture), redirect_stderr(capture):
                call_command(load_command(cmd), *argv, stdout=capture, stderr=capture)
    except SkipRun as skip:
        attempt = Attempt(Log.SKIPPED, error_value=str(skip))
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            attempt = _failure(exit_, f"exit status {exit_.code}")
    except JobTimeout:
        attempt = _stopped(JobTimeout, timeout, "", CLOCK["now"]() - started)
    except StopRun as stop:
        attempt = _stopped(StopRun, timeout, str(stop), 0)
    except Exception as error:
        attempt = _failure(error, str(error))
    attempt.duration = CLOCK["now"]() - started
    attempt.output = capture.finish()
    return attempt


def child_command(cmd: str, argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "crontabber.child", cmd, *argv]


def run_in_child(name: str, cmd: str, argv: list[str], timeout: float | None, deadlines: Deadlines) -> Attempt:
    capture = OutputCapture(name)
    # The child imports the same project: same settings module, same import path.
    env = {**child_environment(), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONUNBUFFERED": "1"}
    started = CLOCK["now"]()
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
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")), daemon=True)
    reader.start()
    stopped_by = None
    with deadlines.running(timeout, in_process=False):
        while child.poll() is None:
            while lines:
                capture.write(lines.pop(0))
            stopped_by = stopped_by or deadlines.expired()
            if stopped_by:
                _terminate(child)
                break
            try:
                child.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    reader.join(timeout=5)
    for line in lines:
        capture.write(line)
    duration = CLOCK["now"]() - started
    output = capture.finish()
    if stopped_by:
        attempt = _stopped(stopped_by, timeout, deadlines.stop_reason, duration)
    elif child.returncode == 0:
        attempt = Attempt(Log.SUCCESS)
    elif child.returncode == SKIP_EXIT_STATUS:
        attempt = Attempt(Log.SKIPPED, error_value=output.rsplit("\n", 1)[-1].removeprefix("SkipRun: "))
    else:
        last = output.rsplit("\n", 1)[-1] if output else ""
        attempt = Attempt(
            Log.FAILURE,
            error_type="ExitStatus",
            error_value=f"exit status {child.returncode}: {last}",
            traceback=output,
        )
    attempt.duration, attempt.output = duration, output
    return attempt


def _terminate(child: subprocess.Popen) -> None:
    """SIGTERM to the child's process group; SIGKILL if it is still there after the grace."""
    grace = setting("CRONTABBER_KILL_GRACE_SECONDS", 10)
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
