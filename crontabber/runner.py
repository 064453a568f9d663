"""The engine: one tick finds the due jobs and takes each through one path: claim, open
the attempt, run, record, release.

A tick with nothing due costs three queries whatever the number of jobs (the control row,
its last-tick stamp, the jobs). Which jobs are due, and which of their slots, is
plan.py's; claims and rows are written in batches by bookkeeping.py; a command is run by
execution.py; a job's state changes are the Job model's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from django.db import close_old_connections, connection
from django.utils import timezone

from . import conf, signals
from .attempt import Attempt
from .bookkeeping import Bookkeeping, Claimed
from .execution import CLOCK, Deadlines, run_in_child, run_in_process
from .models import Control, Job, Log, lease
from .plan import Due, plan, slots_to_run, waiting_for
from .registry import JobSpec, effective_spec, load_jobs
from .schedule import format_instant

logger = logging.getLogger("crontabber")
# One line per failed attempt. Its own logger, so that Sentry's logging integration can
# ignore it: crontabber.notify captures the attempt itself, with its exception and tags.
failure_logger = logging.getLogger("crontabber.failures")


def command_arguments(spec: JobSpec, slot: datetime, last_success: datetime | None, extra: dict) -> list[str]:
    argv = list(spec.cmd_args)
    if spec.backfill:
        argv.append(f"--run-time={format_instant(slot)}")
    if spec.last_success and last_success is not None:
        argv.append(f"--last-success={format_instant(last_success)}")
    argv += [f"--{key}={value}" for key, value in extra.items()]
    return argv


class Heartbeat:
    """A thread (with its own database connection) that renews every claim the runner
    holds, every third of the lease: a long job keeps its claim, and a dead runner's
    claims expire within one lease."""

    def __init__(self, owner: str):
        self.owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="crontabber-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(lease().total_seconds() / 3):
                try:
                    Job.objects.held_by(self.owner).renew(timezone.now())
                except Exception:  # the next beat may succeed; the lease covers a few misses
                    logger.exception("could not renew the claims of %s", self.owner)
                    close_old_connections()
        finally:
            connection.close()


@dataclass
class SlotResult:
    job: str
    slot: datetime
    attempt: Attempt


@dataclass
class TickReport:
    results: list[SlotResult] = field(default_factory=list)
    # Dry run: per job, its first slots (at most CRONTABBER_DRY_RUN_SHOWN), and whether
    # more follow up to the given last one. Never a list of every missed slot.
    planned: dict[str, tuple[list[datetime], datetime | None, bool]] = field(default_factory=dict)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (job, why): a dependency has not run
    held_all: str = ""  # why no job ran: an operator holds them all

    @property
    def failed(self) -> list[SlotResult]:
        return [r for r in self.results if not r.attempt.handled]


class Runner:
    """One runner process. ``owner`` names its claims: host, pid and a run id."""

    def __init__(self, *, out=None):
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.out = out  # a writable for one line per attempt, or None
        self.stop_requested = False
        self.deadlines = Deadlines()

    def say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text)

    def request_stop(self, reason: str, grace: float) -> None:
        """Start nothing new; the running job may go on for ``grace`` seconds, then it is
        interrupted, recorded as such and its claim released."""
        self.stop_requested = True
        self.deadlines.stop_reason = reason
        self.deadlines.stop = CLOCK["now"]() + grace
        self.deadlines.rearm()

    def tick(self, only=None, force=False, extra=None, dry_run=False, specs=None) -> TickReport:
        """Run every due job (or only the named ones) once. ``force`` runs them even if
        nothing is due; ``dry_run`` reports what would run and writes nothing. ``specs``:
        the registry, if the caller has validated it already."""
        specs, now, report = self._registry(specs, only), timezone.now(), TickReport()
        control = Control.load()
        if not dry_run:
            Control.record_tick(now, self.owner)
        if control.hold_all and not force:
            report.held_all = control.hold_reason()
            self.say(f"{report.held_all}; nothing runs\n")
            return report
        if dry_run:
            return self._dry_run(plan(specs, Job.objects.tick_rows(), now, force), now, report)
        if control.purge_due(now):
            self._purge_old_logs(now)
        rows = self._start_new_and_realign(specs, Job.objects.tick_rows(), now)
        self._run(plan(specs, rows, now, force), extra or {}, report)
        return report

    # --- before the jobs run -------------------------------------------------------------

    @staticmethod
    def _registry(specs, only) -> list[JobSpec]:
        specs = load_jobs() if specs is None else list(specs)
        if only:
            by_name = {spec.name: spec for spec in specs}
            specs = [by_name[name] for name in only]
        return specs

    @staticmethod
    def _purge_old_logs(now: datetime) -> None:
        """Delete Log rows older than the retention; a long backlog of them over several ticks."""
        cutoff = now - timedelta(days=conf.get("CRONTABBER_LOG_RETENTION_DAYS"))
        batch = conf.get("CRONTABBER_LOG_PURGE_BATCH")
        deleted = Log.objects.purge(cutoff, batch, batches=10)
        if deleted < 10 * batch:
            Control.record_purge(now)
        if deleted:
            logger.info("deleted %s log rows older than %s", deleted, cutoff)

    def _start_new_and_realign(self, specs: list[JobSpec], rows: dict, now: datetime) -> dict:
        """Rows for jobs seen for the first time (or reset), and a new next slot for jobs
        whose schedule changed. Returns the rows as they now are."""
        new = []
        for spec in specs:
            row = rows.get(spec.name)
            spec = effective_spec(spec, row)
            if row is None:
                new.append(Job(name=spec.name, **Job.fresh_state(spec.schedule, now)))
            elif row.next_run is None:
                Job.objects.filter(name=spec.name, next_run__isnull=True).update(**Job.fresh_state(spec.schedule, now))
            elif row.schedule != spec.schedule.description:
                rows[spec.name] = row._replace(next_run=self._realign(spec, now))
        if new:
            # Another runner may create the same rows at the same moment: first wins.
            Job.objects.bulk_create(new, ignore_conflicts=True)
        return rows

    @staticmethod
    def _realign(spec: JobSpec, now: datetime) -> datetime | None:
        """The job's schedule changed (registry or override): its next run as realigned,
        unless another runner holds it or realigned it first."""
        job = Job.objects.get(name=spec.name)
        next_slot, next_run = job.realigned(spec.schedule, now)
        updated = (
            Job.objects.filter(pk=job.pk, schedule=job.schedule)
            .claimable(now)
            .update(schedule=spec.schedule.description, next_slot=next_slot, next_run=next_run)
        )
        logger.info("%s: schedule is now %s; next slot %s", spec.name, spec.schedule, next_slot)
        return next_run if updated else job.next_run

    # --- the jobs ------------------------------------------------------------------------

    def _run(self, due: list[Due], extra: dict, report: TickReport) -> None:
        if not due:
            return
        book = Bookkeeping(self.owner, self.host, self.pid)
        with self.deadlines, Heartbeat(self.owner):
            try:
                for claimed in book.claim_in_batches(due, stopping=lambda: self.stop_requested):
                    self._run_job(claimed, book, extra, report)
            finally:
                book.end_batch()

    def _run_job(self, claimed: Claimed, book: Bookkeeping, extra: dict, report: TickReport) -> None:
        """A claimed job's slots, oldest first, until one is not handled."""
        for slot in claimed.slots:
            if self.stop_requested or book.lost(claimed):
                break
            waiting = self._waiting_for(claimed.spec, slot, book)
            if waiting:
                report.waiting.append((claimed.spec.name, waiting))
                self.say(f"{claimed.spec.name} {format_instant(slot)}: {waiting}\n")
                break
            log = book.open(claimed, slot)
            attempt = self._execute(claimed, log, extra, report)
            book.record(claimed, log, attempt)
            if not attempt.handled:
                break
        book.release(claimed)

    @staticmethod
    def _waiting_for(spec: JobSpec, slot: datetime, book: Bookkeeping) -> str:
        if not spec.depends_on:
            return ""
        book.flush()  # a dependency's success may still be unwritten
        return waiting_for(spec, slot, Job.objects.last_successes(spec.depends_on))

    def _execute(self, claimed: Claimed, log: Log, extra: dict, report: TickReport) -> Attempt:
        spec, job, slot = claimed.spec, claimed.job, log.slot
        argv = command_arguments(spec, slot, job.last_success, extra)
        signals.send(signals.attempt_started, spec=spec, job=job, log=log)
        logger.info("%s: running %s %s", spec.name, spec.cmd, " ".join(argv))
        run = run_in_child if spec.process else run_in_process
        attempt = run(spec.name, spec.cmd, argv, spec.timeout, self.deadlines)
        report.results.append(SlotResult(spec.name, slot, attempt))
        self.say(f"{spec.name} {format_instant(slot)}: {attempt.outcome} ({attempt.duration:.2f} s)\n")
        if attempt.is_error:
            failure_logger.error(
                "%s: slot %s %s: %s: %s",
                spec.name,
                format_instant(slot),
                attempt.outcome,
                attempt.error_type,
                attempt.error_value,
            )
        return attempt

    # --- dry run -------------------------------------------------------------------------

    def _dry_run(self, due: list[Due], now: datetime, report: TickReport) -> TickReport:
        """Each due job's first slots, and the last one if more follow: never every slot."""
        jobs = {job.name: job for job in Job.objects.filter(name__in=[item.spec.name for item in due])}
        for item in due:
            spec = item.spec
            job = jobs.get(spec.name) or Job(name=spec.name, **Job.fresh_state(spec.schedule, now))
            slots = slots_to_run(spec, job.next_slot, job.anchor(now), now, item.forced)
            shown = list(islice(slots, conf.get("CRONTABBER_DRY_RUN_SHOWN")))
            if not shown:
                continue
            more = next(slots, None) is not None
            # The last due slot, found without walking the backlog; bounded: "more" alone.
            last = spec.schedule.latest_at_or_before(now, job.anchor(now)) if more and not spec.max_backfill else None
            report.planned[spec.name] = (shown, last, more)
        return report
