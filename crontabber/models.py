"""The state crontabber keeps: a Job row per registered job, a Log row per attempt, and
one Control row. State changes are methods here; the claim protocol is JobQuerySet's."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import F, Q

from . import conf
from .attempt import Attempt, Outcome
from .bulk import fast_datetimes
from .schedule import Schedule, truncate_to_minute


def lease() -> timedelta:
    return timedelta(seconds=conf.get("CRONTABBER_LEASE_SECONDS"))


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

    def last_successes(self, names) -> dict[str, datetime | None]:
        return dict(self.filter(name__in=list(names)).values_list("name", "last_success"))


class Job(models.Model):
    """The state of one registered job, keyed by its registry name."""

    name = models.CharField(max_length=200, unique=True)
    # The registry schedule this state was computed for: a change realigns next_slot.
    schedule = models.CharField(max_length=300, blank=True)
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
    # The claim (see JobQuerySet): who is running the job, and until when unless renewed.
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires = models.DateTimeField(null=True, blank=True)
    taken_over_from = models.CharField(
        max_length=200, blank=True, help_text="The expired claim the latest claim replaced."
    )
    last_skipped = models.DateTimeField(null=True, blank=True, help_text="Slot of the latest skipped run.")
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
        first_run=None,
        last_run=None,
        last_success=None,
        next_slot=None,
        next_run=None,
        error_count=0,
        last_error="",
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

    def realigned(self, schedule: Schedule, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(next_slot, next_run) after the schedule changed: the new schedule's first slot
        after the last slot handled, so a backlog is kept and the change takes effect at once."""
        handled = [t for t in (self.last_success, self.last_skipped) if t is not None]
        after = max(handled) if handled else self.anchor(now) - timedelta(microseconds=1)
        next_slot = schedule.next_after(after, self.anchor(now))
        next_run = max(next_slot, self.next_run) if self.error_count and self.next_run else next_slot
        return next_slot, next_run

    def apply_attempt(
        self, schedule: Schedule, slot: datetime, started_at: datetime, attempt: Attempt, now, following=None
    ) -> None:
        """The job's new state after an attempt at ``slot`` (in memory; pure).

        A handled slot (success, skipped) moves the job to its next slot (``following``
        when the caller has it at hand, a backlog's next, else the schedule's) and clears
        its errors; an error counts, and the same slot is retried after a back-off; an
        interrupted attempt changes nothing, so its slot runs again next tick."""
        anchor = self.anchor(started_at)
        self.last_run = started_at
        if attempt.handled:
            if attempt.outcome == Outcome.SUCCESS and (self.last_success is None or slot > self.last_success):
                self.last_success = slot
            if attempt.outcome == Outcome.SKIPPED:
                self.last_skipped = slot
            if self.next_slot is None or slot >= self.next_slot:  # a forced extra run leaves the grid alone
                self.next_slot = following or schedule.next_after(slot, anchor)
            self.next_run = self.next_slot
            self.error_count = 0
            self.last_error = ""
        elif attempt.is_error:
            self.error_count += 1
            self.last_error = f"{attempt.error_type}: {attempt.error_value}"[:2000]
            self.next_run = max(self.next_slot or now, now + retry_delay(self.error_count))

    def apply_rerun(self, slot: datetime, started_at: datetime, attempt: Attempt) -> None:
        """The job's new state after a re-run of ``slot`` (in memory; pure): the regular
        schedule's state (next slot, errors, back-off) is left alone; only a success of a
        later slot than the last moves ``last_success`` forward."""
        self.last_run = started_at
        if attempt.outcome == Outcome.SUCCESS and (self.last_success is None or slot > self.last_success):
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

    def try_numbers(self, slots: list[datetime], again: bool = False) -> dict[datetime, int]:
        """The try number of each of ``slots`` that is not 1 (its first attempt): 2 for its
        retry... Only a job that failed or was taken over, or a re-run (``again``), can be
        retrying a slot: only then are its attempts at the slots counted, in one query."""
        if not (self.error_count or self.taken_over_from or again) or self.pk is None:
            return {}
        tried = (
            self.logs.filter(slot__in=slots)
            .exclude(outcome=Outcome.RUNNING)
            .order_by()
            .values_list("slot")
            .annotate(tries=models.Count("id"))
        )
        return {slot: tries + 1 for slot, tries in tried}

    def drop_claim(self) -> None:
        """Forget the claim in memory (written with the job's state)."""
        self.claimed_by, self.claimed_at, self.claim_expires = "", None, None


class LogQuerySet(models.QuerySet):
    def interrupt_running(self, error_type: str, error_value: str) -> int:
        """The unfinished attempts among these end as interrupted; their slots run again."""
        return self.filter(outcome=Outcome.RUNNING).update(
            outcome=Outcome.INTERRUPTED, error_type=error_type, error_value=error_value
        )

    def at_slots_since(self, starts: dict) -> LogQuerySet:
        """Each job's attempts at its slots from ``starts[job id]`` on, oldest first, in one
        query whatever the number of jobs. An attempt starts at or after its slot, so the
        same bound on started_at keeps each job's scan of its index short."""
        if not starts:
            return self.none()
        wanted = Q()
        for job_id, start in starts.items():
            wanted |= Q(job_id=job_id, slot__gte=start, started_at__gte=start)
        return self.filter(wanted).order_by("job_id", "slot", "started_at", "id")

    def queued(self):
        """Attempts sent to a task backend whose results are not read yet."""
        return self.filter(outcome=Outcome.QUEUED)

    def purge(self, cutoff: datetime, batch: int, batches: int = 10) -> int:
        """Delete finished rows that started before ``cutoff``, at most ``batches`` DELETEs of
        ``batch`` rows (a long backlog of old rows is spread over ticks). Returns how many;
        fewer than the most possible means none are left."""
        deleted = 0
        for _ in range(batches):
            ids = list(
                self.filter(started_at__lt=cutoff)
                .exclude(outcome__in=(Outcome.RUNNING, Outcome.QUEUED))
                .values_list("pk", flat=True)[:batch]
            )
            if ids:
                deleted += self.filter(pk__in=ids)._raw_delete(self.db)
            if len(ids) < batch:
                break
        return deleted


class Log(models.Model):
    """One attempt to run one slot of one job."""

    Outcome = Outcome

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    slot = models.DateTimeField()
    started_at = models.DateTimeField()
    duration = models.FloatField(help_text="Seconds.")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    attempt = models.PositiveIntegerField(default=1, help_text="1 for the first try of a slot, 2 for its retry...")
    error_type = models.CharField(max_length=200, blank=True)
    error_value = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    output = models.TextField(blank=True, help_text="The tail of the command's output.")
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    # An attempt sent to a Django Tasks backend: its alias there, and the id of its result.
    backend = models.CharField(max_length=100, blank=True, help_text="The task backend that ran the attempt.")
    result_id = models.CharField(max_length=200, blank=True, help_text="The attempt's result id on that backend.")

    objects = LogQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["job", "-started_at"], name="crontabber_log_job_started"),
            models.Index(fields=["outcome"], name="crontabber_log_outcome"),  # the few queued or running
        ]

    def __str__(self):
        return f"{self.job.name} {self.slot:%Y-%m-%d %H:%M} {self.outcome}"

    @classmethod
    def opened(
        cls, job: Job, slots: list[datetime], started_at: datetime, host: str, pid: int, again=False
    ) -> list[Log]:
        """The rows of attempts at ``slots`` about to start, one after another (not saved):
        ``running`` until each ends. ``again``: a re-run, which may follow earlier attempts
        at the slots."""
        tries = job.try_numbers(slots, again)
        same = dict(job=job, started_at=started_at, duration=0, outcome=Outcome.RUNNING, host=host[:200], pid=pid)
        return [cls(slot=slot, attempt=tries.get(slot, 1), **same) for slot in slots]

    def finish(self, attempt: Attempt) -> None:
        """The attempt's outcome on this row (in memory)."""
        self.duration, self.outcome, self.error_type = attempt.duration, attempt.outcome, attempt.error_type[:200]
        self.error_value, self.traceback, self.output = attempt.error_value, attempt.traceback, attempt.output


class Control(models.Model):
    """One row shared by every runner: the hold switch and the last tick."""

    hold_all = models.BooleanField(default=False, help_text="While set, no runner starts any job.")
    held_by = models.CharField(max_length=150, blank=True)
    held_since = models.DateTimeField(null=True, blank=True)
    last_tick = models.DateTimeField(null=True, blank=True, help_text="When a runner last ended a tick.")
    last_tick_by = models.CharField(max_length=200, blank=True)
    last_tick_seconds = models.FloatField(null=True, blank=True, help_text="How long the last tick took.")
    last_tick_error = models.TextField(blank=True, help_text="How the last tick failed; empty: it completed.")
    last_purge = models.DateTimeField(null=True, blank=True, help_text="When old Log rows were last deleted.")

    class Meta:
        verbose_name = "control"

    def __str__(self):
        return "all jobs held" if self.hold_all else "running normally"

    @classmethod
    def load(cls) -> Control:
        """The one row, created on first use."""
        return cls.objects.get_or_create(pk=1)[0]

    @classmethod
    def record_tick(cls, started: datetime, now: datetime, owner: str, error: str = "") -> None:
        """A tick that began at ``started`` ended now, in an error or not: the health
        endpoint's proof of life."""
        seconds = max((now - started).total_seconds(), 0.0)
        cls.objects.filter(pk=1).update(
            last_tick=now, last_tick_by=owner, last_tick_error=error[:2000], last_tick_seconds=seconds
        )

    @classmethod
    def record_purge(cls, now: datetime) -> None:
        cls.objects.filter(pk=1).update(last_purge=now)

    @classmethod
    def hold(cls, by: str, now: datetime) -> tuple[Control, bool]:
        """Hold every job: no runner starts any until released. Returns the row and
        whether this call set the hold (False: someone already holds them)."""
        cls.load()
        changed = cls.objects.filter(pk=1, hold_all=False).update(hold_all=True, held_by=by[:150], held_since=now)
        return cls.objects.get(pk=1), bool(changed)

    @classmethod
    def release(cls) -> tuple[Control, bool]:
        """Lift the hold. Returns the row as it was, and whether it was held."""
        before = cls.load()
        changed = cls.objects.filter(pk=1, hold_all=True).update(hold_all=False, held_by="", held_since=None)
        return before, bool(changed)

    def purge_due(self, now: datetime) -> bool:
        """Old Log rows are deleted at most once an hour, by whichever tick comes first."""
        return self.last_purge is None or now - self.last_purge >= timedelta(hours=1)

    def hold_reason(self) -> str:
        return f"all jobs are held by {self.held_by or 'an operator'} since {self.held_since}"
