"""A pause is not a miss. A job disabled (in the registry or the admin) or held is paused
from when a tick, the admin or the hold first finds it off (Job.paused_since). Enabled
again, the slots that fell due meanwhile are recorded as one ``paused`` row; a backfill
job then catches them up, another waits for its next slot (it never fires at once on
resume), unless an operator chooses otherwise (cronresume, the admin's enable action),
told first how many slots that runs. Shared by the tick, the command and the admin.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from ..models import Control, Job, Log
from ..outcomes import Outcome
from ..registry import JobSpec, effective_spec
from ..schedules import format_instant
from ..words import plural
from .plan import Span, backlog, paused
from .repair import RepairError, Unconfirmed
from .writes import insert_rows, update_rows

CATCH_UP, SKIP = "catch-up", "skip"


@dataclass(frozen=True)
class Resume:
    """What resuming a paused job does."""

    name: str
    span: Span | None  # the slots that fell due while it was off
    catch_up: bool  # they run (a backfill job each, another once); else the job waits for its next slot
    runs: int  # how many runs that takes
    next_run: datetime | None
    paused: bool = True  # False: it was not paused, nothing to resume

    def said(self, shown: Callable[[datetime], str] = format_instant) -> str:
        if self.span is None:
            nothing = "no slot fell due while it was paused" if self.paused else "it was not paused"
            return f"{nothing}; next run {shown(self.next_run)}"
        fell = f"{plural(self.span.covers, 'slot')} fell due while it was paused ({shown(self.span.since)} to "
        fell += f"{shown(self.span.until)})"
        if self.catch_up:
            return f"{fell}: catching up, {plural(self.runs, 'run')} from the next tick"
        return f"{fell}: skipped, none runs; next run {shown(self.next_run)}"


def catches_up(spec: JobSpec, choice: str | None) -> bool:
    """Whether resuming runs the paused slots: ``choice`` (CATCH_UP, SKIP), or by default a backfill job does."""
    return spec.backfill if choice is None else choice == CATCH_UP


def preview(spec: JobSpec, job: Job, now: datetime, choice: str | None = None) -> Resume:
    """What resuming ``job`` now would do (pure: nothing changes); nothing unless it is paused."""
    anchor, catch_up = job.anchor(now), catches_up(spec, choice)
    span = paused(spec, job.next_slot, anchor, now) if job.paused_since is not None else None
    if span is None:
        return Resume(spec.name, None, catch_up, 0, job.next_run, job.paused_since is not None)
    if catch_up:
        return Resume(spec.name, span, True, backlog(spec, span.since, now, anchor), job.next_run)
    return Resume(spec.name, span, False, 0, spec.schedule.next_after(span.until, anchor))


class Pauses:
    """What a tick does: jobs found disabled are paused from now; paused jobs found enabled
    resume as their schedule says. Not while every job is held (a tick forced through the
    hold). DryPauses (dryrun.py) does the same in memory."""

    def __init__(self, now: datetime, progress):
        self.now, self.progress = now, progress

    def apply(self, specs: list[JobSpec], rows: dict, control: Control) -> None:
        """``rows`` (the tick's, by name) get the resumed jobs' next runs."""
        if control.hold_all:
            return
        self.pause([s.name for s in specs if not s.enabled and getattr(rows.get(s.name), "paused_since", None) is None])
        found = [s for s in specs if s.enabled and getattr(rows.get(s.name), "paused_since", None) is not None]
        for resumed in self.resume(found) if found else []:
            rows[resumed.name] = rows[resumed.name]._replace(next_run=resumed.next_run, paused_since=None)
            self.progress.say(f"{resumed.name}: enabled again; {resumed.said()}\n")

    def pause(self, names: list[str]) -> None:
        """The named jobs are off from now, unless they already were."""
        if names:
            Job.objects.filter(name__in=names, paused_since=None).update(paused_since=self.now)

    def resume(self, specs: list[JobSpec]) -> list[Resume]:
        """Resume paused jobs as their schedules say, in one transaction (after a hold, every
        job at once): each one's paused slots as one row, skipped or kept to catch up. Those
        no longer paused or that another runner holds are left out."""
        by_name = {spec.name: spec for spec in specs}
        with transaction.atomic():
            found = Job.objects.select_for_update().filter(paused_since__isnull=False)
            jobs = [job for job in found.filter(name__in=list(by_name)) if not job.is_claimed(self.now)]
            return _resume(
                [(job, by_name[job.name], preview(by_name[job.name], job, self.now)) for job in jobs],
                self.now,
                "a tick",
            )


def _resume(resumed: list[tuple[Job, JobSpec, Resume]], now: datetime, by: str) -> list[Resume]:
    """The jobs resumed and their paused rows written, each in one statement (writes.py)."""
    rows = []
    for job, spec, done in resumed:
        if done.span is not None:
            what = "caught up" if done.catch_up else "skipped"
            since = f" since {format_instant(job.paused_since)}" if job.paused_since else ""
            why = f"due while the job was disabled or held{since}; resumed by {by}: {what}"
            rows.append(Log.spanning(job, done.span, Outcome.PAUSED, why, now, socket.gethostname(), None))
        job.resumed(spec.schedule, done.span, done.catch_up, now)
    update_rows(Job, [job for job, _, _ in resumed], ["paused_since", "next_slot", "next_run", "enabled_override"])
    if rows:
        insert_rows(Log, rows)
    return [done for _, _, done in resumed]


def choices(spec: JobSpec, job: Job, now: datetime, shown: Callable[[datetime], str] = format_instant) -> str:
    """What each choice of resuming the job now would run, for an operator to choose."""
    caught = preview(spec, job, now, CATCH_UP)
    if caught.span is None:
        return f"{spec.name}: no slot to catch up"
    paused = caught.span
    fell = (
        f"{plural(paused.covers, 'slot')} fell due while it was paused ({shown(paused.since)} to {shown(paused.until)})"
    )
    default = "catches them up" if spec.backfill else "skips them"
    return f"{spec.name}: {fell}; catching up runs {plural(caught.runs, 'run')}, skipping none; by default it {default}"


def resume_named(
    specs: list[JobSpec], now: datetime, choice: str | None = None, confirmed: bool = False, by: str = "cronresume"
) -> list[Resume]:
    """Enable the named jobs again and resume them, all or nothing (cronresume, the admin):
    an operator's disabling is lifted; one still off (held, or disabled in the registry)
    or running refuses; one that would run paused slots asks first (Unconfirmed) unless
    ``confirmed``."""
    control = Control.load()
    if control.hold_all:
        raise RepairError(f"{control.hold_reason()}: release the hold first; nothing was changed")
    with transaction.atomic():
        found = _enabled_again(specs, now)
        done = [preview(effective_spec(spec, job), job, now, choice) for job, spec in found]
        asked = [f"{item.name}: {item.said()}" for item in done if item.runs]
        if asked and not confirmed:
            raise Unconfirmed("; ".join(asked))
        _resume(
            [(job, effective_spec(spec, job), item) for (job, spec), item in zip(found, done, strict=True)], now, by
        )
    return done


def _enabled_again(specs: list[JobSpec], now: datetime) -> list[tuple[Job, JobSpec]]:
    """The named jobs with a row, locked, an operator's disabling lifted (in memory); RepairError
    when one cannot be resumed."""
    by_name = {spec.name: spec for spec in specs}
    found = [(job, by_name[job.name]) for job in Job.objects.select_for_update().filter(name__in=list(by_name))]
    refused = list(filter(None, (_refusal(spec, job, now) for job, spec in found)))
    if refused:
        raise RepairError(f"{'; '.join(refused)}; nothing was changed")
    for job, _ in found:
        job.enabled_override = job.enabled_override or None  # False (an operator's disabling) lifted
    return found


def _refusal(spec: JobSpec, job: Job, now: datetime) -> str:
    """Why the job cannot be resumed by an operator, or ''."""
    if not spec.enabled and job.enabled_override is not True:
        return f"{spec.name} is disabled in the registry (enabled: False): enable it there"
    if job.is_claimed(now):
        return f"{spec.name} is running (claimed by {job.claimed_by})"
    return ""
