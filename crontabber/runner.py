"""The engine: find due jobs, claim them, run their slots, record every attempt.

A tick with nothing due costs three queries whatever the number of jobs (the control row,
its last-tick stamp, the jobs). Due jobs are claimed a few at a time (one conditional
UPDATE and one read per batch), and the Log rows of the batch's first attempts are
written, as ``running``, by one INSERT before any of them starts; outcomes and job
states are written in one transaction per batch of quick attempts, or at once for an
attempt that took real time or failed.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain, islice, takewhile

from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import scrub, signals
from .bulk import update_rows
from .execution import CLOCK, Attempt, Deadlines, run_in_child, run_in_process, setting
from .models import Control, Job, Log
from .registry import JobSpec, load_jobs
from .schedule import ScheduleError, format_instant, truncate_to_minute

logger = logging.getLogger("crontabber")
# One line per failed attempt. Its own logger, so that Sentry's logging integration can
# ignore it: crontabber.notify captures the attempt itself, with its exception and tags.
failure_logger = logging.getLogger("crontabber.failures")


def lease() -> timedelta:
    return timedelta(seconds=setting("CRONTABBER_LEASE_SECONDS", 300))


def retry_delay(error_count: int) -> timedelta:
    """Back-off after ``error_count`` consecutive errors: doubles from the base, capped."""
    base = setting("CRONTABBER_RETRY_DELAY_SECONDS", 60)
    cap = setting("CRONTABBER_RETRY_MAX_DELAY_SECONDS", 3600)
    return timedelta(seconds=min(base * 2 ** max(error_count - 1, 0), cap))


def command_arguments(spec: JobSpec, slot: datetime, last_success: datetime | None, extra: dict) -> list[str]:
    argv = list(spec.cmd_args)
    if spec.backfill:
        argv.append(f"--run-time={format_instant(slot)}")
    if spec.last_success and last_success is not None:
        argv.append(f"--last-success={format_instant(last_success)}")
    argv += [f"--{key}={value}" for key, value in extra.items()]
    return argv


class Heartbeat:
    """One thread per runner (with its own database connection) that renews every claim
    the runner holds, every third of the lease: a long job keeps its claim, and a dead
    runner's claims expire within one lease."""

    def __init__(self, owner: str):
        self.owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="crontabber-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        interval = lease().total_seconds() / 3
        try:
            while not self._stop.wait(interval):
                try:
                    Job.objects.filter(claimed_by=self.owner).update(claim_expires=timezone.now() + lease())
                except Exception:  # the next beat may succeed; the lease covers a few misses
                    logger.exception("could not renew the claims of %s", self.owner)
                    close_old_connections()
        finally:
            connection.close()


@dataclass
class Pending:
    """A finished attempt not yet written: outcomes are written in batches."""

    spec: JobSpec
    job: Job
    log: Log
    attempt: Attempt
    previous_errors: int


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
    held: list[tuple[str, str]] = field(default_factory=list)  # (job, reason)
    held_all: str = ""

    @property
    def failed(self) -> list[SlotResult]:
        return [r for r in self.results if not r.attempt.handled]


# How much work to claim at once (seconds of expected run time), and at most how many jobs.
BATCH_SECONDS = 0.25
MAX_BATCH = 200
QUICK_SECONDS = 0.1  # attempts shorter than this have their outcome written in batches
LOG_FIELDS = ["started_at", "duration", "outcome", "error_type", "error_value", "traceback", "output"]
JOB_FIELDS = [
    "last_run", "last_success", "last_skipped", "next_slot", "next_run", "error_count", "last_error",
    "claimed_by", "claimed_at", "claim_expires",
]  # fmt: skip

# What one tick reads of every job, in one query.
ROW_FIELDS = (
    "name",
    "next_run",
    "schedule",
    "claimed_by",
    "claim_expires",
    "enabled_override",
    "schedule_override",
    "run_requested",
)


def purge_due(control: Control, now: datetime) -> bool:
    return control.last_purge is None or now - control.last_purge >= timedelta(hours=1)


def purge_old_logs(now: datetime) -> int:
    """Delete Log rows older than CRONTABBER_LOG_RETENTION_DAYS, in batches of at most
    CRONTABBER_LOG_PURGE_BATCH rows and at most 10 batches a tick; the rest go next tick."""
    cutoff = now - timedelta(days=setting("CRONTABBER_LOG_RETENTION_DAYS", 90))
    batch = setting("CRONTABBER_LOG_PURGE_BATCH", 1000)
    deleted = 0
    for _ in range(10):
        ids = list(
            Log.objects.filter(started_at__lt=cutoff).exclude(outcome=Log.RUNNING).values_list("pk", flat=True)[:batch]
        )
        if ids:
            deleted += Log.objects.filter(pk__in=ids)._raw_delete(Log.objects.db)
        if len(ids) < batch:
            Control.objects.filter(pk=1).update(last_purge=now)
            break
    if deleted:
        logger.info("deleted %s log rows older than %s", deleted, cutoff)
    return deleted


class Runner:
    """One runner process. ``owner`` identifies its claims: host, pid and a run id."""

    def __init__(self, *, out=None):
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.out = out  # a writable for one line per attempt, or None
        self.stop_requested = False
        self.deadlines = Deadlines()
        self.heartbeat = Heartbeat(self.owner)

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

    # --- the tick ----------------------------------------------------------------------

    def tick(self, only=None, force=False, extra=None, dry_run=False, specs=None) -> TickReport:
        """Run every due job (or only the named ones) once. ``force`` runs them even
        if nothing is due; ``dry_run`` reports what would run and writes nothing.
        ``specs``: the registry, if the caller has validated it already."""
        specs = load_jobs() if specs is None else list(specs)
        if only:
            by_name = {spec.name: spec for spec in specs}
            specs = [by_name[name] for name in only]
        now = timezone.now()
        report = TickReport()
        control = self._control(now, dry_run)
        if control.hold_all and not force:
            report.held_all = f"all jobs are held by {control.held_by or 'an operator'} since {control.held_since}"
            self.say(f"{report.held_all}; nothing runs\n")
            return report
        if not dry_run and purge_due(control, now):
            purge_old_logs(now)
        rows = {row[0]: row for row in Job.objects.values_list(*ROW_FIELDS)}
        due: list[tuple[JobSpec, bool]] = []  # (spec, forced)
        new_jobs = []
        for spec in specs:
            row = rows.get(spec.name)
            if row is not None:
                spec = self._effective(spec, row)
            if row is None or row[1] is None:  # never seen, or reset: starts as new
                next_run = spec.schedule.first_slot(now)
                fresh = dict(
                    schedule=spec.schedule.description,
                    first_run=truncate_to_minute(now),
                    next_slot=next_run,
                    next_run=next_run,
                )
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
            requested = row is not None and row[7] is not None  # "run now" from the admin
            if not (spec.enabled or force or requested):
                continue
            if force or requested or (next_run is not None and next_run <= now):
                due.append((spec, force or requested))
        if new_jobs:
            # Another runner may create the same rows at the same moment: first wins.
            Job.objects.bulk_create(new_jobs, ignore_conflicts=True)
        if not due:
            return report
        if dry_run:
            for spec, forced in self._in_dependency_order(due):
                self._plan_dry(spec, now, forced, report)
            return report
        self.deadlines.install()
        try:
            self._run_due(self._in_dependency_order(due), extra or {}, report)
        finally:
            self.deadlines.uninstall()
        return report

    def _control(self, now: datetime, dry_run: bool) -> Control:
        """The shared switches; a real tick also records itself as the last tick."""
        control = Control.objects.filter(pk=1).first()
        if control is None:
            control = Control.objects.get_or_create(pk=1)[0]
        if not dry_run:
            Control.objects.filter(pk=1).update(last_tick=now, last_tick_by=self.owner)
        return control

    def _effective(self, spec: JobSpec, row) -> JobSpec:
        if row[5] is None and not row[6]:
            return spec
        try:
            return spec.with_overrides(row[5], row[6])
        except ScheduleError as error:
            logger.error("%s: ignoring the schedule override %r: %s", spec.name, row[6], error)
            return spec.with_overrides(row[5], "")

    def _in_dependency_order(self, due: list[tuple[JobSpec, bool]]) -> list[tuple[JobSpec, bool]]:
        """Due jobs with each job after the due jobs it depends on (registry order otherwise)."""
        by_name = {spec.name: (spec, forced) for spec, forced in due}
        ordered, placed = [], set()

        def place(name: str) -> None:
            if name in placed:
                return
            placed.add(name)
            for dep in by_name[name][0].depends_on:
                if dep in by_name:
                    place(dep)
            ordered.append(by_name[name])

        for spec, _ in due:
            place(spec.name)
        return ordered

    def _realign(self, spec: JobSpec, now: datetime) -> datetime | None:
        """The job's schedule changed (registry or override): its next slot becomes the
        new schedule's first slot after the last slot it handled, so a backlog is kept and
        the new schedule takes effect at once."""
        job = Job.objects.get(name=spec.name)
        anchor = job.first_run or truncate_to_minute(now)
        handled = [t for t in (job.last_success, job.last_skipped) if t is not None]
        after = max(handled) if handled else anchor - timedelta(microseconds=1)
        next_slot = spec.schedule.next_after(after, anchor)
        next_run = max(next_slot, job.next_run) if job.error_count and job.next_run else next_slot
        free = Q(claimed_by="") | Q(claim_expires__lt=now)
        updated = Job.objects.filter(free, pk=job.pk, schedule=job.schedule).update(
            schedule=spec.schedule.description, next_slot=next_slot, next_run=next_run
        )
        logger.info("%s: schedule is now %s; next slot %s", spec.name, spec.schedule, next_slot)
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

    def _run_due(self, due: list[tuple[JobSpec, bool]], extra: dict, report: TickReport) -> None:
        """Claim due jobs a few at a time, as many as take about BATCH_SECONDS to run (one
        job while jobs are slow, so runners share the work; dozens when they are quick, so
        a claim is one statement for many), run them, and write their outcomes in batches."""
        queue = collections.deque(due)
        batch_size = 1
        self._pending, self._pending_since, self._held, self._lost = [], None, set(), set()
        self._opened, self._served = {}, {}
        self.heartbeat.start()
        try:
            while queue and not self.stop_requested:
                batch = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
                started, attempts_before = CLOCK["now"](), len(report.results)
                claimed = self._claim(batch)
                if not claimed and queue:
                    queue = self._still_claimable(queue)
                self._open_attempts(batch, claimed)
                for spec, forced in batch:
                    if spec.name in claimed and not self.stop_requested:
                        self._run_claimed(spec, forced, claimed[spec.name], extra, report)
                self._flush()
                self._discard_unstarted()
                self._release_held()
                ran = len(report.results) - attempts_before
                if ran:
                    per_attempt = max((CLOCK["now"]() - started) / ran, 0.001)
                    batch_size = max(1, min(MAX_BATCH, int(BATCH_SECONDS / per_attempt)))
        finally:
            try:
                self._flush()
                self._discard_unstarted()
            finally:
                self._release_held()
                self.heartbeat.stop()

    def _claim(self, batch: list[tuple[JobSpec, bool]]) -> dict[str, Job]:
        """One atomic statement: each job of the batch becomes ours if nobody holds a live
        claim on it and it is still due (or forced); then one read of those we got. The
        old holder of an expired claim is kept in taken_over_from."""
        now = timezone.now()
        names = [spec.name for spec, _ in batch]
        forced = [spec.name for spec, is_forced in batch if is_forced]
        free = Q(claimed_by="") | Q(claim_expires__lt=now)
        due = Q(next_run__lte=now) | Q(name__in=forced)
        # taken_over_from is set first: the SET list reads the old claimed_by everywhere.
        claimed = Job.objects.filter(free, due, name__in=names).update(
            taken_over_from=F("claimed_by"), claimed_by=self.owner, claimed_at=now, claim_expires=now + lease()
        )
        if not claimed:
            return {}
        jobs = {job.name: job for job in Job.objects.filter(name__in=names, claimed_by=self.owner)}
        self._held.update(jobs)
        for job in jobs.values():
            if job.taken_over_from:
                self._close_abandoned_attempts(job)
        return jobs

    def _open_attempts(self, batch: list[tuple[JobSpec, bool]], claimed: dict[str, Job]) -> None:
        """The Log rows of the first attempts of the claimed jobs, as ``running``, in one
        INSERT: a crash from here on leaves a trace, and the slots run again. A row whose
        attempt never starts (stop requested, claim lost) is deleted at the end of the
        batch; after a crash it ends as ``interrupted`` like the rest. A job with
        dependencies may be held instead of run: its row is written when it starts."""
        if not connection.features.can_return_rows_from_bulk_insert:
            return  # no ids back from a bulk INSERT (MySQL): each attempt writes its own row
        now = timezone.now()
        opened = {}
        for spec, forced in batch:
            job = claimed.get(spec.name)
            if job is None or spec.depends_on:
                continue
            slots = self._slots(spec, job, now, forced)
            slot = next(slots, None)
            if slot is not None:
                opened[spec.name] = (self._new_log(job, slot, now), chain([slot], slots))
        if opened:
            Log.objects.bulk_create([log for log, _ in opened.values()])
            self._opened = opened

    def _new_log(self, job: Job, slot: datetime, started_at: datetime) -> Log:
        return Log(
            job=job,
            slot=slot,
            started_at=started_at,
            duration=0,
            outcome=Log.RUNNING,
            attempt=job.error_count + 1,
            host=self.host[:200],
            pid=self.pid,
        )

    def _discard_unstarted(self) -> None:
        """Delete the Log rows opened for attempts that did not start."""
        if self._opened:
            ids = [log.pk for log, _ in self._opened.values()]
            self._opened = {}
            Log.objects.filter(pk__in=ids, outcome=Log.RUNNING)._raw_delete(Log.objects.db)

    def _still_claimable(self, queue: collections.deque) -> collections.deque:
        """The queued jobs nobody else holds and that are still due: one read when a claim
        came back empty, so a runner behind others skips their jobs at once instead of
        losing the race for each of them in turn."""
        now = timezone.now()
        names = [spec.name for spec, _ in queue]
        forced = [spec.name for spec, is_forced in queue if is_forced]
        free = Q(claimed_by="") | Q(claim_expires__lt=now)
        due = Q(next_run__lte=now) | Q(name__in=forced)
        open_names = set(Job.objects.filter(free, due, name__in=names).values_list("name", flat=True))
        return collections.deque(item for item in queue if item[0].name in open_names)

    def _release_held(self) -> None:
        """Release the claims still held: jobs that stopped early or waited on a dependency."""
        if self._held:
            Job.objects.filter(claimed_by=self.owner).update(claimed_by="", claimed_at=None, claim_expires=None)
            self._held.clear()

    def _close_abandoned_attempts(self, job: Job) -> None:
        """We took the job over from a runner whose claim expired: its unfinished
        attempts end as interrupted, and their slots run again."""
        logger.warning("%s: took over the claim of %s, which had expired", job.name, job.taken_over_from)
        Log.objects.filter(job=job, outcome=Log.RUNNING).update(
            outcome=Log.INTERRUPTED,
            error_type="Abandoned",
            error_value=f"runner {job.taken_over_from} stopped without finishing (its claim expired)",
        )

    def _run_claimed(self, spec: JobSpec, force: bool, job: Job, extra: dict, report: TickReport) -> None:
        # The row opened with the batch stays in _opened (deleted if unused) until it starts.
        log, slots = self._opened.get(spec.name, (None, None))
        if slots is None:
            slots = self._slots(spec, job, timezone.now(), force)
        slot = next(slots, None)
        while slot is not None and not self.stop_requested and spec.name not in self._lost:
            if spec.depends_on:
                self._flush()  # a dependency's success may still be waiting to be written
                waiting = self._dependencies_met(spec, slot)
                if waiting:
                    report.held.append((spec.name, waiting))
                    self.say(f"{spec.name} {format_instant(slot)}: held, {waiting}\n")
                    return
            following = next(slots, None)
            if log is not None:
                del self._opened[spec.name]
            attempt = self._attempt(spec, job, slot, extra, report, last=following is None, log=log)
            if not attempt.handled:
                return
            slot, log = following, None

    def _attempt(self, spec, job, slot, extra, report, last, log=None) -> Attempt:
        """Run one slot. Its Log row exists before it starts (opened with its batch, or
        written here), so a crash leaves a trace; its outcome and the job's new state are
        queued for the next write."""
        started_at = timezone.now()
        argv = command_arguments(spec, slot, job.last_success, extra)
        if log is None:
            log = self._new_log(job, slot, started_at)
            log.save(force_insert=True)
        log.started_at = started_at
        self._send(signals.attempt_started, spec=spec, job=job, log=log)
        logger.info("%s: running %s %s", spec.name, spec.cmd, " ".join(argv))
        run = run_in_child if spec.process else run_in_process
        # Secrets scrubbed from its error and traceback before they are stored or sent.
        attempt = scrub.attempt(run(spec.name, spec.cmd, argv, spec.timeout, self.deadlines))
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
        previous_errors = job.error_count
        self._apply(spec, job, log, attempt, release=last or not attempt.handled or self.stop_requested)
        self._pending.append(Pending(spec, job, log, attempt, previous_errors))
        self._pending_since = self._pending_since or CLOCK["now"]()
        # Only quick attempts wait to be written with others: whatever took real time is
        # made durable at once, so a crash repeats at most a fraction of a second of work.
        if (
            not attempt.handled
            or attempt.duration >= QUICK_SECONDS
            or CLOCK["now"]() - self._pending_since >= BATCH_SECONDS
            or len(self._pending) >= 200
        ):
            self._flush()
        return attempt

    def _apply(self, spec: JobSpec, job: Job, log: Log, attempt: Attempt, release: bool) -> None:
        """The attempt's outcome on its Log row and the job's new state, in memory."""
        now = timezone.now()
        slot = log.slot
        anchor = job.first_run or truncate_to_minute(log.started_at)
        job.last_run = log.started_at
        if attempt.handled:
            if attempt.outcome == Log.SUCCESS and (job.last_success is None or slot > job.last_success):
                job.last_success = slot
            if attempt.outcome == Log.SKIPPED:
                job.last_skipped = slot
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
        # A finished attempt serves a "run now" requested before it started, not a later one.
        if attempt.outcome != Log.INTERRUPTED:
            self._served[job.pk] = max(self._served.get(job.pk, log.started_at), log.started_at)
        if release:
            job.claimed_by, job.claimed_at, job.claim_expires = "", None, None
            self._held.discard(job.name)
        else:
            job.claim_expires = now + lease()
        log.duration, log.outcome, log.error_type = attempt.duration, attempt.outcome, attempt.error_type[:200]
        log.error_value, log.traceback, log.output = attempt.error_value, attempt.traceback, attempt.output

    def _flush(self) -> None:
        """Write the queued outcomes and job states in one transaction, only for jobs this
        runner still holds; then tell the signal receivers."""
        pending, self._pending, self._pending_since = self._pending, [], None
        if not pending:
            return
        jobs = list({id(item.job): item.job for item in pending}.values())
        served, self._served = self._served, {}
        quote = connection.ops.quote_name
        requested = Job._meta.get_field("run_requested")
        with transaction.atomic():
            update_rows(Log, [item.log for item in pending], LOG_FIELDS)
            # Only where the claim is still ours. A finished attempt serves a "run now"
            # requested before it started (served: that start), not one requested later.
            kept = update_rows(
                Job,
                jobs,
                JOB_FIELDS,
                row=("run_requested", lambda job: served.get(job.pk)),
                set_sql=f"{quote(requested.column)} = CASE WHEN {quote(requested.column)} <= {{row}} THEN NULL "
                f"ELSE {quote(requested.column)} END",
                where_sql=f"{quote('claimed_by')} = %s",
                where_params=[self.owner],
            )
        for job in jobs:
            if job.run_requested is not None and job.pk in served and job.run_requested <= served[job.pk]:
                job.run_requested = None
        if kept < len(jobs):
            held = set(Job.objects.filter(pk__in=[job.pk for job in jobs]).values_list("claimed_by", "name"))
            lost = {job.name for job in jobs if (job.claimed_by, job.name) not in held}
            self._lost.update(lost)
            logger.error("%s: lost the claim to another runner; its state is left to it", ", ".join(sorted(lost)))
        for item in pending:
            if item.job.name not in self._lost:
                self._send(
                    signals.attempt_finished,
                    spec=item.spec,
                    job=item.job,
                    log=item.log,
                    attempt=item.attempt,
                    previous_error_count=item.previous_errors,
                )

    def _send(self, signal, **kwargs) -> None:
        for receiver, error in signal.send_robust(sender=Job, **kwargs):
            if isinstance(error, Exception):
                logger.error("%s: %s failed: %r", kwargs["spec"].name, getattr(receiver, "__name__", receiver), error)

    # --- dry run -------------------------------------------------------------------------

    def _plan_dry(self, spec: JobSpec, now: datetime, force: bool, report: TickReport) -> None:
        job = Job.objects.filter(name=spec.name).first() or Job(
            name=spec.name, first_run=truncate_to_minute(now), next_slot=spec.schedule.first_slot(now)
        )
        slots = self._slots(spec, job, now, force)
        shown = list(islice(slots, setting("CRONTABBER_DRY_RUN_SHOWN", 20)))
        if not shown:
            return
        more = next(slots, None) is not None
        last = None
        if more:  # the last due slot, found without walking the backlog
            anchor = job.first_run or truncate_to_minute(now)
            last = spec.schedule.latest_at_or_before(now, anchor)
            if spec.max_backfill:
                last = None  # bounded: the tick stops before the last one; say "more"
        report.planned[spec.name] = (shown, last if more else None, more)
