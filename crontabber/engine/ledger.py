"""The one place an attempt is recorded, whatever ran it: its row opened before it starts,
its outcome scrubbed and applied to its job, both written, then told to the signal
receivers. Each write returns what it recorded; nothing here calls back into the tick.

The crash rules: the rows of a batch's first attempts are written, as ``running``, by one
INSERT before any of them starts, and so are the rows of a backfill job's next slots
while its attempts are quick (as many as take about BATCH_SECONDS at its pace). Outcomes
and job states wait to be written together, in one transaction, while attempts are
quick; whatever took real time or failed is written at once. So a crash repeats at most
a fraction of a second of work, and no slot is recorded as run before it ran. The rows
of attempts that never started are deleted; a row still ``running`` when its batch ends
(the runner failed mid-attempt) ends ``interrupted``, and its slot runs again. A runner
that dies leaves its unwritten rows ``running``: the runner that takes the jobs over
records each as abandoned (an error) and runs its slot again. That first crash may cost
the batch's other quick attempts a repeat; from then on the job that crashed is careful
(Claimed.careful): what others did is written before it starts, no row is opened ahead
of it or after it in its batch, and its attempts are written one by one, so a second
crash loses its own attempt only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import takewhile

from django.db import connection
from django.utils import timezone

from .. import logger, scrub, signals
from ..conf import lease
from ..models import Job, Log
from ..outcomes import HANDLED, SPANS, Attempt, Interruption, Outcome
from .claims import BATCH_SECONDS, MAX_BATCH, Claimed, next_size
from .execution import CLOCK
from .plan import Span, waiting_for
from .writes import Recorded, insert_rows, write

QUICK_SECONDS = 0.1  # attempts shorter than this have their outcome written in batches


def tell(signal, **kwargs) -> None:
    """Send to every receiver; one that raises, or calls sys.exit(), is logged and the
    others still run: a receiver never stops the runner."""
    try:
        for receiver, error in signal.send_robust(sender=Job, **kwargs):
            if isinstance(error, Exception):
                logger.error("%s: %s failed: %r", kwargs["spec"].name, getattr(receiver, "__name__", receiver), error)
    except SystemExit as exit_:
        logger.error("%s: a receiver of %s called sys.exit(%r)", kwargs["spec"].name, signal, exit_.code)


@dataclass
class Ledger:
    owner: str  # the runner's claims
    host: str
    pid: int
    attempts: int = 0  # started, for the pace of batches
    lease: timedelta = field(default_factory=lease)  # a claim's life from each write
    _unwritten: list[Recorded] = field(default_factory=list)
    _unwritten_since: float | None = None
    _served: dict[int, datetime] = field(default_factory=dict)  # job pk -> latest start serving a "run now"
    _lost: set[str] = field(default_factory=set)  # names of the jobs another runner took from us

    # --- before an attempt ---------------------------------------------------------------

    def open_first(self, batch: list[Claimed], now: datetime) -> None:
        """One INSERT for the rows of the batch's first attempts. Not for a job with
        dependencies (it may wait instead of run), on a task backend (it may have an
        attempt to read back first) or re-run (its attempts are numbered after the slots'
        earlier ones), nor where a bulk INSERT returns no ids (MySQL)."""
        if not connection.features.can_return_rows_from_bulk_insert:
            return
        opened = []
        for claimed in batch:
            if claimed.careful:  # the rest of the batch opens each row as it starts
                break
            spec = claimed.spec
            first = [] if spec.depends_on or spec.backend or claimed.again else claimed.upcoming(now).peek(1)
            if first:
                claimed.ahead.extend(Log.opened(claimed.job, first, now, self.host, self.pid))
                claimed.opened_at = (CLOCK["now"](), 1)
                opened += claimed.ahead
        if opened:
            insert_rows(Log, opened)

    def open(self, claimed: Claimed, slot: datetime) -> Log:
        """The row of an attempt about to start: opened ahead, or now with the rows of the
        job's next slots while its attempts are quick, so that a crash from here on leaves
        a trace."""
        if claimed.ahead and claimed.ahead[0].slot != slot:  # opened for other slots (never expected)
            self._discard_unstarted([claimed])
        if not claimed.ahead:
            self._open_ahead(claimed, slot)
        log = claimed.running = claimed.ahead.popleft()
        log.started_at = timezone.now()
        log.start_lag = claimed.start_lag(log)
        self.attempts += 1
        tell(signals.attempt_started, spec=claimed.spec, job=claimed.job, log=log)
        return log

    def successes(self, names) -> dict[str, datetime | None]:
        """The named jobs' last successes, as written."""
        return Job.objects.last_successes(names)

    def lost(self, claimed: Claimed) -> bool:
        return claimed.job.name in self._lost

    # --- after it ------------------------------------------------------------------------

    def record(self, claimed: Claimed, log: Log, attempt: Attempt) -> list[Recorded]:
        """The attempt's outcome and the job's new state: written now, or with the batch
        while attempts are quick."""
        previous_errors = claimed.job.error_count
        attempt = self.apply(claimed, log, attempt)
        self._unwritten.append(Recorded(claimed, log, attempt, previous_errors))
        self._unwritten_since = self._unwritten_since or CLOCK["now"]()
        # A finished attempt serves a "run now" requested before it started, not a later one.
        if attempt.outcome not in (Outcome.INTERRUPTED, Outcome.QUEUED, *SPANS) and not log.rerun:
            pk = claimed.job.pk
            self._served[pk] = max(self._served.get(pk, log.started_at), log.started_at)
        quick = attempt.outcome in HANDLED and attempt.duration < QUICK_SECONDS and not claimed.careful
        if not quick or CLOCK["now"]() - self._unwritten_since >= BATCH_SECONDS or len(self._unwritten) >= MAX_BATCH:
            return self.flush()
        return []

    def apply(self, claimed: Claimed, log: Log, attempt: Attempt) -> Attempt:
        """The attempt, scrubbed (no secret reaches a row, a mail or Sentry), on its row and
        its job, in memory. Returns it as recorded."""
        job, now = claimed.job, timezone.now()
        attempt = scrub.attempt(attempt)
        if log.rerun:
            job.apply_rerun(log.slot, log.started_at, attempt)
        else:
            upcoming = claimed.slots.peek(1) if claimed.slots else []  # the backlog's next slot, if after this one
            following = upcoming[0] if upcoming and upcoming[0] > log.slot else None
            job.apply_attempt(claimed.spec.schedule, log.slot, log.started_at, attempt, now, following, log.start_lag)
        job.claim_expires = now + self.lease
        log.finish(attempt)
        claimed.running = None
        return attempt

    def pass_over(self, claimed: Claimed, span: Span, outcome: Outcome) -> list[Recorded]:
        """Slots of the job that will not run (missed), as one row saved as it ends (no
        attempt ran, so a crash leaves nothing running), and the job moved past them."""
        why = f"not started within its starting_deadline of {claimed.spec.starting_deadline:g} s"
        log = Log.spanning(claimed.job, span, outcome, why, timezone.now(), self.host, self.pid)
        log.save(force_insert=True)
        return self.record(claimed, log, Attempt(outcome, error_value=why))

    def record_late(self, log: Log, attempt: Attempt, why="; it came after it was given up as lost") -> None:
        """The result of an attempt no job waits for any more (given up as lost, its slot
        queued again; or its job removed): on its row only, scrubbed, saying so."""
        attempt = scrub.attempt(attempt)
        log.finish(attempt)
        log.error_value = f"{log.error_value} (recorded late{why})".lstrip()
        log.save(update_fields=["duration", "outcome", "error_type", "error_value", "traceback", "output"])

    def fail(self, claimed: Claimed, error: Exception) -> list[Recorded]:
        """crontabber's own work on this job raised (its schedule's arithmetic, a value the
        database refused...): a failed attempt of this job, at the slot it was on."""
        logger.error("%s: %s", claimed.spec.name, error, exc_info=error)
        log, now = claimed.running, timezone.now()
        if log is None:
            slot = claimed.job.next_slot or now
            (log,) = Log.opened(claimed.job, [slot], now, self.host, self.pid, rerun=claimed.again)
            log.save(force_insert=True)
        return self.record(claimed, log, Attempt.failed(error))

    def release(self, claimed: Claimed) -> None:
        """The job is done with for this tick: the rows of attempts it did not start are
        deleted, and its claim goes with its unwritten state (else with the batch's)."""
        self._discard_unstarted([claimed])
        if self._unwritten and self._unwritten[-1].claimed is claimed:  # its last attempt
            claimed.job.drop_claim()
            claimed.released = True

    def flush(self) -> list[Recorded]:
        """Write the unwritten outcomes and job states in one transaction, only for jobs
        this runner still holds; then tell the signal receivers. Returns what it recorded."""
        recorded, self._unwritten, self._unwritten_since = self._unwritten, [], None
        if not recorded:
            return []
        served, self._served = self._served, {}
        recorded, lost = write(recorded, self.owner, served)
        self._lost |= lost
        for item in recorded:
            item.written = not self.lost(item.claimed)
            if item.written and item.attempt.outcome not in (Outcome.QUEUED, *SPANS):  # no attempt ended
                tell(
                    signals.attempt_finished,
                    spec=item.claimed.spec,
                    job=item.claimed.job,
                    log=item.log,
                    attempt=item.attempt,
                    previous_error_count=item.previous_errors,
                )
        return recorded

    def end_batch(self, batch: list[Claimed]) -> list[Recorded]:
        """Write what is unwritten, delete the rows of attempts that never started, and end
        as interrupted the rows of attempts never recorded: their slots run again."""
        try:
            return self.flush()
        finally:
            self._discard_unstarted(batch)
            unrecorded = [claimed.running.pk for claimed in batch if claimed.running is not None]
            if unrecorded:
                Log.objects.filter(pk__in=unrecorded).interrupt_running(
                    Interruption.STOPPED, "the runner failed before recording the attempt"
                )

    # --- the rows ------------------------------------------------------------------------

    def _open_ahead(self, claimed: Claimed, slot: datetime) -> None:
        """The row of the attempt at ``slot`` and, at the pace of the job's last attempts,
        of as many of its next slots as take about BATCH_SECONDS (only those its
        dependencies have succeeded for): one INSERT, where a bulk INSERT returns ids."""
        size = next_size(*claimed.opened_at, 1) if claimed.opened_at else 1
        if not connection.features.can_return_rows_from_bulk_insert or claimed.spec.backend or claimed.careful:
            size = 1  # (a task backend takes one attempt of a job at a time)
        size = 1 << (size.bit_length() - 1)  # a power of two: the INSERT's text repeats (drivers cache statements)
        following = claimed.slots.peek(size - 1) if size > 1 else []
        if claimed.spec.depends_on:
            met = claimed.successes or {}
            following = list(takewhile(lambda later: not waiting_for(claimed.spec, later, met), following))
        now = timezone.now()
        again = claimed.retrying or bool(claimed.spec.backend)  # (an attempt there may have been given up)
        logs = Log.opened(claimed.job, [slot, *following], now, self.host, self.pid, again, claimed.again)
        if len(logs) == 1:
            logs[0].save(force_insert=True)
        else:
            insert_rows(Log, logs)
        claimed.ahead.extend(logs)
        claimed.opened_at = (CLOCK["now"](), len(logs))
        claimed.retrying = False

    @staticmethod
    def _discard_unstarted(batch: list[Claimed]) -> None:
        """Delete the rows opened for attempts that never started."""
        ids = [log.pk for claimed in batch for log in claimed.ahead]
        for claimed in batch:
            claimed.ahead.clear()
        if ids:
            Log.objects.filter(pk__in=ids, outcome=Outcome.RUNNING)._raw_delete(Log.objects.db)
