"""What a tick did, kept and printed so that neither grows with the slots it runs: counts
of attempts by job and outcome and the attempts that did not handle their slot (a job
stops at its first), and a backlog's lines thinned to a few a second."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from .attempt import Attempt
from .execution import CLOCK

SHOWN_FIRST = 20  # a backlog prints a line for each of its first slots...
SHOWN_EVERY_SECONDS = 1.0  # ...then one a second at most, and one for its last


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
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (job, why): a dependency has not run
    held_all: str = ""  # why no job ran: an operator holds them all
    queued: list[str] = field(default_factory=list)  # jobs whose attempt is on a task backend (queued.py)

    def add(self, job: str, slot: datetime, attempt: Attempt) -> None:
        self.attempts.setdefault(job, Counter())[attempt.outcome] += 1
        if not attempt.handled:
            self.failed.append(SlotResult(job, slot, attempt))


class Progress:
    """Which slot of how many each attempt under way is, and whether its outcome is worth
    a line: every attempt that did not handle its slot, every lone slot, and of a backlog
    the first SHOWN_FIRST slots, then one a SHOWN_EVERY_SECONDS, and the last."""

    def __init__(self):
        self._numbers: dict[int, tuple[int, int]] = {}  # id(log) -> (position, total) while unrecorded
        self._shown: dict[str, float] = {}  # job -> when its last line was printed

    def start(self, log, position: int, total: int) -> None:
        if total:
            self._numbers[id(log)] = (position, total)

    def counter(self, job: str, log, routine: bool) -> str | None:
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

    def clear(self) -> None:
        self._numbers.clear()
        self._shown.clear()
