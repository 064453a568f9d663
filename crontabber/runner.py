"""The engine: find due jobs, claim each, run its slots, record every attempt.

One tick costs one query when nothing is due, whatever the number of jobs. A due job
costs a claim (one conditional UPDATE), a fresh read, and per slot one Log INSERT plus
one Job UPDATE in a transaction, then the release.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain, islice, takewhile

from django.conf import settings
from django.core.management import call_command
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import SkipRun
from .models import Job, Log
from .registry import JobSpec, load_jobs
from .schedule import format_instant, truncate_to_minute

logger = logging.getLogger("crontabber")


def setting(name: str, default):
    return getattr(settings, name, default)


def lease() -> timedelta:
    return timedelta(seconds=setting("CRONTABBER_LEASE_SECONDS", 300))


def retry_delay(error_count: int) -> timedelta:
    """Back-off after ``error_count`` consecutive errors: doubles from the base, capped."""
    base = setting("CRONTABBER_RETRY_DELAY_SECONDS", 60)
    cap = setting("CRONTABBER_RETRY_MAX_DELAY_SECONDS", 3600)
    return timedelta(seconds=min(base * 2 ** max(error_count - 1, 0), cap))


class StopRun(BaseException):
    """Raised inside a running job (from a signal handler) to interrupt it.
    BaseException, so a job's own ``except Exception`` does not swallow it."""


class OutputCapture(io.TextIOBase):
    """A stream that sends each complete line to the crontabber logger and keeps the tail."""

    def __init__(self, job_name: str, tail_chars: int):
        self.job_name = job_name
        self.tail_chars = tail_chars
        self._partial = ""
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0
        self.lines = 0

    def writable(self):
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        self.lines += 1
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


@dataclass
class Attempt:
    outcome: str
    duration: float = 0.0
    output: str = ""
    error_type: str = ""
    error_value: str = ""
    traceback: str = ""

    @property
    def handled(self) -> bool:
        return self.outcome in (Log.SUCCESS, Log.SKIPPED)

    @property
    def is_error(self) -> bool:
        return self.outcome in (Log.FAILURE, Log.TIMEOUT)


def command_arguments(spec: JobSpec, slot: datetime, last_success: datetime | None, extra: dict) -> list[str]:
    argv = list(spec.cmd_args)
    if spec.backfill:
        argv.append(f"--run-time={format_instant(slot)}")
    if spec.last_success and last_success is not None:
        argv.append(f"--last-success={format_instant(last_success)}")
    argv += [f"--{key}={value}" for key, value in extra.items()]
    return argv


def execute(spec: JobSpec, argv: list[str]) -> Attempt:
    """Run the job's management command in this process and say how it went."""
    capture = OutputCapture(spec.name, setting("CRONTABBER_OUTPUT_TAIL_CHARS", 4000))
    started = time.monotonic()
    attempt = Attempt(Log.SUCCESS)
    try:
        with redirect_stdout(capture), redirect_stderr(capture):
            call_command(spec.cmd, *argv, stdout=capture, stderr=capture)
    except SkipRun as skip:
        attempt = Attempt(Log.SKIPPED, error_value=str(skip))
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            attempt = _failure(exit_, f"exit status {exit_.code}")
    except StopRun as stop:
        attempt = _failure(stop, str(stop) or "stopped", Log.INTERRUPTED)
    except Exception as error:
        attempt = _failure(error, str(error))
    attempt.duration = time.monotonic() - started
    attempt.output = capture.finish()
    return attempt


def _failure(error: BaseException, value: str, outcome: str = Log.FAILURE) -> Attempt:
    return Attempt(
        outcome,
        error_type=type(error).__name__,
        error_value=value,
        traceback="".join(traceback.format_exception(error)),
    )


class Heartbeat:
    """Renews a claim on its own thread (and so its own connection) while a job runs,
    so a long job keeps its claim and a dead runner's claim expires within one lease."""

    def __init__(self, name: str, owner: str):
        self.name, self.owner = name, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"crontabber-heartbeat-{name}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = lease().total_seconds() / 3
        try:
            while not self._stop.wait(interval):
                try:
                    renewed = Job.objects.filter(name=self.name, claimed_by=self.owner).update(
                        claim_expires=timezone.now() + lease()
                    )
                    if not renewed:
                        logger.error("%s: lost the claim while running", self.name)
                except Exception:  # the next beat may succeed; the lease covers a few misses
                    logger.exception("%s: could not renew the claim", self.name)
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
    planned: list[tuple[str, datetime]] = field(default_factory=list)  # dry run
    held: list[tuple[str, str]] = field(default_factory=list)  # (job, reason)

    @property
    def failed(self) -> list[SlotResult]:
        return [r for r in self.results if not r.attempt.handled]


class Runner:
    """One runner process. ``owner`` identifies its claims: host, pid and a run id."""

    def __init__(self, *, out=None):
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.out = out  # a writable for one line per attempt, or None
        self.stop_requested = False

    def say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text)

    # --- the tick ----------------------------------------------------------------------

    def tick(self, only=None, force=False, extra=None, dry_run=False) -> TickReport:
        """Run every due job (or only the named ones) once. ``force`` runs them even
        if nothing is due; ``dry_run`` reports what would run and writes nothing."""
        specs = load_jobs()
        if only:
            by_name = {spec.name: spec for spec in specs}
            specs = [by_name[name] for name in only]
        now = timezone.now()
        rows = {
            row[0]: row
            for row in Job.objects.values_list("name", "next_run", "schedule", "claimed_by", "claim_expires")
        }
        report = TickReport()
        due: list[JobSpec] = []
        new_jobs = []
        for spec in specs:
            row = rows.get(spec.name)
            if row is None or row[1] is None:  # never seen, or reset: starts as new
                next_run = spec.schedule.first_slot(now)
                fresh = dict(schedule=spec.schedule.description, first_run=truncate_to_minute(now),
                             next_slot=next_run, next_run=next_run)  # fmt: skip
                if dry_run:
                    pass
                elif row is None:
                    new_jobs.append(Job(name=spec.name, **fresh))
                else:
                    Job.objects.filter(name=spec.name, next_run__isnull=True).update(**fresh)
            else:
                next_run = row[1]
                if row[2] != spec.schedule.description and not dry_run:
                    next_run = self._realign(spec, now)
            if not (spec.enabled or force):
                continue
            if force or (next_run is not None and next_run <= now):
                due.append(spec)
        if new_jobs and not dry_run:
            # Another runner may create the same rows at the same moment: first wins.
            Job.objects.bulk_create(new_jobs, ignore_conflicts=True)
        for spec in self._in_dependency_order(due):
            if self.stop_requested:
                break
            if dry_run:
                self._plan_dry(spec, now, force, report)
                continue
            held_by = rows.get(spec.name)
            if held_by and held_by[3] and held_by[4] and held_by[4] < now:
                logger.warning("%s: taking over the claim of %s, expired at %s", spec.name, held_by[3], held_by[4])
            self._run_job(spec, force, extra or {}, report)
        return report

    def _in_dependency_order(self, specs: list[JobSpec]) -> list[JobSpec]:
        """Due jobs with each job after the due jobs it depends on (registry order otherwise)."""
        by_name = {spec.name: spec for spec in specs}
        ordered, placed = [], set()

        def place(spec: JobSpec) -> None:
            if spec.name in placed:
                return
            placed.add(spec.name)
            for dep in spec.depends_on:
                if dep in by_name:
                    place(by_name[dep])
            ordered.append(spec)

        for spec in specs:
            place(spec)
        return ordered

    def _realign(self, spec: JobSpec, now: datetime) -> datetime | None:
        """The registry changed this job's schedule: its next slot is the first slot of
        the new schedule at or after the old one (so a backlog is kept, not lost)."""
        job = Job.objects.get(name=spec.name)
        anchor = job.first_run or truncate_to_minute(now)
        if job.next_slot is None:
            next_slot = spec.schedule.first_slot(now)
        else:
            next_slot = spec.schedule.next_after(job.next_slot - timedelta(microseconds=1), anchor)
        next_run = max(next_slot, job.next_run) if job.error_count and job.next_run else next_slot
        free = Q(claimed_by="") | Q(claim_expires__lt=now)
        updated = Job.objects.filter(free, pk=job.pk, schedule=job.schedule).update(
            schedule=spec.schedule.description, next_slot=next_slot, next_run=next_run
        )
        logger.info("%s: schedule changed to %s; next slot %s", spec.name, spec.schedule, next_slot)
        return next_run if updated else job.next_run

    # --- one job -------------------------------------------------------------------------

    def _slots(self, spec: JobSpec, job: Job, now: datetime, force: bool):
        """The slots to run now, oldest first, lazily."""
        anchor = job.first_run or truncate_to_minute(now)
        pending = job.next_slot or spec.schedule.first_slot(now)
        if spec.backfill:
            due = takewhile(lambda slot: slot <= now, chain([pending], spec.schedule.slots_after(pending, anchor)))
            slots = islice(due, spec.max_backfill) if spec.max_backfill else due
        else:
            latest = spec.schedule.latest_at_or_before(now, anchor)
            slots = iter([latest] if latest is not None and latest >= pending else [])
        first = next(slots, None)
        if first is None:
            # Forced with nothing due: one extra run for this moment, off the grid.
            return iter([now.replace(microsecond=0)] if force else [])
        return chain([first], slots)

    def _dependencies_met(self, spec: JobSpec, slot: datetime) -> str:
        """'' when every dependency has succeeded for this slot (or a later one), else why not."""
        if not spec.depends_on:
            return ""
        successes = dict(Job.objects.filter(name__in=spec.depends_on).values_list("name", "last_success"))
        waiting = [dep for dep in spec.depends_on if not successes.get(dep) or successes[dep] < slot]
        return f"waiting for {', '.join(waiting)} to succeed for {format_instant(slot)}" if waiting else ""

    def _claim(self, spec: JobSpec, force: bool) -> bool:
        now = timezone.now()
        query = Job.objects.filter(Q(claimed_by="") | Q(claim_expires__lt=now), name=spec.name)
        if not force:
            query = query.filter(next_run__lte=now)
        return bool(query.update(claimed_by=self.owner, claimed_at=now, claim_expires=now + lease()))

    def _release(self, name: str) -> None:
        Job.objects.filter(name=name, claimed_by=self.owner).update(claimed_by="", claimed_at=None, claim_expires=None)

    def _run_job(self, spec: JobSpec, force: bool, extra: dict, report: TickReport) -> None:
        if not self._claim(spec, force):
            return  # another runner has it, or it ran since this tick looked
        try:
            with Heartbeat(spec.name, self.owner):
                job = Job.objects.get(name=spec.name)
                for slot in self._slots(spec, job, timezone.now(), force):
                    if self.stop_requested:
                        break
                    waiting = self._dependencies_met(spec, slot)
                    if waiting:
                        report.held.append((spec.name, waiting))
                        self.say(f"{spec.name} {format_instant(slot)}: held, {waiting}\n")
                        break
                    if not self._run_slot(spec, job, slot, extra, report):
                        break
        finally:
            self._release(spec.name)

    def _run_slot(self, spec: JobSpec, job: Job, slot: datetime, extra: dict, report: TickReport) -> bool:
        """Run one slot and record it. True if the job may go on to its next slot."""
        started_at = timezone.now()
        argv = command_arguments(spec, slot, job.last_success, extra)
        logger.info("%s: running %s %s", spec.name, spec.cmd, " ".join(argv))
        attempt = execute(spec, argv)
        report.results.append(SlotResult(spec.name, slot, attempt))
        self.say(f"{spec.name} {format_instant(slot)}: {attempt.outcome} ({attempt.duration:.2f} s)\n")
        if attempt.is_error:
            logger.error("%s: slot %s %s: %s: %s", spec.name, format_instant(slot), attempt.outcome,
                         attempt.error_type, attempt.error_value)  # fmt: skip
        kept = self._record(spec, job, slot, started_at, attempt)
        return kept and attempt.handled and not self.stop_requested

    def _record(self, spec: JobSpec, job: Job, slot: datetime, started_at: datetime, attempt: Attempt) -> bool:
        """Write the attempt's Log row and the job's new state together. False if this
        runner no longer holds the claim (the state is then the new holder's to write)."""
        now = timezone.now()
        anchor = job.first_run or truncate_to_minute(started_at)
        attempt_number = job.error_count + 1  # consecutive errors so far, plus this try
        job.last_run = started_at
        if attempt.handled:
            if attempt.outcome == Log.SUCCESS and (job.last_success is None or slot > job.last_success):
                job.last_success = slot
            if job.next_slot is None or slot >= job.next_slot:  # a forced extra run leaves the grid alone
                job.next_slot = spec.schedule.next_after(slot, anchor)
            job.next_run = job.next_slot
            job.error_count = 0
            job.last_error = ""
        elif attempt.is_error:
            job.error_count += 1
            job.last_error = f"{attempt.error_type}: {attempt.error_value}"[:2000]
            job.next_run = max(job.next_slot or now, now + retry_delay(job.error_count))
        # An interrupted attempt changes no schedule state: the slot runs again next tick.
        with transaction.atomic():
            Log.objects.create(
                job=job, slot=slot, started_at=started_at, duration=attempt.duration, outcome=attempt.outcome,
                attempt=attempt_number, error_type=attempt.error_type[:200],
                error_value=attempt.error_value, traceback=attempt.traceback, output=attempt.output,
                host=self.host[:200], pid=self.pid,
            )  # fmt: skip
            kept = Job.objects.filter(pk=job.pk, claimed_by=self.owner).update(
                last_run=job.last_run, last_success=job.last_success, next_slot=job.next_slot,
                next_run=job.next_run, error_count=job.error_count, last_error=job.last_error,
                claim_expires=now + lease(),
            )  # fmt: skip
        if not kept:
            logger.error("%s: lost the claim to another runner; its state is left to it", spec.name)
        return bool(kept)

    # --- dry run -------------------------------------------------------------------------

    def _plan_dry(self, spec: JobSpec, now: datetime, force: bool, report: TickReport) -> None:
        job = Job.objects.filter(name=spec.name).first() or Job(
            name=spec.name, first_run=truncate_to_minute(now), next_slot=spec.schedule.first_slot(now)
        )
        for slot in self._slots(spec, job, now, force):
            report.planned.append((spec.name, slot))
