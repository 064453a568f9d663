"""The one slot loop every attempt goes through, whatever runs it (in this process, in a
child, on a task worker) and whatever made it due (its schedule, run now, --force, a
re-run): claimed a batch at a time, each job's attempt left on a task backend read back
first, then its slots oldest first, each opened, run by its executor and recorded by the
ledger, until one is not handled; a dependency not yet met, a stop or a lost claim ends
a job's slots early."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from ..outcomes import HANDLED, Attempt, Interruption, Outcome
from ..registry import JobSpec
from ..schedules import format_instant
from .backends import TaskBackend, Unreadable
from .claims import Claimed, Claims
from .executors import Executor
from .ledger import Ledger
from .plan import Upcoming, late, numbered, waiting_for
from .report import Progress, Waiting
from .writes import database_lost


def abandoned(why: str) -> Attempt:
    """An attempt its runner died under: the runner crashed or was killed, maybe by the job."""
    return Attempt.interrupted(Interruption.ABANDONED, why)


@dataclass
class SlotLoop:
    runner: object  # its stop_requested and deadlines
    claims: Claims
    ledger: Ledger
    progress: Progress
    executor_for: Callable[[JobSpec, object], Executor]  # (spec, its Job row)
    force: bool = False  # run each slot even if it waits for a dependency
    extra: dict | None = None  # --job-arg values

    def run_batch(self, batch: list[Claimed]) -> None:
        """Each claimed job's slots; then what is left of the batch written and released."""
        try:
            self.ledger.open_first(batch, timezone.now())
            for claimed in batch:
                if self.runner.stop_requested:
                    break
                self.run_job(claimed)
        finally:
            try:
                self.progress.recorded(self.ledger.end_batch(batch))
            finally:
                self.claims.release(batch)

    def run_job(self, claimed: Claimed) -> None:
        """A claimed job's slots, oldest first, until one is not handled; an attempt it left
        on a task backend is read back first. Whatever raises on the way is this job's
        failure, not the tick's."""
        executor = self.executor_for(claimed.spec, claimed.job)
        if claimed.careful:  # if it kills this runner, the others' attempts are on record
            self.progress.recorded(self.ledger.flush())
        try:
            if self.read_back(claimed, executor) and not claimed.reading_only:
                for slot, position, total in numbered(self.due_slots(claimed), claimed.count):
                    if self.stops_before(claimed, slot):
                        break
                    log = self.ledger.open(claimed, slot)
                    self.progress.start(log, position, total)
                    attempt = executor.run(claimed, log, self.extra or {}, self.runner.deadlines)
                    self.progress.recorded(self.ledger.record(claimed, log, attempt))
                    if attempt.outcome not in HANDLED:
                        break
        except Exception as error:
            if database_lost(error):
                raise
            self.progress.recorded(self.ledger.fail(claimed, error))
        self.ledger.release(claimed)

    def due_slots(self, claimed: Claimed) -> Upcoming:
        """The job's slots to run; those past its starting deadline first recorded missed, one row."""
        slots = claimed.upcoming(timezone.now())
        if claimed.missed is not None:
            self.progress.recorded(self.ledger.pass_over(claimed, claimed.missed, Outcome.MISSED))
        return slots

    def read_back(self, claimed: Claimed, executor: Executor) -> bool:
        """What the job's earlier attempt came to, recorded first: one a runner that died
        left running (an error: the job backs off), or one on a task backend whose result
        has come. Whether the job goes on: not after an error or while a result is awaited;
        at once after an attempt lost on a backend, whose slot is then queued again."""
        if claimed.abandoned is not None:
            claimed.running = claimed.abandoned
            attempt = abandoned(claimed.abandoned.error_value)
            self.progress.recorded(self.ledger.record(claimed, claimed.abandoned, attempt))
            return False
        for log, attempt in executor.late(claimed):
            self.ledger.record_late(log, attempt)
        log = executor.pending(claimed)
        if log is None:
            return True
        try:
            attempt = executor.read(claimed.spec, log, timezone.now())
        except Unreadable as error:  # the tick's read error, not the job's: read again next tick
            self.progress.report.unreadable.append(str(error))
            self.progress.say(f"{claimed.spec.name}: {error}\n")
            return False
        if attempt is None:
            self.progress.report.queued.append(claimed.spec.name)  # still on the backend
            return False
        claimed.running = log
        self.progress.recorded(self.ledger.record(claimed, log, attempt))
        claimed.retrying = attempt.outcome == Outcome.INTERRUPTED
        claimed.plan(timezone.now())
        return attempt.outcome in HANDLED or claimed.retrying

    def read_orphan(self, log) -> None:
        """An attempt of a job gone from the registry: its result, once it comes, on its row."""
        try:
            attempt = TaskBackend().read(None, log, timezone.now())
        except Unreadable as error:
            self.progress.report.unreadable.append(str(error))
            return
        if attempt is not None:
            self.ledger.record_late(log, attempt, "; its job is no longer in the registry")

    def stops_before(self, claimed: Claimed, slot: datetime) -> bool:
        """The runner must stop, another runner took the job, the slot fell past its starting
        deadline during the tick (the next tick records it missed), or it waits for a
        dependency (but with --force, which runs it anyway, as the original crontabber)."""
        if self.runner.stop_requested or self.ledger.lost(claimed):
            return True
        if not claimed.forced and late(claimed.spec, slot, timezone.now()):
            return True
        waiting = self.waiting_for(claimed, slot)
        if waiting and self.force:
            self.progress.say(f"{claimed.spec.name} {format_instant(slot)}: forced, although {waiting}\n")
        elif waiting:
            self.progress.report.waiting.append(Waiting(claimed.spec.name, waiting, slot))
            self.progress.say(f"{claimed.spec.name} {format_instant(slot)}: {waiting}\n")
            claimed.waiting_at = slot
        return bool(waiting) and not self.force

    def waiting_for(self, claimed: Claimed, slot: datetime) -> str:
        """Why the slot waits for its dependencies, or ''. Their successes are read again
        only when those last read do not cover the slot: they only move forward, so a
        backlog reads them once, not once a slot."""
        spec = claimed.spec
        if not spec.depends_on:
            return ""
        if claimed.successes is None or waiting_for(spec, slot, claimed.successes):
            self.progress.recorded(self.ledger.flush())  # a dependency's success may still be unwritten
            claimed.successes = self.ledger.successes(spec.depends_on)
        return waiting_for(spec, slot, claimed.successes)
