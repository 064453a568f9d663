"""The jobs a runner holds: claimed a batch at a time, kept alive by a heartbeat, released.

Due jobs are claimed a few at a time: as many as take about BATCH_SECONDS to run (one
while jobs are slow, so that runners share the work; up to MAX_BATCH while they are
quick), each batch with one conditional UPDATE (JobQuerySet.claim: the protocol is in its
docstring) and one read of the rows it got. A claim that comes back empty is followed by
one read of which queued jobs are still free, so a runner behind others skips their jobs
at once instead of losing the race for each in turn.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.db import close_old_connections, connection
from django.utils import timezone

from .. import logger
from ..conf import lease
from ..models import Job, Log, ScheduleChange
from ..registry import JobSpec
from .execution import CLOCK
from .plan import Due, Span, Upcoming, Window, backlog, missed, slots_to_run, window

BATCH_SECONDS = 0.25  # how much expected work to claim, or to open rows for, at once
MAX_BATCH = 500  # and at most how many jobs, or rows


def next_size(started: float, attempts: int, size: int) -> int:
    """Enough for about BATCH_SECONDS of work, at the pace of ``attempts`` since ``started``."""
    if not attempts:
        return size
    per_attempt = max((CLOCK["now"]() - started) / attempts, 0.001)
    return max(1, min(MAX_BATCH, int(BATCH_SECONDS / per_attempt)))


@dataclass
class Claimed:
    """A job this runner holds, and where its slot loop stands."""

    spec: JobSpec
    job: Job
    forced: bool = False  # runs even if no slot is due: --force, or an operator's "run now"
    again: bool = False  # a re-run: new attempts at slots run before; the schedule's state stays
    slots: Upcoming | None = None  # its slots to run, oldest first (planned from its state)
    count: Callable[[datetime], int] | None = None  # how many slots from a first one: a backlog's size
    # Rows opened for its next attempts, oldest first: not started yet, deleted if it stops before them.
    ahead: collections.deque[Log] = field(default_factory=collections.deque)
    opened_at: tuple[float, int] | None = None  # when its rows were last opened, and how many: its pace
    running: Log | None = None  # the row of its attempt under way: opened, not yet recorded
    retrying: bool = False  # its slot's attempt was lost on a task backend: the retry is numbered after it
    waiting_at: datetime | None = None  # the slot it stopped at, a dependency not having succeeded
    successes: dict[str, datetime | None] | None = None  # its dependencies' last successes, as last read
    released: bool = False  # its claim goes with its last written state
    abandoned: Log | None = None  # the attempt a runner that died left running: it is recorded first
    reading_only: bool = False  # not due: only its attempts on a task backend are read back
    queued: list[Log] = field(default_factory=list)  # its attempts on a task backend, unread, oldest slot first
    missed: Span | None = None  # its due slots past its starting_deadline: recorded missed, not run
    window: Window | None = None  # a folded job's: the slots its one attempt covers
    planned_at: datetime | None = None  # when its slots were planned

    @property
    def careful(self) -> bool:
        """A runner died under it before: what others did is written before it starts, and
        each of its attempts is opened and written on its own, so that if it kills this
        runner too, only its own attempt is lost (see the crash rules in ledger.py)."""
        return self.job.crash_count > 0

    def queue_full(self) -> bool:
        """As many of its slots are queued on its task backend as its ``queued_at_once``."""
        return len(self.queued) >= self.spec.queued_at_once

    def may_queue(self, slot: datetime) -> bool:
        """Whether ``slot`` may start now: no attempt at it is queued on the job's task
        backend already, and its queue there is not full (a re-run's slots always may)."""
        return self.again or not (self.queue_full() or any(log.slot == slot for log in self.queued))

    def in_turn(self, log: Log) -> bool:
        """Whether a queued attempt's result may be recorded now: a backfill job's are
        recorded in slot order, none past the slot it has not handled yet (a failed one
        waiting for its retry)."""
        next_slot, first = self.job.next_slot, log.since or log.slot  # a folded attempt's window starts at since
        return log.rerun or not self.spec.backfill or next_slot is None or first <= next_slot

    def plan(self, now: datetime) -> Upcoming:
        """Its slots from its state now: every due one of a backfill job (a folded one's as
        one window), else the latest; those past its starting deadline (unless forced) are
        missed, the rest follow them."""
        anchor, self.planned_at = self.job.anchor(now), now
        self.spec = ScheduleChange.objects.in_force(self.job, self.spec, self.job.next_slot)
        self.missed = None if self.forced else missed(self.spec, self.job.next_slot, anchor, now)
        start = self.spec.schedule.next_after(self.missed.until, anchor) if self.missed else self.job.next_slot
        slots = slots_to_run(self.spec, start, anchor, now, self.forced)
        if self.spec.fold:  # one attempt for them all (at most max_backfill of them)
            return self.folded(window(self.spec, slots, anchor, None if self.spec.max_backfill else now))
        self.slots = Upcoming(slots)
        most = self.spec.max_backfill
        self.count = partial(backlog, self.spec, until=now, anchor=anchor, most=most) if self.spec.backfill else None
        return self.slots

    def folded(self, window: Window | None) -> Upcoming:
        """One attempt, at the window's newest slot, told the window; none without one."""
        self.window, self.count = window, None
        self.slots = Upcoming([window.newest] if window else [])
        return self.slots

    def start_lag(self, log: Log) -> float | None:
        """Seconds from the slot of the attempt about to start to its start, if the slot is
        on time: the job's own next slot on its first try (not a forced extra run, a re-run
        or a retry) and the latest due when its slots were planned. A backlog's older slots
        are None: they wait for the runner or for the job, not for a tick (docs/operations.md)."""
        if self.again or log.attempt > 1 or not self.on_schedule(log.slot) or not self.latest_due(log.slot):
            return None
        return max((log.started_at - log.slot).total_seconds(), 0.0)

    def on_schedule(self, slot: datetime) -> bool:
        """Whether ``slot`` is the job's own next slot (not a forced extra run) and fell due
        after the job was first seen (a new or reset job's first slot may lie before)."""
        job = self.job
        if job.next_slot is not None and slot < job.next_slot:
            return False
        return not (job.last_run is None and job.first_run is not None and slot <= job.first_run)

    def latest_due(self, slot: datetime) -> bool:
        """Whether ``slot`` (just taken) was the job's latest due slot when they were planned."""
        if self.slots is None or self.slots.peek(1):
            return False
        if not (self.spec.backfill and self.spec.max_backfill):  # its planned slots end at the latest
            return True
        following = self.spec.schedule.next_after(slot, self.job.anchor(self.planned_at))
        return following is None or following > self.planned_at

    def upcoming(self, now: datetime) -> Upcoming:
        """Its slots to run, planned now if they are not yet."""
        return self.slots if self.slots is not None else self.plan(now)

    @classmethod
    def again_for(cls, spec: JobSpec, job: Job, slots: Iterable[datetime], count, window=None) -> Claimed:
        """A re-run of ``slots``, counted by ``count``; a folded job's as its one ``window``."""
        claimed = cls(spec, job, forced=True, again=True, slots=Upcoming(slots), count=count)
        if spec.fold:
            claimed.folded(window)
        return claimed


@dataclass
class Claims:
    owner: str  # host:pid:run id
    size: int = 1  # jobs in the next batch

    def take(self, queue: collections.deque[Due], now: datetime) -> list[Claimed]:
        """The next batch off the queue, as far as this runner got it (maybe none of it)."""
        batch = [queue.popleft() for _ in range(min(self.size, len(queue)))]
        claimed = self.claim(batch, now)
        if not claimed and queue:
            self._keep_claimable(queue, now)
        return claimed

    def claim(self, batch: list[Due], now: datetime) -> list[Claimed]:
        """One conditional UPDATE claims the batch's jobs nobody holds that are still due
        (or forced); one read returns those we got. An expired claim we took over leaves
        its attempts interrupted: their slots run again."""
        names = [item.spec.name for item in batch]
        forced = [item.spec.name for item in batch if item.forced]
        jobs = Job.objects.claim_due(names, forced, self.owner, now)
        claimed = [Claimed(item.spec, jobs[item.spec.name], item.forced) for item in batch if item.spec.name in jobs]
        for item in claimed:
            if item.job.taken_over_from:
                logger.warning(
                    "%s: took over the claim of %s, which had expired", item.job.name, item.job.taken_over_from
                )
                item.abandoned = item.job.logs.abandon(item.job.taken_over_from)
        return claimed

    def one(self, spec: JobSpec) -> list[Claimed]:
        """The job, due or not (a re-run, a read-back, a failure to record), unless another
        runner holds it: in a list of one, or none."""
        return self.claim([Due(spec, True)], timezone.now())

    def paced(self, started: float, attempts: int) -> None:
        """The next batch's size, at the pace of the batch claimed at ``started``."""
        self.size = next_size(started, attempts, self.size)

    def release(self, batch: list[Claimed]) -> None:
        """The batch's claims not released with their jobs' last state (jobs that stopped
        early or wait on a dependency): by name, the name index finds them."""
        names = [claimed.job.name for claimed in batch if not claimed.released]
        if names:
            Job.objects.held_by(self.owner).filter(name__in=names).release()

    def _keep_claimable(self, queue: collections.deque[Due], now: datetime) -> None:
        """Only the queued jobs nobody else holds and that are still due: one read."""
        names = [item.spec.name for item in queue]
        forced = [item.spec.name for item in queue if item.forced]
        free = Job.objects.free(names, forced, now)
        kept = [item for item in queue if item.spec.name in free]
        queue.clear()
        queue.extend(kept)


@dataclass
class Heartbeat:
    """A thread (with its own database connection) that renews every claim the runner
    holds, every third of the lease: a long job keeps its claim, and a dead runner's
    claims expire within one lease."""

    owner: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

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
