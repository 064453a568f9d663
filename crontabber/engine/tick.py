"""One tick of a runner: its steps, in order (Tick.run), and a re-run of a range of one
job's slots (Tick.rerun). Every attempt of either goes through the one slot loop
(slots.py). A dry run is the same tick with nothing written (dryrun.py).

Which jobs are due and which of their slots is plan.py's; claims are claims.py's; an
attempt's row and outcome are the ledger's; how it runs is its executor's.
"""

from __future__ import annotations

from collections import deque
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cached_property

from django.utils import timezone

from .. import conf, logger
from ..models import Control, Job, Log
from ..registry import JobSpec, effective_spec
from ..schedules import format_instant
from ..words import first_line
from . import pause
from .backends import TaskBackend
from .claims import Claims, Heartbeat
from .execution import CLOCK
from .executors import ChildProcess, Executor, InProcess, TaskCall
from .ledger import Ledger
from .plan import Due, next_due, next_wake, plan
from .report import Progress, TickReport
from .rerun import EVERY, Choice, RerunRefused, claimed_range
from .slots import SlotLoop
from .writes import database_lost


def renamed(spec: JobSpec, rows: dict, now: datetime):
    """The tick row of the job renamed from ``spec.formerly``, now under its new name (its
    row renamed and the rename recorded), or None."""
    if spec.formerly in rows and Job.objects.rename(spec.formerly, spec.name, now):
        rows[spec.name] = rows.pop(spec.formerly)._replace(name=spec.name)
        return rows[spec.name]
    return None


class Tick:
    """One tick of one runner."""

    def __init__(self, runner, force=False, extra=None):
        self.runner, self.force, self.extra = runner, force, extra or {}
        self.now = timezone.now()
        self.report = TickReport()
        self.progress = Progress(self.report, runner.out, runner.verbosity)
        self.claims = Claims(runner.owner, runner.claim_size)
        self.ledger = Ledger(runner.owner, runner.host, runner.pid)
        self.pauses = pause.Pauses(self.now, self.progress)

    @cached_property
    def slots(self) -> SlotLoop:
        return SlotLoop(self.runner, self.claims, self.ledger, self.progress, self.executor, self.force, self.extra)

    def run(self, specs: list[JobSpec]) -> TickReport:
        """The steps, in order; how the tick ended is recorded whatever happens."""
        with self.recording():  # record the tick, in error or not
            control = Control.load()  # the hold switch
            self.report.asked_at = control.asked_at
            if not self.held(control):
                self.purge(control)  # old Log rows, at most hourly
                specs, rows = self.start_new_jobs(specs)  # new rows, changed schedules realigned
                self.pauses.apply(specs, rows, control)  # jobs found off paused, found on again resumed
                self.rerun_requested(specs, rows)  # re-runs queued in the admin
                planned = plan(specs, rows, self.now, self.force)  # which jobs and slots are due
                self.report.due = len(planned.due)
                self.read_back(specs, planned.due)  # results on task backends of the jobs not due now
                self.run_due(planned.due)  # claim and run the slots, a batch at a time
                self.report.next_due = next_due(planned, rows, self.now, self.report.next_runs)
                self.report.wake = next_wake(planned, rows, self.now, self.report.next_runs)
        return self.report

    # --- the steps -----------------------------------------------------------------------

    @contextmanager
    def recording(self):
        """How the tick ended, on the control row: the health endpoint's proof that ticks
        complete (an idle tick's third and last query)."""
        try:
            yield
        except BaseException as error:
            try:
                Control.record_tick(self.now, timezone.now(), self.runner.owner, f"{type(error).__name__}: {error}")
            except Exception as unrecorded:  # the database is gone: the error itself is what matters
                logger.error("could not record that the tick failed: %s", first_line(unrecorded))
            raise
        Control.record_tick(self.now, timezone.now(), self.runner.owner, "; ".join(self.report.unreadable))

    def held(self, control: Control) -> bool:
        """An operator holds every job: nothing runs (but --force)."""
        if control.hold_all and not self.force:
            self.report.held_all = control.hold_reason()
            self.progress.say(f"{self.report.held_all}; nothing runs\n")
        return bool(self.report.held_all)

    def purge(self, control: Control) -> None:
        """Log rows older than the retention deleted, at most hourly, in bounded batches."""
        if control.purge_due(self.now):
            cutoff = self.now - timedelta(days=conf.get("CRONTABBER_LOG_RETENTION_DAYS"))
            if Log.objects.purge(cutoff, conf.get("CRONTABBER_LOG_PURGE_BATCH")):
                Control.record_purge(self.now)

    def start_new_jobs(self, specs: list[JobSpec]) -> tuple[list[JobSpec], dict]:
        """Each job as operators changed it; rows for jobs seen for the first time (or
        reset), and a new next slot for jobs whose schedule changed. Returns the jobs and
        their rows as they now are: a job this fails for is left out, its failure recorded."""
        rows = Job.objects.tick_rows()
        specs = [effective_spec(spec, rows.get(spec.name)) for spec in specs]
        new, failed = [], {}
        for spec in specs:
            try:
                self.start(spec, rows, new)
            except Exception as error:
                if database_lost(error):
                    raise
                failed[spec.name] = (spec, error)
        self.create(new)
        for spec, error in failed.values():
            self.fail_unplanned(spec, error)
        return [spec for spec in specs if spec.name not in failed], rows

    def rerun_requested(self, specs: list[JobSpec], rows: dict) -> None:
        """The re-runs operators queued in the admin, before the jobs' regular slots. One that
        waits for a dependency stays queued from that slot; one refused (held, claimed) stays
        queued as it is; one that ran, to its end or to a failure, is done."""
        for spec in specs:
            row = rows.get(spec.name)
            if row is None or row.rerun_from is None or row.rerun_to is None:
                continue
            self.progress.say(
                f"{spec.name}: re-running {format_instant(row.rerun_from)} to {format_instant(row.rerun_to)}\n"
            )
            try:
                choice = Choice(row.rerun_failed_and_missing, row.rerun_newest_first)
                waiting_at = self.rerun(spec, row.rerun_from, row.rerun_to, choice)
            except RerunRefused as refused:
                self.progress.say(f"{spec.name}: re-run not started: {refused}\n")
                continue
            self.rerun_done(spec, row, waiting_at)

    def read_back(self, specs: list[JobSpec], due: list[Due]) -> None:
        """Attempts on task backends of jobs that will not read them back in their own slot
        loop this tick (not due, disabled, or gone from the registry): recorded as their
        results come. One query, only where task backends are in use."""
        if not (conf.get("CRONTABBER_TASK_BACKEND") or any(spec.backend for spec in specs)):
            return
        waiting, known = {}, {spec.name: spec for spec in specs}
        due_now = [item.spec.name for item in due]
        for log in Log.objects.queued().exclude(job__name__in=due_now).select_related("job"):
            if log.job.name in known:
                waiting[log.job.name] = known[log.job.name]  # a job's several queued attempts: read once
            else:
                self.slots.read_orphan(log)
        for spec in waiting.values():
            self.read_back_only(spec)

    def read_back_only(self, spec: JobSpec) -> None:
        """A job's attempt on a task backend read back through the slot loop; no slot of it runs."""
        batch = [replace(claimed, reading_only=True) for claimed in self.claims.one(spec)]
        with self.holding(bool(batch)):
            self.slots.run_batch(batch)

    def run_due(self, due: list[Due]) -> None:
        """The due jobs, claimed a batch at a time, each through the slot loop."""
        queue = deque(due)
        with self.holding(bool(queue)):
            while queue and not self.runner.stop_requested:
                started, attempts = CLOCK["now"](), self.ledger.attempts
                self.slots.run_batch(self.claims.take(queue, timezone.now()))
                self.claims.paced(started, self.ledger.attempts - attempts)
        self.runner.claim_size = self.claims.size  # a loop's next tick starts at this pace

    def rerun(self, spec: JobSpec, start: datetime, end: datetime, choice=EVERY) -> datetime | None:
        """The job's slots from ``start`` to ``end`` (those ``choice`` picks, in its order) again
        through the slot loop: claimed, each a new attempt (a folded job's: one), recorded and
        signalled as any; the schedule's own state is left alone. Stops at a failure, or at a
        slot whose dependencies have not succeeded: returns that slot (else None). RerunRefused,
        one line, when every job is held, the job has never run or another runner holds it."""
        batch = claimed_range(spec, start, end, self.claims, choice)
        with self.holding(True):
            self.slots.run_batch(batch)
        return batch[0].waiting_at

    # --- what a dry run does otherwise ---------------------------------------------------

    def holding(self, claims: bool):
        """While claims are held: the heartbeat renews them, the deadlines stop a job."""
        stack = ExitStack()
        if claims:
            stack.enter_context(self.runner.deadlines)
            stack.enter_context(Heartbeat(self.runner.owner))
        return stack

    def executor(self, spec: JobSpec, job: Job) -> Executor:
        """How the job's attempts run: on its task backend; else in a child process when it
        is a ``process`` job or its runner died under it too often (Job.isolated); else here."""
        if spec.backend:
            return TaskBackend()
        if spec.process or job.isolated:
            return ChildProcess()
        return TaskCall() if spec.task else InProcess()

    def start(self, spec: JobSpec, rows: dict, new: list[Job]) -> None:
        """A renamed or new job's row (to create), a reset job's fresh state, a changed schedule realigned."""
        row = rows.get(spec.name) or renamed(spec, rows, self.now)
        if row is None:
            new.append(Job(name=spec.name, **Job.fresh_state(spec.schedule, self.now)))
        elif row.next_run is None:
            Job.objects.filter(name=spec.name, next_run__isnull=True).update(**Job.fresh_state(spec.schedule, self.now))
        elif row.schedule != spec.schedule.description:
            rows[spec.name] = row._replace(next_run=Job.objects.realign(spec.name, spec.schedule, self.now))

    def create(self, new: list[Job]) -> None:
        if new:  # another runner may create the same rows at the same moment: first wins
            Job.objects.bulk_create(new, ignore_conflicts=True)

    def fail_unplanned(self, spec: JobSpec, error: Exception) -> None:
        """A job that could not even be planned (its schedule's arithmetic raised): a failed
        attempt of it, recorded as any, unless another runner holds it."""
        Job.objects.get_or_create(name=spec.name)
        batch = self.claims.one(spec)
        for claimed in batch:
            self.progress.recorded(self.ledger.fail(claimed, error))
            self.ledger.release(claimed)
        self.claims.release(batch)

    def rerun_done(self, spec: JobSpec, row, waiting_at: datetime | None) -> None:
        """A queued re-run ran: done, or still queued from (newest first: to) the slot it waits at."""
        done = dict(rerun_from=None, rerun_to=None, rerun_failed_and_missing=False, rerun_newest_first=False)
        left = {"rerun_to" if row.rerun_newest_first else "rerun_from": waiting_at}
        Job.objects.filter(name=spec.name, rerun_from=row.rerun_from, rerun_to=row.rerun_to).update(
            **(left if waiting_at else done)
        )
