"""A runner process: the name of its claims, where it prints, how it stops; its ticks and
re-runs are tick.py's (or, dry, dryrun.py's)."""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from .. import conf, logger
from ..models import Control
from ..registry import JobSpec, load_jobs
from ..words import first_line
from .dryrun import DryTick
from .execution import CLOCK, Deadlines
from .plan import sleep_seconds
from .report import TickReport
from .rerun import EVERY
from .tick import Tick
from .writes import deadlocked

FIRST_POLL_SECONDS = 0.05  # the first pause while attempts wait on task workers


def poll(pause: float, report: TickReport) -> float | None:
    """The pause before the next read of results on task workers, or None when none waits:
    short after a result landed (the next is likely as quick), twice as long after each read
    that found none, at most CRONTABBER_TASK_POLL_SECONDS."""
    if not report.queued:
        return None
    if report.attempts:
        return FIRST_POLL_SECONDS
    return min(max(pause or 0, FIRST_POLL_SECONDS) * 2, conf.get("CRONTABBER_TASK_POLL_SECONDS"))


class Runner:
    """One runner process: the name of its claims (host:pid:run id), where it prints, and
    whether it must stop."""

    def __init__(self, *, out=None, err=None, verbosity=1):
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.out, self.err = out, err  # writables for a line per attempt, and for a loop's errors; or None
        self.verbosity = verbosity  # what goes to ``out``: 0 failures, 1 a line per attempt, 2 jobs' output
        self.stop_requested = False
        self.deadlines = Deadlines()
        self.claim_size = 1  # jobs in a tick's first batch: the last tick's pace (claims.py)

    def tick(self, only=None, force=False, extra=None, dry_run=False, specs=None) -> TickReport:
        """Run every due job (or only the named ones) once. ``force`` runs them even if
        nothing is due; ``dry_run`` reports what would run and writes nothing. ``specs``:
        the registry, if the caller has validated it already."""
        specs = load_jobs() if specs is None else list(specs)
        if only:
            by_name = {spec.name: spec for spec in specs}
            specs = [by_name[name] for name in only]
        try:
            return self._tick(dry_run, force, extra).run(specs)
        except DatabaseError as error:
            if not deadlocked(error):
                raise
            # Runners racing on MariaDB (or PostgreSQL) can deadlock; the victim's statement
            # was rolled back, and the tick is taken again at once, as a loop's next would.
            logger.warning("a tick met a deadlock with another runner, ticking again: %s", first_line(error))
            return self._tick(dry_run, force, extra).run(specs)

    def rerun(self, spec: JobSpec, start: datetime, end: datetime, dry_run=False, choice=EVERY) -> TickReport:
        """Run the job's slots from ``start`` to ``end`` (both included) again (Tick.rerun)."""
        tick = self._tick(dry_run)
        tick.rerun(spec, start, end, choice)
        return tick.report

    def loop(self, specs: list[JobSpec], interval: float, max_ticks: int = 0) -> bool:
        """Tick now, then again when the first job falls due (plan.sleep_seconds), at the
        latest at the next multiple of ``interval`` seconds of the clock (so the runners of
        a deployment tick together); soon after results land while attempts wait on task
        workers (``poll``); and soon after an operator asks for something (``_sleep``). Until a
        signal or ``max_ticks``. A tick that fails on the database is one line and the loop
        goes on. Returns whether the last tick failed."""
        wake, ticks, failed, pause = threading.Event(), 0, False, None
        with self.stopping_on_signals(wake):
            while not self.stop_requested:
                failed, report = self._loop_tick(specs, interval)
                ticks += 1
                if self.stop_requested or (max_ticks and ticks >= max_ticks):
                    break
                pause = poll(pause, report)
                self._sleep(wake, sleep_seconds(timezone.now(), interval, report.wake, pause), report.asked_at)
        return failed

    def _sleep(self, wake: threading.Event, seconds: float, asked: datetime | None) -> None:
        """Sleep ``seconds`` (to the wall clock's instant, not a moment early: an early wake
        is an idle tick), or until a signal, or until an operator asks for something: the
        control row's one value read every CRONTABBER_REQUEST_POLL_SECONDS (0: never)."""
        until, every = time.time() + seconds, conf.get("CRONTABBER_REQUEST_POLL_SECONDS") or math.inf
        while (left := until - time.time()) > 0 and not wake.is_set():
            if not wake.wait(min(left, every)) and left > every and self._asked_since(asked):
                return

    def _asked_since(self, asked: datetime | None) -> bool:
        try:
            return Control.asked_since(asked)
        except DatabaseError:  # the next tick says what is wrong with the database
            connection.close()  # and the next look connects afresh
            return False

    def _loop_tick(self, specs, interval: float) -> tuple[bool, TickReport]:
        """One tick of the loop: whether it failed on the database, and its report."""
        try:
            # Around each tick, as around a request (CONN_MAX_AGE); unless the loop looks at the
            # control row while it sleeps: then it keeps its connection (a broken one is closed
            # where it fails), and a slot's tick starts without connecting.
            looking = conf.get("CRONTABBER_REQUEST_POLL_SECONDS")
            if not looking:
                close_old_connections()
            report = self.tick(specs=specs)
            if not looking:
                close_old_connections()
            if self.out is not None and self.verbosity >= 1:
                self.out.write(f"{report.summary(timezone.now())}\n")
            return False, report
        except DatabaseError as error:
            if self.err is not None:
                self.err.write(f"crontabber: database error: {first_line(error)}; next tick in {interval:g} s")
            try:
                connection.close()  # the next tick connects afresh
            except DatabaseError:
                pass
            return True, TickReport()

    def _tick(self, dry_run: bool, force=False, extra=None) -> Tick:
        return (DryTick if dry_run else Tick)(self, force, extra)

    def request_stop(self, reason: str, grace: float) -> None:
        """Start nothing new; the running job may go on for ``grace`` seconds, then it is
        interrupted, recorded as such and its claim released."""
        self.stop_requested = True
        self.deadlines.stop_reason = reason
        self.deadlines.stop = CLOCK["now"]() + grace
        self.deadlines.rearm()

    @contextmanager
    def stopping_on_signals(self, wake=None):
        """SIGTERM/SIGINT: start nothing new and let the running job finish for up to
        CRONTABBER_STOP_GRACE_SECONDS; then it is interrupted, recorded as interrupted and
        its claim released. A second signal, two seconds or more after the first,
        interrupts it at once (closer repeats are one stop seen twice: a service manager
        signalling the loop and this process together). ``wake``: an Event set on the
        first signal (a loop sleeping between ticks)."""
        first = []

        def on_stop(signum, frame):
            name, now = signal.Signals(signum).name, time.monotonic()
            if first and now - first[0] >= 2:
                self.request_stop(f"{name} received twice", 0)
            elif not first:
                first.append(now)
                grace = conf.get("CRONTABBER_STOP_GRACE_SECONDS")
                logger.warning("%s received: letting the running job finish (at most %s s), then stopping", name, grace)
                self.request_stop(f"{name} received and the job still ran {grace} s later", grace)
                if wake is not None:
                    wake.set()

        previous = {}
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, on_stop)
        except ValueError:  # not the main thread (call_command from a thread): no handlers
            pass
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
