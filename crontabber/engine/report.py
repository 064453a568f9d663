"""What a tick did, kept and printed so that neither grows with the slots it runs: counts
of attempts by job and outcome and the attempts that did not handle their slot (a job
stops at its first), and a line per attempt, a backlog's thinned to a few a second."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from .. import failure_logger
from ..outcomes import HANDLED, SPANS, Attempt, Outcome
from ..schedules import format_instant
from ..words import plural, span, took
from .execution import CLOCK
from .plan import Span

SHOWN_FIRST = 20  # a backlog prints a line for each of its first slots...
SHOWN_EVERY_SECONDS = 1.0  # ...then one a second at most, and one for its last


class Waiting(NamedTuple):
    """A job that stopped at a slot whose dependencies have not succeeded for it."""

    job: str
    why: str
    slot: datetime


@dataclass
class SlotResult:
    job: str
    slot: datetime
    attempt: Attempt


@dataclass
class TickReport:
    """What one tick (or re-run) did, and for a dry run what it would do."""

    attempts: dict[str, Counter] = field(default_factory=dict)  # job -> outcome -> how many attempts
    failed: list[SlotResult] = field(default_factory=list)  # the attempts that did not handle their slot
    # Dry run: per job, its first slots (at most CRONTABBER_DRY_RUN_SHOWN), and whether
    # more follow up to the given last one. Never a list of every missed slot.
    planned: dict[str, tuple[list[datetime], datetime | None, bool]] = field(default_factory=dict)
    waiting: list[Waiting] = field(default_factory=list)
    held_all: str = ""  # why no job ran: an operator holds them all
    queued: list[str] = field(default_factory=list)  # jobs whose attempt is on a task backend
    next_runs: dict[str, datetime | None] = field(default_factory=dict)  # job -> its next run, once it ran
    next_due: tuple[str, datetime] | None = None  # the job due next after the tick, and when
    wake: datetime | None = None  # when the first job it knows of falls due after the tick (plan.next_wake)
    asked_at: datetime | None = None  # the operators' last request, as the tick read it (Control.asked_at)
    unreadable: list[str] = field(default_factory=list)  # task backends it could not read results from
    due: int = 0  # jobs due at the tick's start (some may have run elsewhere, or waited)
    missed: dict[str, Span] = field(default_factory=dict)  # job -> its slots past the deadline

    def add(self, job: str, slot: datetime, attempt: Attempt) -> None:
        if attempt.outcome == Outcome.QUEUED:
            self.queued.append(job)
            return
        self.attempts.setdefault(job, Counter())[attempt.outcome] += 1
        if attempt.outcome not in HANDLED:
            self.failed.append(SlotResult(job, slot, attempt))

    @property
    def errors(self) -> list[SlotResult]:
        """The attempts that failed (not those interrupted by a stop, which run again)."""
        return [result for result in self.failed if result.attempt.is_error]

    def summary(self, now: datetime) -> str:
        """One line: what ran, what did not succeed, and which job is due next."""
        outcomes = Counter()
        for counts in self.attempts.values():
            outcomes.update(counts)
        parts = [f"{count} {outcome}" for outcome, count in sorted(outcomes.items())]
        parts += [f"{len(self.queued)} queued on task workers"] if self.queued else []
        parts += [f"{len(self.waiting)} waiting for a dependency"] if self.waiting else []
        missed = sum(item.covers for item in self.missed.values())
        parts += [f"{plural(missed, 'slot')} missed (past a starting deadline)"] if missed else []
        return f"{self._ran(sum(outcomes.values()))}{': ' + ', '.join(parts) if parts else ''}; next: {self._next(now)}"

    def _ran(self, ran: int) -> str:
        if not ran:
            return (
                f"{plural(self.due, 'job')} {'was' if self.due == 1 else 'were'} due, none ran here"
                if self.due
                else "nothing was due"
            )
        did = f"ran {plural(ran, 'slot')} of {plural(len(self.attempts), 'job')}"
        failed = dict.fromkeys(result.job for result in self.failed)
        return f"{did} ({', '.join(failed)} did not succeed)" if failed else did

    def _next(self, now: datetime) -> str:
        if self.next_due is None:
            return "no job is scheduled"
        name, when = self.next_due
        return f"{name} now (still due)" if when <= now else f"{name} at {format_instant(when)} (in {span(when - now)})"


@dataclass
class Progress:
    """The lines a tick prints of its attempts, once recorded (so what is printed is what
    was recorded): every attempt that did not handle its slot, every lone slot, and of a
    backlog the first SHOWN_FIRST slots, then one a SHOWN_EVERY_SECONDS, and the last."""

    report: TickReport
    out: object = None  # a writable, or None
    verbosity: int = 1  # 0: failures only; 1: a line per attempt worth one; 2: the jobs' own lines too
    _numbers: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(log) -> (position, total)
    _shown: dict[str, float] = field(default_factory=dict)  # job -> when its last line was printed

    def say(self, text: str, level: int = 1) -> None:
        """A line for the reader, at verbosity ``level`` or more."""
        if self.out is not None and self.verbosity >= level:
            self.out.write(text)

    def start(self, log, position: int, total: int) -> None:
        if total:
            self._numbers[id(log)] = (position, total)

    def recorded(self, items) -> None:
        """Attempts just recorded (ledger.Recorded): counted, and each worth a line printed."""
        for item in items:
            name, log, attempt = item.claimed.spec.name, item.log, item.attempt
            self.report.next_runs[name] = item.claimed.job.next_run
            if attempt.outcome in SPANS:
                self.missed(name, Span(log.since, log.slot, log.covers))
                continue
            self.report.add(name, log.slot, attempt)
            if attempt.is_error:
                failure_logger.error(
                    "%s: slot %s %s: %s: %s",
                    name,
                    format_instant(log.slot),
                    attempt.outcome,
                    attempt.error_type,
                    attempt.error_value,
                )
            counter = self._counter(name, log, routine=attempt.outcome in HANDLED and item.written)
            if counter is not None:
                what = f"{attempt.outcome} ({took(attempt.duration)})"
                if attempt.outcome == Outcome.QUEUED:
                    what = f"queued on {log.backend} ({log.result_id})"
                lost = "" if item.written else "; not recorded: another runner took the job over"
                level = 1 if attempt.outcome in HANDLED or attempt.outcome == Outcome.QUEUED else 0
                self.say(f"{name} {format_instant(log.slot)}: {what}{counter}{lost}\n", level)

    def missed(self, name: str, span: Span) -> None:
        """Slots of the job past its starting deadline (plan.Span), one row for them all."""
        self.report.missed[name] = span
        self.say(
            f"{name} {format_instant(span.since)} to {format_instant(span.until)}: "
            f"{plural(span.covers, 'slot')} missed: past its starting deadline, not run\n"
        )

    def _counter(self, job: str, log, routine: bool) -> str | None:
        """' [3/72]' for a backlog's slot, '' for a lone slot; None: no line for it.
        ``routine``: the attempt handled its slot and was recorded."""
        position, total = self._numbers.pop(id(log), (0, 0))
        now = CLOCK["now"]()
        shown = (
            not routine
            or position <= SHOWN_FIRST
            or position == total
            or now - self._shown.get(job, -math.inf) >= SHOWN_EVERY_SECONDS
        )
        if not shown:
            return None
        self._shown[job] = now
        return f" [{position}/{total}]" if total else ""
