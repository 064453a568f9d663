"""What is asked of all jobs at once (Job.objects): the claim protocol, a tick's read of
every row, realigning a job whose schedule changed, renaming one."""

from __future__ import annotations

from datetime import datetime

from django.db import models, transaction
from django.db.models import F, Q

from .. import logger
from ..conf import lease
from ..schedules import Schedule
from .changes import ScheduleChange
from .timestamps import fast_datetimes

# What one tick reads of every job, in one query (JobQuerySet.tick_rows).
TICK_FIELDS = (
    "name",
    "next_run",
    "schedule",
    "claimed_by",
    "claim_expires",
    "enabled_override",
    "schedule_override",
    "run_requested",
    "rerun_from",
    "rerun_to",
    "rerun_failed_and_missing",
    "rerun_newest_first",
    "paused_since",
)


class JobQuerySet(models.QuerySet):
    """The claim protocol, shared by the runner, its heartbeat, repairs, health and admin.

    A claim says which runner is running a job (``claimed_by``: host:pid:run id) and until
    when that holds unless renewed (``claim_expires``).

    1. A job is claimable when nobody holds it or its claim has expired: its runner died.
    2. ``claim`` takes claimable jobs with one conditional UPDATE. Of runners racing for a
       job, exactly one changes its row; the others change nothing and move on: what
       SKIP LOCKED gives, on every database.
    3. The holder renews its claims every third of the lease, so a live job keeps its
       claim and a dead runner's claims expire within one lease.
    4. ``release`` clears the claim when the runner is done with the job.
    """

    def claimable(self, now: datetime):
        return self.filter(Q(claimed_by="") | Q(claim_expires__lt=now))

    def due(self, now: datetime, forced=()):
        """Due by the schedule, or named in ``forced`` (run whatever the schedule)."""
        return self.filter(Q(next_run__lte=now) | Q(name__in=list(forced)))

    def claim(self, owner: str, now: datetime) -> int:
        # taken_over_from first: the SET list reads the old claimed_by everywhere.
        return self.claimable(now).update(
            taken_over_from=F("claimed_by"), claimed_by=owner, claimed_at=now, claim_expires=now + lease()
        )

    def held_by(self, owner: str):
        return self.filter(claimed_by=owner)

    def renew(self, now: datetime) -> int:
        return self.update(claim_expires=now + lease())

    def release(self) -> int:
        return self.update(claimed_by="", claimed_at=None, claim_expires=None)

    def tick_rows(self) -> dict:
        """What a tick needs of every job, by name (named tuples, not model instances:
        a tick reads every row)."""
        with fast_datetimes():
            return {row.name: row for row in self.values_list(*TICK_FIELDS, named=True)}

    def realign(self, name: str, schedule: Schedule, now: datetime) -> datetime | None:
        """The job's schedule changed (registry or override): its next run as realigned and
        the change recorded (an operator's, recorded when made, counts from then), unless
        another runner holds it or realigned it first."""
        job = self.get(name=name)
        recorded = ScheduleChange.objects.unapplied(job, schedule.description)
        at = recorded.at if recorded else now
        next_slot, next_run = job.realigned(schedule, at)
        with transaction.atomic():
            updated = (
                self.filter(pk=job.pk, schedule=job.schedule)
                .claimable(now)
                .update(schedule=schedule.description, next_slot=next_slot, next_run=next_run, schedule_changed=at)
            )
            if updated and not recorded:
                what = ScheduleChange.OVERRIDE if job.schedule_override else ScheduleChange.REGISTRY
                ScheduleChange.objects.create(job=job, at=at, what=what, before=job.schedule, after=str(schedule))
        logger.info("%s: schedule is now %s; next slot %s", name, schedule, next_slot)
        return next_run if updated else job.next_run

    def rename(self, formerly: str, name: str, now: datetime) -> bool:
        """The row once named ``formerly`` now carries ``name`` (its state, attempts and
        changes with it), the rename recorded; False if there is none (or another runner
        renamed it first)."""
        with transaction.atomic():
            if not self.filter(name=formerly).update(name=name):
                return False
            job = self.get(name=name)
            ScheduleChange.objects.create(job=job, at=now, what=ScheduleChange.RENAME, before=formerly, after=name)
        logger.info("%s: renamed from %s", name, formerly)
        return True

    def claim_due(self, names: list[str], forced: list[str], owner: str, now: datetime) -> dict:
        """Steps 1 and 2 for a batch: the named jobs nobody holds that are due (or
        ``forced``) claimed with one UPDATE; then one read returns those ``owner`` got, by name."""
        if not self.filter(name__in=names).due(now, forced).claim(owner, now):
            return {}
        with fast_datetimes():
            return {job.name: job for job in self.filter(claimed_by=owner, name__in=names)}

    def free(self, names: list[str], forced: list[str], now: datetime) -> set[str]:
        """Of the named jobs, those nobody holds that are still due (or ``forced``)."""
        return set(self.filter(name__in=names).due(now, forced).claimable(now).values_list("name", flat=True))

    def last_successes(self, names) -> dict[str, datetime | None]:
        return dict(self.filter(name__in=list(names)).values_list("name", "last_success"))
