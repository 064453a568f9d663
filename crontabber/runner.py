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
from collections import deque
from datetime import datetime, timedelta
from functools import partial
from itertools import chain, islice, takewhile

from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from . import conf, queued, rerun, scrub, signals
from .attempt import Attempt
from .bookkeeping import Bookkeeping, Claimed, database_lost
from .execution import CLOCK, Deadlines, run_in_child, run_in_process
from .models import Control, Job, Log, lease
from .plan import Due, numbered, plan, slots_between, slots_to_run, waiting_for
from .registry import JobSpec, effective_spec, load_jobs
from .report import Progress, TickReport
from .rerun import RerunRefused
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


def as_operators_changed(specs: list[JobSpec], rows: dict) -> list[JobSpec]:
    """Each job with its operator's overrides from its tick row, applied once per tick."""
    return [effective_spec(spec, rows.get(spec.name)) for spec in specs]


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


class Runner:
    """One runner process. ``owner`` names its claims: host, pid and a run id."""

    def __init__(self, *, out=None):
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.out = out  # a writable for one line per attempt, or None
        self.stop_requested = False
        self.forcing = False  # this tick runs its jobs whatever their schedule and dependencies
        self.deadlines = Deadlines()
        self.progress = Progress()

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
        self.forcing = force
        control = Control.load()
        if dry_run:
            self._dry_run(control, specs, now, force, report)
        else:
            self._record_end(now, self._run_tick, specs, control, now, force, extra or {}, report)
        return report

    def _run_tick(self, specs: list[JobSpec], control: Control, now: datetime, force, extra, report) -> None:
        if self._held_all(control, force, report):
            return
        if control.purge_due(now):
            self._purge_old_logs(now)
        rows = Job.objects.tick_rows()
        specs, rows = self._start_new_and_realign(as_operators_changed(specs, rows), rows, now, report)
        rerun.run_requested(self, specs, rows, report)
        self._run(plan(specs, rows, now, force), extra, report)

    def _record_end(self, started: datetime, run_tick, *args) -> None:
        """Run the tick and record how it ended on the control row: the health endpoint's
        proof that ticks complete (an idle tick's third and last query)."""
        try:
            run_tick(*args)
        except BaseException as error:
            try:
                Control.record_tick(started, timezone.now(), self.owner, f"{type(error).__name__}: {error}")
            except Exception as unrecorded:  # the database is gone: the error itself is what matters
                logger.error("could not record that the tick failed: %s", str(unrecorded).strip().split("\n")[0])
            raise
        Control.record_tick(started, timezone.now(), self.owner)

    # --- before the jobs run -------------------------------------------------------------

    def _held_all(self, control: Control, force: bool, report: TickReport) -> bool:
        """An operator holds every job: nothing runs (but --force)."""
        if control.hold_all and not force:
            report.held_all = control.hold_reason()
            self.say(f"{report.held_all}; nothing runs\n")
        return bool(report.held_all)

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

    def _start_new_and_realign(self, specs: list[JobSpec], rows: dict, now: datetime, report) -> tuple[list, dict]:
        """Rows for jobs seen for the first time (or reset), and a new next slot for jobs
        whose schedule changed. Returns the jobs and their rows as they now are: a job
        this fails for is left out of the tick, its failure recorded."""
        new, failed = [], set()
        for spec in specs:
            row = rows.get(spec.name)
            try:
                if row is None:
                    new.append(Job(name=spec.name, **Job.fresh_state(spec.schedule, now)))
                elif row.next_run is None:
                    fresh = Job.fresh_state(spec.schedule, now)
                    Job.objects.filter(name=spec.name, next_run__isnull=True).update(**fresh)
                elif row.schedule != spec.schedule.description:
                    rows[spec.name] = row._replace(next_run=self._realign(spec, now))
            except Exception as error:
                if database_lost(error):
                    raise
                self._record_job_error(spec, error, now, report)
                failed.add(spec.name)
        if new:
            # Another runner may create the same rows at the same moment: first wins.
            Job.objects.bulk_create(new, ignore_conflicts=True)
        return [spec for spec in specs if spec.name not in failed], rows

    def _record_job_error(self, spec: JobSpec, error: Exception, now: datetime, report: TickReport) -> None:
        """A failed attempt of a job that could not even be planned (no claim is held)."""
        logger.error("%s: %s", spec.name, error, exc_info=error)
        attempt = scrub.attempt(Attempt.failed(error)).storable()
        report.add(spec.name, now, attempt)
        self.say(f"{spec.name}: {attempt.outcome}: {attempt.error_type}: {attempt.error_value}\n")
        try:
            job = Job.objects.get_or_create(name=spec.name)[0]
            (log,) = Log.opened(job, [now], now, self.host, self.pid)
            log.finish(attempt)
            log.save(force_insert=True)
            Job.objects.filter(pk=job.pk).claimable(now).update(
                error_count=F("error_count") + 1, last_error=f"{attempt.error_type}: {attempt.error_value}"[:2000]
            )
        except Exception:
            logger.exception("%s: could not record the failure", spec.name)

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
        if due:
            claims = lambda book: book.claim_in_batches(due, stopping=lambda: self.stop_requested)  # noqa: E731
            self._run_claimed(claims, extra, report)

    def _run_claimed(self, claims, extra: dict, report: TickReport) -> None:
        """Run each job ``claims(book)`` yields, with the heartbeat renewing their claims."""
        book = Bookkeeping(self.owner, self.host, self.pid, on_recorded=lambda *item: self._recorded(report, *item))
        with self.deadlines, Heartbeat(self.owner):
            try:
                for claimed in claims(book):
                    self._run_job(claimed, book, extra, report)
            finally:
                book.end_batch()
                self.progress.clear()

    def rerun(self, spec: JobSpec, start: datetime, end: datetime, report: TickReport) -> datetime | None:
        """Run the job's slots from ``start`` to ``end`` (both included) again, oldest first,
        as a tick runs slots: claimed, each a new attempt, recorded and signalled alike; the
        schedule's own state is left alone. Stops at a failure, or at a slot whose
        dependencies have not succeeded: returns that slot (else None). RerunRefused, one
        line, when every job is held, the job has never run or another runner holds it."""
        control = Control.load()
        if control.hold_all:
            raise RerunRefused(f"{control.hold_reason()}; nothing was re-run")
        job = rerun.job_that_ran(spec.name)
        spec, anchor, held = effective_spec(spec, job), job.anchor(timezone.now()), []
        slots = slots_between(spec, start, end, anchor)
        count = partial(spec.schedule.count, until=end, anchor=anchor) if spec.backfill else None

        def claim(book: Bookkeeping) -> list[Claimed]:
            held.extend(filter(None, [book.claim_again(spec, slots, count)]))
            return held

        self._run_claimed(claim, {}, report)
        if not held:
            holder = Job.objects.get(pk=job.pk).claimed_by or "another runner"
            raise RerunRefused(f"it is running (claimed by {holder}); nothing was re-run, try again later")
        return held[0].waiting_at

    def _run_job(self, claimed: Claimed, book: Bookkeeping, extra: dict, report: TickReport) -> None:
        """A claimed job's slots, oldest first, until one is not handled. Whatever raises
        on the way is this job's failure, not the tick's."""
        if claimed.spec.task or claimed.spec.backend:  # Django's Tasks framework: its own path
            return queued.run_job(self, claimed, book, extra, report)
        try:
            for slot, position, total in numbered(claimed.slots, claimed.count):
                if self.stop_requested or book.lost(claimed) or self._waits(claimed, slot, book, report):
                    break
                log = book.open(claimed, slot)
                self.progress.start(log, position, total)
                attempt = self._execute(claimed, log, extra)
                book.record(claimed, log, attempt)
                if not attempt.handled:
                    break
        except Exception as error:
            if database_lost(error):
                raise
            book.fail(claimed, error)
        book.release(claimed)

    def _waits(self, claimed: Claimed, slot: datetime, book: Bookkeeping, report: TickReport) -> bool:
        """The slot waits for a dependency to succeed for it: said, and the job stops
        there (but with --force, which runs it anyway, as the original crontabber)."""
        waiting = self._waiting_for(claimed, slot, book)
        if waiting and self.forcing:
            self.say(f"{claimed.spec.name} {format_instant(slot)}: forced, although {waiting}\n")
        elif waiting:
            report.waiting.append((claimed.spec.name, waiting))
            self.say(f"{claimed.spec.name} {format_instant(slot)}: {waiting}\n")
            claimed.waiting_at = slot
        return bool(waiting) and not self.forcing

    @staticmethod
    def _waiting_for(claimed: Claimed, slot: datetime, book: Bookkeeping) -> str:
        """Read again only when the dependencies' successes last read do not cover the
        slot: they only move forward, so a backlog reads them once, not once a slot."""
        spec = claimed.spec
        if not spec.depends_on:
            return ""
        if claimed.successes is None or waiting_for(spec, slot, claimed.successes):
            book.flush()  # a dependency's success may still be unwritten
            claimed.successes = Job.objects.last_successes(spec.depends_on)
        return waiting_for(spec, slot, claimed.successes)

    def _execute(self, claimed: Claimed, log: Log, extra: dict) -> Attempt:
        spec, job = claimed.spec, claimed.job
        argv = command_arguments(spec, log.slot, job.last_success, extra)
        signals.send(signals.attempt_started, spec=spec, job=job, log=log)
        logger.info("%s: running %s %s", spec.name, spec.cmd, " ".join(argv))
        run = run_in_child if spec.process else run_in_process
        return run(spec.name, spec.cmd, argv, spec.timeout, self.deadlines)

    def _recorded(self, report: TickReport, spec: JobSpec, log: Log, attempt: Attempt, written: bool) -> None:
        """An attempt's outcome is in the database (or another runner took the job over):
        only now is it counted and printed, so what is printed is what was recorded."""
        report.add(spec.name, log.slot, attempt)
        counter = self.progress.counter(spec.name, log, routine=attempt.handled and written)
        if counter is not None:
            lost = "" if written else "; not recorded: another runner took the job over"
            self.say(
                f"{spec.name} {format_instant(log.slot)}: {attempt.outcome} ({attempt.duration:.2f} s){counter}{lost}\n"
            )
        if attempt.is_error:
            failure_logger.error(
                "%s: slot %s %s: %s: %s",
                spec.name,
                format_instant(log.slot),
                attempt.outcome,
                attempt.error_type,
                attempt.error_value,
            )

    # --- dry run -------------------------------------------------------------------------

    def _dry_run(self, control: Control, specs: list[JobSpec], now: datetime, force: bool, report) -> None:
        """What a real tick at this instant would run, as it would (realigned schedules,
        other runners' claims, dependencies met by the jobs before, every job succeeding),
        writing nothing. Each job's first slots, and the last one if more follow."""
        if self._held_all(control, force, report):
            return
        rows, jobs = Job.objects.tick_rows(), {job.name: job for job in Job.objects.all()}
        specs = as_operators_changed(specs, rows)
        for spec in specs:
            job = jobs.get(spec.name)
            if job and job.next_run and job.schedule != spec.schedule.description and not job.is_claimed(now):
                job.next_slot, job.next_run = job.realigned(spec.schedule, now)
                rows[spec.name] = rows[spec.name]._replace(next_run=job.next_run)
        successes = {name: job.last_success for name, job in jobs.items()}
        for item in plan(specs, rows, now, force):
            job = jobs.get(item.spec.name) or Job(name=item.spec.name, **Job.fresh_state(item.spec.schedule, now))
            if not job.is_claimed(now):  # a real tick skips what another runner holds
                self._plan_job(item, job, now, successes, report)

    def _plan_job(self, item: Due, job: Job, now: datetime, successes: dict, report: TickReport) -> None:
        spec, shown_most = item.spec, conf.get("CRONTABBER_DRY_RUN_SHOWN")
        slots = slots_to_run(spec, job.next_slot, job.anchor(now), now, item.forced)
        if spec.depends_on and not self.forcing:  # walked in full: each slot may wait
            slots = iter(list(takewhile(lambda slot: not waiting_for(spec, slot, successes), slots)))
        shown = list(islice(slots, shown_most))
        if not shown:
            return
        following = list(islice(slots, 1))
        last = shown[-1] if not following else self._last_planned(spec, job, now, following[0], slots)
        successes[spec.name] = max(filter(None, [successes.get(spec.name), last]))  # as if it succeeded
        report.planned[spec.name] = (shown, last if following else None, bool(following))

    @staticmethod
    def _last_planned(spec: JobSpec, job: Job, now: datetime, following: datetime, rest) -> datetime:
        """The last slot a long backlog runs this tick, found without walking it when unbounded."""
        if spec.max_backfill or spec.depends_on:
            return deque(chain([following], rest), maxlen=1)[0]
        return spec.schedule.latest_at_or_before(now, job.anchor(now))
