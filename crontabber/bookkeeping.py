"""A tick's claims and rows, written in batches so that quick jobs cost a few statements
for dozens, not a few for each.

Due jobs are claimed a few at a time: as many as take about BATCH_SECONDS to run (one
while jobs are slow, so that runners share the work; up to MAX_BATCH while they are
quick). The Log rows of a batch's first attempts are written, as ``running``, by one
INSERT before any of them starts; so are the rows of a backfill job's next slots while
its attempts are quick (as many as take about BATCH_SECONDS at its pace, up to
MAX_BATCH). Outcomes and job states wait to be written together, in one transaction,
while attempts are quick; whatever took real time or failed is written at once, so a
crash repeats at most a fraction of a second of work, and no slot is recorded as run
before it ran. The rows of attempts that never started are deleted when their job is
released, or after its batch, and the claims still held are then released.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import takewhile

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from . import scrub, signals
from .attempt import Attempt, Outcome
from .bulk import fast_datetimes, insert_rows, update_rows
from .execution import CLOCK
from .models import Job, Log, lease
from .plan import Due, Upcoming, slots_to_run, waiting_for
from .registry import JobSpec

logger = logging.getLogger("crontabber")

BATCH_SECONDS = 0.25  # how much expected work to claim at once
MAX_BATCH = 500  # and at most how many jobs
QUICK_SECONDS = 0.1  # attempts shorter than this have their outcome written in batches
LOG_FIELDS = ["started_at", "duration", "outcome", "error_type", "error_value", "traceback", "output"]
JOB_FIELDS = [
    "last_run", "last_success", "last_skipped", "next_slot", "next_run", "error_count", "last_error",
    "claimed_by", "claimed_at", "claim_expires",
]  # fmt: skip


def database_lost(error: BaseException) -> bool:
    """The database itself is gone (not one value it refused): the tick's failure, not a job's."""
    return isinstance(error, DatabaseError) and not connection.is_usable()


@dataclass
class Claimed:
    """A job this runner holds, and the slots it is to run, oldest first."""

    spec: JobSpec
    job: Job
    slots: Upcoming
    # Rows opened for its next attempts, oldest first: with the batch's, or with the job's
    # previous quick slots. Not started yet: deleted if the job stops before them.
    ahead: collections.deque[Log] = field(default_factory=collections.deque)
    opened_at: tuple[float, int] | None = None  # when its rows were last opened, and how many: its pace
    running: Log | None = None  # the row of its attempt under way: opened, not yet recorded
    count: Callable[[datetime], int] | None = None  # how many slots from a first one: a backlog's size
    again: bool = False  # a re-run: new attempts at slots run before; the schedule's state stays
    waiting_at: datetime | None = None  # the slot it stopped at, a dependency not having succeeded
    successes: dict[str, datetime | None] | None = None  # its dependencies' last successes, as last read


@dataclass
class Finished:
    """An attempt whose outcome is not written yet."""

    claimed: Claimed
    log: Log
    attempt: Attempt
    previous_errors: int


class Bookkeeping:
    def __init__(self, owner: str, host: str, pid: int, on_recorded=None):
        self.owner, self.host, self.pid = owner, host, pid
        self.on_recorded = on_recorded  # (spec, log, attempt, written): after each write
        self._unreleased: set[str] = set()  # names of the jobs whose claims are not released yet
        self._lost: set[str] = set()  # names of the jobs another runner took from us
        self._claimed: list[Claimed] = []  # this batch's jobs
        self._unwritten: list[Finished] = []
        self._unwritten_since: float | None = None
        self._served: dict[int, datetime] = {}  # job pk -> latest start that serves a "run now"
        self.attempts = 0

    def claim_in_batches(self, due: list[Due], stopping) -> Iterator[Claimed]:
        """Claim the due jobs a batch at a time and yield each one claimed; after each
        batch, write what is unwritten and release what is held."""
        queue, size = collections.deque(due), 1
        while queue and not stopping():
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            started, attempts_before = CLOCK["now"](), self.attempts
            claimed = self._claimed = self._claim(batch)
            if not claimed and queue:
                queue = self._still_claimable(queue)
            self._open_first_attempts(claimed)
            for item in claimed:
                if stopping():
                    break
                yield item
            self.end_batch()
            size = self._next_size(started, self.attempts - attempts_before, size)

    def claim_again(self, spec: JobSpec, slots: Iterator[datetime], count) -> Claimed | None:
        """Claim one job, due or not, to run ``slots`` again (a re-run); None if another
        runner holds it. Released by end_batch."""
        claimed = self._claimed = self._claim([Due(spec, forced=True)])
        for item in claimed:
            item.slots, item.count, item.again = Upcoming(slots), count, True
        return claimed[0] if claimed else None

    def open(self, claimed: Claimed, slot: datetime) -> Log:
        """The Log row of an attempt about to start: opened ahead, or now with the rows of
        the job's next slots while its attempts are quick, so that a crash from here on
        leaves a trace."""
        if claimed.ahead and claimed.ahead[0].slot != slot:  # opened for other slots (never expected)
            self._discard_unstarted([claimed])
        if not claimed.ahead:
            self._open_ahead(claimed, slot)
        log = claimed.running = claimed.ahead.popleft()
        log.started_at = timezone.now()
        return log

    def record(self, claimed: Claimed, log: Log, attempt: Attempt) -> None:
        """The attempt's outcome and the job's new state, written now or with the batch."""
        job, now, previous_errors = claimed.job, timezone.now(), claimed.job.error_count
        attempt = scrub.attempt(attempt).storable()  # no secrets, no NULs, in rows, mail or Sentry
        if claimed.again:
            job.apply_rerun(log.slot, log.started_at, attempt)
        else:
            upcoming = claimed.slots.peek(1)  # the schedule's next slot, when the backlog has it after this one
            following = upcoming[0] if upcoming and upcoming[0] > log.slot else None  # (not so: a queued attempt)
            job.apply_attempt(claimed.spec.schedule, log.slot, log.started_at, attempt, now, following)
        job.claim_expires = now + lease()
        log.finish(attempt)
        claimed.running = None
        self._unwritten.append(Finished(claimed, log, attempt, previous_errors))
        self._unwritten_since = self._unwritten_since or CLOCK["now"]()
        self.attempts += 1
        # A finished attempt serves a "run now" requested before it started, not a later one.
        if attempt.outcome != Outcome.INTERRUPTED and not claimed.again:
            self._served[job.pk] = max(self._served.get(job.pk, log.started_at), log.started_at)
        quick = attempt.handled and attempt.duration < QUICK_SECONDS
        if not quick or CLOCK["now"]() - self._unwritten_since >= BATCH_SECONDS or len(self._unwritten) >= MAX_BATCH:
            self.flush()

    def release(self, claimed: Claimed) -> None:
        """The runner is done with the job: the rows of attempts it did not start are
        deleted; its claim goes with its unwritten state, or at the end of the batch."""
        self._discard_unstarted([claimed])
        if self._unwritten and self._unwritten[-1].claimed is claimed:  # its last attempt
            claimed.job.drop_claim()
            self._unreleased.discard(claimed.job.name)

    def lost(self, claimed: Claimed) -> bool:
        return claimed.job.name in self._lost

    def fail(self, claimed: Claimed, error: Exception) -> None:
        """crontabber's own work on this job raised (its schedule's arithmetic, a value the
        database refused...): a failed attempt of this job, at the slot it was on, and the
        runner goes on with the others."""
        logger.error("%s: %s", claimed.spec.name, error, exc_info=error)
        log, slot = claimed.running, claimed.running.slot if claimed.running else claimed.job.next_slot
        if log is None:
            (log,) = Log.opened(claimed.job, [slot or timezone.now()], timezone.now(), self.host, self.pid)
            log.save(force_insert=True)
        claimed.running = None
        self.record(claimed, log, Attempt.failed(error))
        self.flush()

    def flush(self) -> None:
        """Write the unwritten outcomes and job states in one transaction, only for jobs
        this runner still holds; then tell the signal receivers and the runner."""
        finished, self._unwritten, self._unwritten_since = self._unwritten, [], None
        if not finished:
            return
        served, self._served = self._served, {}
        try:
            self._write(finished, served)
        except Exception as error:
            if database_lost(error):
                raise
            logger.exception("could not write %s outcomes together; writing each job's alone", len(finished))
            finished = self._write_each_job(finished, served)
        for item in finished:
            written = not self.lost(item.claimed)
            if written:
                signals.send(
                    signals.attempt_finished,
                    spec=item.claimed.spec,
                    job=item.claimed.job,
                    log=item.log,
                    attempt=item.attempt,
                    previous_error_count=item.previous_errors,
                )
            if self.on_recorded is not None:
                self.on_recorded(item.claimed.spec, item.log, item.attempt, written)

    def end_batch(self) -> None:
        """Write what is unwritten, delete the rows of attempts that never started, and
        release the claims still held (jobs that stopped early or wait on a dependency)."""
        try:
            self.flush()
            self._discard_unstarted(self._claimed)
        finally:
            self._interrupt_unrecorded()
            if self._unreleased:  # by name: the name index finds them, claimed_by has none
                Job.objects.held_by(self.owner).filter(name__in=list(self._unreleased)).release()
                self._unreleased.clear()

    # --- steps ---------------------------------------------------------------------------

    def _claim(self, batch: list[Due]) -> list[Claimed]:
        """One conditional UPDATE claims the batch's jobs nobody holds that are still due
        (or forced); one read returns those we got. An expired claim we took over leaves
        its attempts interrupted: their slots run again."""
        now = timezone.now()
        names = [item.spec.name for item in batch]
        forced = [item.spec.name for item in batch if item.forced]
        if not Job.objects.filter(name__in=names).due(now, forced).claim(self.owner, now):
            return []
        with fast_datetimes():
            jobs = {job.name: job for job in Job.objects.held_by(self.owner).filter(name__in=names)}
        self._unreleased.update(jobs)
        for job in jobs.values():
            if job.taken_over_from:
                logger.warning("%s: took over the claim of %s, which had expired", job.name, job.taken_over_from)
                job.logs.interrupt_running(
                    "Abandoned", f"runner {job.taken_over_from} stopped without finishing (its claim expired)"
                )
        return [
            Claimed(
                item.spec,
                job,
                Upcoming(slots_to_run(item.spec, job.next_slot, job.anchor(now), now, item.forced)),
                count=partial(item.spec.schedule.count, until=now, anchor=job.anchor(now), most=item.spec.max_backfill)
                if item.spec.backfill
                else None,
            )
            for item in batch
            if (job := jobs.get(item.spec.name)) is not None
        ]

    def _still_claimable(self, queue: collections.deque) -> collections.deque:
        """The queued jobs nobody else holds and that are still due: one read when a claim
        came back empty, so a runner behind others skips their jobs at once instead of
        losing the race for each of them in turn."""
        now = timezone.now()
        names = [item.spec.name for item in queue]
        forced = [item.spec.name for item in queue if item.forced]
        free = set(Job.objects.filter(name__in=names).due(now, forced).claimable(now).values_list("name", flat=True))
        return collections.deque(item for item in queue if item.spec.name in free)

    def _open_first_attempts(self, claimed: list[Claimed]) -> None:
        """One INSERT for the rows of the batch's first attempts. Not for a job with
        dependencies (it may wait instead of run), nor where a bulk INSERT returns no ids
        (MySQL): those attempts write their own rows as they start."""
        if not connection.features.can_return_rows_from_bulk_insert:
            return
        now, clock, opened = timezone.now(), CLOCK["now"](), []
        for item in claimed:
            first = [] if item.spec.depends_on else item.slots.peek(1)
            if first:
                item.ahead.extend(Log.opened(item.job, first, now, self.host, self.pid))
                item.opened_at = (clock, 1)
                opened += item.ahead
        if opened:
            insert_rows(Log, opened)

    def _open_ahead(self, claimed: Claimed, slot: datetime) -> None:
        """The row of the attempt at ``slot`` and, at the pace of the job's last attempts,
        of as many of its next slots as take about BATCH_SECONDS (only those its
        dependencies have succeeded for): one INSERT, where a bulk INSERT returns ids."""
        size = self._next_size(*claimed.opened_at, 1) if claimed.opened_at else 1
        if not connection.features.can_return_rows_from_bulk_insert or claimed.spec.backend:
            size = 1  # (a task backend takes one attempt of a job at a time: queued.py)
        size = 1 << (size.bit_length() - 1)  # a power of two: the INSERT's text repeats (drivers cache statements)
        following = claimed.slots.peek(size - 1) if size > 1 else []
        if claimed.spec.depends_on:
            met = claimed.successes or {}
            following = list(takewhile(lambda later: not waiting_for(claimed.spec, later, met), following))
        logs = Log.opened(claimed.job, [slot, *following], timezone.now(), self.host, self.pid, claimed.again)
        if len(logs) == 1:
            logs[0].save(force_insert=True)
        else:
            insert_rows(Log, logs)
        claimed.ahead.extend(logs)
        claimed.opened_at = (CLOCK["now"](), len(logs))

    @staticmethod
    def _discard_unstarted(claimed: list[Claimed]) -> None:
        """Delete the rows opened for attempts that never started."""
        ids = [log.pk for item in claimed for log in item.ahead]
        for item in claimed:
            item.ahead.clear()
        if ids:
            Log.objects.filter(pk__in=ids, outcome=Outcome.RUNNING)._raw_delete(Log.objects.db)

    def _write(self, finished: list[Finished], served: dict[int, datetime]) -> None:
        jobs = list({id(item.claimed.job): item.claimed.job for item in finished}.values())
        with transaction.atomic():
            # Jobs first: on MariaDB a Log row's foreign key share-locks its job's row, and
            # upgrading that lock while another runner waits for the row is a deadlock.
            kept = self._write_jobs(jobs, served)
            update_rows(Log, [item.log for item in finished], LOG_FIELDS)
        if kept < len(jobs):
            self._note_lost(jobs)

    def _write_each_job(self, finished: list[Finished], served: dict[int, datetime]) -> list[Finished]:
        """After a batch write failed: each job's outcomes on their own, so that one value
        the database refuses fails its own job. That job's first unwritten slot is recorded
        as a failure (it runs again after the back-off); its later ones as interrupted."""
        by_job: dict[int, list[Finished]] = {}
        for item in finished:
            by_job.setdefault(id(item.claimed.job), []).append(item)
        written = []
        for items in by_job.values():
            try:
                self._write(items, served)
                written += items
            except Exception as error:
                logger.exception("%s: could not record its outcome", items[0].claimed.spec.name)
                written += self._record_unwritable(items, error)
        return written

    def _record_unwritable(self, items: list[Finished], error: Exception) -> list[Finished]:
        claimed, first = items[0].claimed, items[0]
        claimed.job.refresh_from_db()  # its state as last written: the slots run again
        attempt = Attempt.failed(error, f"the outcome ({first.attempt.outcome}) could not be recorded: {error}")
        retry = Finished(claimed, first.log, attempt, claimed.job.error_count)
        claimed.job.apply_attempt(claimed.spec.schedule, first.log.slot, first.log.started_at, attempt, timezone.now())
        first.log.finish(attempt)
        try:
            self._write([retry], {})
        except Exception:
            logger.exception("%s: could not record the failure either; its claim expires", claimed.spec.name)
            return []
        Log.objects.filter(pk__in=[item.log.pk for item in items[1:]]).interrupt_running(
            "NotRecorded", "ran, but its outcome could not be recorded: the slot runs again"
        )
        return [retry]

    def _interrupt_unrecorded(self) -> None:
        """No row stays running once its tick is over: an attempt opened and never recorded
        (the runner itself failed mid-attempt) ends as interrupted, and its slot runs again."""
        logs = [claimed.running for claimed in self._claimed if claimed.running is not None]
        if logs:
            Log.objects.filter(pk__in=[log.pk for log in logs]).interrupt_running(
                "Interrupted", "the runner failed before recording the attempt"
            )
        self._claimed = []

    def _write_jobs(self, jobs: list[Job], served: dict[int, datetime]) -> int:
        """The jobs' states, only where the claim is still ours; a "run now" is cleared
        where the attempt that served it started after it was requested."""
        quote = connection.ops.quote_name
        requested = quote(Job._meta.get_field("run_requested").column)
        kept = update_rows(
            Job,
            jobs,
            JOB_FIELDS,
            row=("run_requested", lambda job: served.get(job.pk)),
            set_sql=f"{requested} = CASE WHEN {requested} <= {{row}} THEN NULL ELSE {requested} END",
            where_sql=f"{quote('claimed_by')} = %s",
            where_params=[self.owner],
        )
        for job in jobs:
            if job.run_requested is not None and job.pk in served and job.run_requested <= served[job.pk]:
                job.run_requested = None
        return kept

    def _note_lost(self, jobs: list[Job]) -> None:
        held = set(Job.objects.filter(pk__in=[job.pk for job in jobs]).values_list("claimed_by", "name"))
        lost = {job.name for job in jobs if (job.claimed_by, job.name) not in held}
        self._lost.update(lost)
        logger.error("%s: lost the claim to another runner; its state is left to it", ", ".join(sorted(lost)))

    @staticmethod
    def _next_size(started: float, attempts: int, size: int) -> int:
        """Enough jobs for about BATCH_SECONDS of work, at the pace of the last batch."""
        if not attempts:
            return size
        per_attempt = max((CLOCK["now"]() - started) / attempts, 0.001)
        return max(1, min(MAX_BATCH, int(BATCH_SECONDS / per_attempt)))
