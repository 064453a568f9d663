"""A Job row per registered job: its schedule's state, the claim protocol (JobQuerySet)
and its state changes (Job's methods, pure where they can be)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import F, Q

from .. import conf, logger
from ..conf import lease
from ..outcomes import Attempt, Interruption, Outcome
from ..schedules import Schedule, truncate_to_minute
from .changes import ScheduleChange
from .timestamps import fast_datetimes


def retry_delay(error_count: int) -> timedelta:
    """Back-off after ``error_count`` consecutive errors: doubles from the base, capped."""
    base = conf.get("CRONTABBER_RETRY_DELAY_SECONDS")
    cap = conf.get("CRONTABBER_RETRY_MAX_DELAY_SECONDS")
    return timedelta(seconds=min(base * 2 ** max(error_count - 1, 0), cap))


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


class Job(models.Model):
    """The state of one registered job, keyed by its registry name."""

    name = models.CharField(max_length=200, unique=True)
    # The registry schedule this state was computed for: a change realigns next_slot.
    schedule = models.CharField(max_length=300, blank=True)
    schedule_changed = models.DateTimeField(null=True, blank=True, help_text="When its schedule last changed.")
    first_run = models.DateTimeField(null=True, blank=True, help_text="When the job was first seen.")
    last_run = models.DateTimeField(null=True, blank=True, help_text="When the latest attempt started.")
    last_success = models.DateTimeField(null=True, blank=True, help_text="Slot of the latest success.")
    next_slot = models.DateTimeField(null=True, blank=True, help_text="Oldest slot not yet handled.")
    next_run = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When the job is next due (later than next_slot while backing off).",
    )
    error_count = models.PositiveIntegerField(default=0, help_text="Consecutive failed attempts.")
    last_error = models.TextField(blank=True)
    crash_count = models.PositiveIntegerField(
        default=0,
        help_text="Consecutive attempts whose runner died under them; at CRONTABBER_CRASHES_BEFORE_ISOLATION "
        "its attempts run in a child process.",
    )
    # The claim (see JobQuerySet): who is running the job, and until when unless renewed.
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires = models.DateTimeField(null=True, blank=True)
    taken_over_from = models.CharField(
        max_length=200, blank=True, help_text="The expired claim the latest claim replaced."
    )
    last_skipped = models.DateTimeField(null=True, blank=True, help_text="Slot of the latest skipped run.")
    start_lag = models.FloatField(
        null=True, blank=True, help_text="Seconds from its latest on-time slot to the start of that slot's attempt."
    )
    # Operators' controls (admin), obeyed by every runner.
    enabled_override = models.BooleanField(
        null=True,
        blank=True,
        help_text="Enable or disable the job regardless of the registry; empty: the registry decides.",
    )
    schedule_override = models.CharField(
        max_length=200,
        blank=True,
        help_text="Replaces the registry's schedule while set: "
        "times 'HH:MM,HH:MM' or an interval such as '30m', '2h', '1d'.",
    )
    run_requested = models.DateTimeField(
        null=True, blank=True, help_text="Run on the next tick, whatever the schedule."
    )
    # A re-run an operator queued in the admin: the next tick runs these slots again first.
    rerun_from = models.DateTimeField(null=True, blank=True, help_text="Re-run the slots from this one...")
    rerun_to = models.DateTimeField(null=True, blank=True, help_text="...to this one, on the next tick.")

    objects = JobQuerySet.as_manager()

    # What a reset forgets: the job runs on the next tick as if new.
    FORGOTTEN = dict(
        schedule="",
        schedule_changed=None,
        first_run=None,
        last_run=None,
        last_success=None,
        next_slot=None,
        next_run=None,
        error_count=0,
        last_error="",
        crash_count=0,
        start_lag=None,
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def ongoing(self):
        return bool(self.claimed_by)

    def is_claimed(self, now: datetime) -> bool:
        """Claimed and not expired: its runner may be running it."""
        return bool(self.claimed_by) and self.claim_expires is not None and self.claim_expires > now

    def anchor(self, now: datetime) -> datetime:
        """Where the job's schedule grid starts: its first run, to the minute."""
        return self.first_run or truncate_to_minute(now)

    @staticmethod
    def fresh_state(schedule: Schedule, now: datetime) -> dict:
        """The fields of a job seen for the first time (or reset): its first slot is due next."""
        first = schedule.first_slot(now)
        return dict(schedule=schedule.description, first_run=truncate_to_minute(now), next_slot=first, next_run=first)

    def realigned(self, schedule: Schedule, at: datetime) -> tuple[datetime | None, datetime | None]:
        """(next_slot, next_run) after the schedule changed at ``at``. Slots before ``at``
        come from the old schedule: those still owed stay due (schedules.Switched yields
        them); otherwise the next slot is the new schedule's first at or after ``at``
        (and after the last slot handled), so nothing is replayed and nothing skipped."""
        if self.next_slot is not None and self.next_slot < at:
            next_slot = self.next_slot
        else:
            handled = [t for t in (self.last_success, self.last_skipped) if t is not None]
            start = max([at - timedelta(microseconds=1), *handled])
            next_slot = schedule.next_after(start, self.anchor(at))
        next_run = max(next_slot, self.next_run) if self.error_count and self.next_run else next_slot
        return next_slot, next_run

    def apply_attempt(
        self,
        schedule: Schedule,
        slot: datetime,
        started_at: datetime,
        attempt: Attempt,
        now,
        following=None,
        start_lag: float | None = None,
    ) -> None:
        """The job's new state after an attempt at ``slot`` (in memory; pure).

        A handled slot (success, skipped) moves the job to its next slot (``following``
        when the caller has it at hand, a backlog's next, else the schedule's) and clears
        its errors; an error counts, and the same slot is retried after a back-off; an
        interrupted attempt changes nothing, so its slot runs again next tick; a queued
        one changes nothing yet: its result is recorded when a later tick reads it.
        ``start_lag``: the attempt's, if its slot was on time (Claimed.start_lag)."""
        self.start_lag = self.start_lag if start_lag is None else start_lag
        if attempt.outcome == Outcome.QUEUED:
            return
        self.last_run = started_at
        if attempt.handled:
            self._handled(slot, attempt.outcome)
            if self.next_slot is None or slot >= self.next_slot:  # a forced extra run leaves the grid alone
                self.next_slot = following or schedule.next_after(slot, self.anchor(started_at))
            self.next_run = self.next_slot
            self.error_count, self.last_error = 0, ""
            if not self.isolated:  # isolated, it stays so until an operator resets or marks it
                self.crash_count = 0
        elif attempt.is_error:
            self.error_count += 1
            self.last_error = f"{attempt.error_type}: {attempt.error_value}"[:2000]
            self.next_run = max(self.next_slot or now, now + retry_delay(self.error_count))
            self.crash_count += attempt.error_type == Interruption.ABANDONED

    @property
    def isolated(self) -> bool:
        """Its runner died under it too often: its attempts run in a child process."""
        return self.crash_count >= conf.get("CRONTABBER_CRASHES_BEFORE_ISOLATION")

    def apply_rerun(self, slot: datetime, started_at: datetime, attempt: Attempt) -> None:
        """The job's new state after a re-run of ``slot`` (in memory; pure): the regular
        schedule's state (next slot, errors, back-off) is left alone; only a success of a
        later slot than the last moves ``last_success`` forward."""
        self.last_run = started_at
        if attempt.outcome == Outcome.SUCCESS:
            self._handled(slot, attempt.outcome)

    def _handled(self, slot: datetime, outcome: Outcome) -> None:
        """The latest slot that succeeded, or the one skipped."""
        if outcome == Outcome.SKIPPED:
            self.last_skipped = slot
        elif self.last_success is None or slot > self.last_success:
            self.last_success = slot

    def mark_succeeded(self, schedule: Schedule, slot: datetime) -> None:
        """A success of ``slot`` recorded without running (in memory): no backfill before it.
        A job with no state yet has its grid anchored at ``slot``, so every slot after it
        is due (not only those after the first tick)."""
        self.first_run = self.first_run or truncate_to_minute(slot)
        self.schedule = schedule.description
        self.last_success = slot
        self.next_slot = schedule.next_after(slot, self.first_run)
        self.next_run = self.next_slot
        self.error_count = 0
        self.last_error = ""
        self.crash_count = 0

    def drop_claim(self) -> None:
        """Forget the claim in memory (written with the job's state)."""
        self.claimed_by, self.claimed_at, self.claim_expires = "", None, None
