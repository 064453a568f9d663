"""A dry run: the real tick at this instant, with nothing written and nothing run.

The same steps and slot loop as a tick (tick.py), with the jobs' rows read once and
changed in memory only (new jobs, realigned schedules), a claim taken only where no other
runner holds the job, every attempt succeeding without running (so the jobs that depend
on it see it done) and nobody told. A job's first CRONTABBER_DRY_RUN_SHOWN slots go
through the loop; the rest are summed up as where they end. Re-runs queued in the admin
are dry-run too.
"""

from __future__ import annotations

from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice, takewhile

from django.utils import timezone

from .. import conf, logger
from ..models import Job, Log
from ..outcomes import Attempt, Outcome
from .claims import Claimed, Claims
from .executors import Executor
from .ledger import Ledger
from .plan import Due, Upcoming, waiting_for
from .tick import Tick
from .writes import Recorded


class DryTick(Tick):
    def __init__(self, runner, force=False, extra=None):
        super().__init__(runner, force, extra)
        self.jobs = {job.name: job for job in Job.objects.all()}
        self.claims = DryClaims(runner.owner, self.jobs)
        self.ledger = DryLedger(self)

    def recording(self):
        return nullcontext()

    def purge(self, control):
        pass

    def holding(self, claims):
        return nullcontext()

    def executor(self, spec, job):
        return Pretend(super().executor(spec, job))

    def start(self, spec, rows, new):
        """As a real tick starts the job, in memory."""
        job = self.jobs.get(spec.name)
        if job is None and spec.formerly in self.jobs and spec.formerly in rows:  # renamed
            job = self.jobs[spec.name] = self.jobs.pop(spec.formerly)
            job.name, rows[spec.name] = spec.name, rows.pop(spec.formerly)._replace(name=spec.name)
        if job is None or job.next_run is None:
            fresh = Job(name=spec.name, **Job.fresh_state(spec.schedule, self.now))
            self.jobs[spec.name] = fresh
        elif job.schedule != spec.schedule.description and not job.is_claimed(self.now):
            job.next_slot, job.next_run = job.realigned(spec.schedule, self.now)
            job.schedule_changed = self.now
            job.schedule = spec.schedule.description
            rows[spec.name] = rows[spec.name]._replace(next_run=job.next_run)

    def create(self, new):
        pass

    def fail_unplanned(self, spec, error):
        self.progress.say(f"{spec.name}: would fail: {type(error).__name__}: {error}\n")

    def rerun_done(self, spec, row, waiting_at):
        pass


@dataclass
class Planned(Claimed):
    """A job a dry run takes: its first ``shown`` slots go through the loop; ``rest`` are summed up."""

    shown: int = 0
    rest: Upcoming | None = None

    def plan(self, now: datetime) -> Upcoming:
        self.rest = super().plan(now)
        self.slots = Upcoming(islice(self.rest, self.shown))
        return self.slots


class DryClaims(Claims):
    """Every due job at once, where no other runner holds it; nothing is claimed."""

    def __init__(self, owner: str, jobs: dict[str, Job]):
        super().__init__(owner)
        self.jobs, self.size = jobs, 10**9

    def claim(self, batch: list[Due], now: datetime) -> list[Claimed]:
        shown = conf.get("CRONTABBER_DRY_RUN_SHOWN")
        taken = []
        for item in batch:
            job = self.jobs.get(item.spec.name) or Job(name=item.spec.name, **Job.fresh_state(item.spec.schedule, now))
            if not job.is_claimed(now):  # a real tick skips what another runner holds
                taken.append(Planned(item.spec, job, item.forced, shown=shown))
        return taken

    def paced(self, started, attempts):
        pass

    def release(self, batch):
        pass


class DryLedger(Ledger):
    """Attempts applied to the jobs in memory; the slots they would run kept in the report."""

    def __init__(self, tick: DryTick):
        super().__init__(tick.runner.owner, tick.runner.host, tick.runner.pid)
        self.tick, self.jobs, self.report = tick, tick.jobs, tick.report
        self.opened: set[int] = set()  # the rows of attempts it pretends to run (not read back)

    def open_first(self, batch, now):
        pass

    def open(self, claimed, slot):
        log = Log(job=claimed.job, slot=slot, started_at=timezone.now(), duration=0, outcome=Outcome.RUNNING)
        log.rerun = claimed.again
        self.opened.add(id(log))
        claimed.running = log
        return log

    def successes(self, names):
        return {name: job.last_success for name, job in self.jobs.items() if name in set(names)}

    def record(self, claimed, log, attempt):
        self.apply(claimed, log, attempt)
        if id(log) in self.opened:  # not an attempt read back from a task backend
            shown, _, _ = self.report.planned.setdefault(claimed.spec.name, ([], None, False))
            shown.append(log.slot)
        return []

    def record_late(self, log, attempt, why=""):
        pass

    def fail(self, claimed, error):
        logger.error("%s: %s", claimed.spec.name, error, exc_info=error)
        self.tick.progress.say(f"{claimed.spec.name}: would fail: {type(error).__name__}: {error}\n")
        return []

    def release(self, claimed):
        if isinstance(claimed, Planned) and claimed.spec.name in self.report.planned:
            self._sum_up(claimed)

    def flush(self) -> list[Recorded]:
        return []

    def end_batch(self, batch):
        return []

    def _sum_up(self, claimed: Planned) -> None:
        """Whether more slots follow those shown, and the last of them."""
        shown, _, _ = self.report.planned[claimed.spec.name]
        following = claimed.rest.peek(1) if claimed.waiting_at is None and len(shown) == claimed.shown else []
        if claimed.spec.depends_on:
            met = self.successes(claimed.spec.depends_on)
            following = list(takewhile(lambda slot: not waiting_for(claimed.spec, slot, met), following))
        if not following:
            return
        spec, now = claimed.spec, self.tick.now
        if spec.max_backfill or spec.depends_on:
            rest = claimed.rest
            if spec.depends_on:
                rest = takewhile(lambda slot: not waiting_for(spec, slot, met), rest)
            last = deque(chain(following, rest), maxlen=1)[0]
        else:
            last = spec.schedule.latest_at_or_before(now, claimed.job.anchor(now))
        self.report.planned[spec.name] = (shown, last, True)


class Pretend(Executor):
    """A dry run's executor: it reads back what the real one left pending (reading changes
    nothing), runs nothing, and every attempt succeeds."""

    def __init__(self, real: Executor):
        self.real = real

    def pending(self, claimed):
        return self.real.pending(claimed)

    def late(self, claimed):
        return []

    def read(self, spec, log, now):
        return self.real.read(spec, log, now)

    def run(self, claimed, log, extra, deadlines):
        return Attempt(Outcome.SUCCESS)
