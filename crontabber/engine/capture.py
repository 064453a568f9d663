"""What an attempt run in this process or a child is held to: its output, sent to the log
line by line with its tail kept (OutputCapture), and its timeout and the runner's stop
(Deadlines), on the real clock.

In this process a timeout or a stop is delivered as an exception raised by a SIGALRM
handler: it interrupts Python code and blocking system calls, not a long computation
inside a C extension, and it only works when the runner is in the main thread. A child
process is watched by polling instead.
"""

from __future__ import annotations

import collections
import io
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .. import conf, logger, scrub

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
        self._partial: list[str] = []
        self._partial_size = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0

    def writable(self):
        return True

    def write(self, text: str) -> int:
        *lines, rest = text.split("\n")
        for line in lines:
            self._emit("".join(self._partial) + line)
            self._partial, self._partial_size = [], 0
        self._partial.append(rest)
        self._partial_size += len(rest)
        if self._partial_size > self.LONGEST_LINE:
            self._emit("".join(self._partial))
            self._partial, self._partial_size = [], 0
        return len(text)

    def _emit(self, line: str) -> None:
        line = scrub.text(line)  # before the log (and Sentry's breadcrumbs) and the tail see it
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
            self._emit("".join(self._partial))
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
