"""A Log row per attempt: opened before it starts, finished with its outcome."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from .. import logger
from ..outcomes import UNFINISHED, Attempt, Interruption, Outcome
from .jobs import Job


class LogQuerySet(models.QuerySet):
    def interrupt_running(self, error_type: str, error_value: str) -> int:
        """The unfinished attempts among these end as interrupted; their slots run again."""
        return self.filter(outcome=Outcome.RUNNING).update(
            outcome=Outcome.INTERRUPTED, error_type=error_type, error_value=error_value
        )

    def abandon(self, holder: str):
        """A dead runner's unfinished attempts among these (``holder``: its claim) end as
        interrupted (Interruption.ABANDONED); their slots run again. Returns the earliest of
        them, the one it was running, or None."""
        first = self.filter(outcome=Outcome.RUNNING).order_by("slot", "id").first()
        why = f"runner {holder} stopped without finishing it (its claim expired): it crashed or was killed"
        self.interrupt_running(Interruption.ABANDONED, why)
        if first is not None:
            first.outcome, first.error_type, first.error_value = Outcome.INTERRUPTED, Interruption.ABANDONED, why
        return first

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

    def try_numbers(self, job, slots: list[datetime], again: bool = False) -> dict[datetime, int]:
        """The try number of each of ``slots`` of ``job`` that is not 1 (its first attempt): 2
        for its retry... Only a job that failed or was taken over, or a re-run (``again``),
        can be retrying a slot: only then are its attempts at the slots counted, in one query."""
        if not (job.error_count or job.taken_over_from or again) or job.pk is None:
            return {}
        tried = (
            self.filter(job=job, slot__in=slots)
            .exclude(outcome=Outcome.RUNNING)
            .order_by()
            .values_list("slot")
            .annotate(tries=models.Count("id"))
        )
        return {slot: tries + 1 for slot, tries in tried}

    def queued(self):
        """Attempts sent to a task backend whose results are not read yet."""
        return self.filter(outcome=Outcome.QUEUED)

    def purge(self, cutoff: datetime, batch: int, batches: int = 10) -> bool:
        """Delete finished rows that started before ``cutoff``, at most ``batches`` DELETEs of
        ``batch`` rows (a long backlog of old rows is spread over ticks). Whether none are left."""
        deleted = 0
        for _ in range(batches):
            ids = list(
                self.filter(started_at__lt=cutoff).exclude(outcome__in=UNFINISHED).values_list("pk", flat=True)[:batch]
            )
            if ids:
                deleted += self.filter(pk__in=ids)._raw_delete(self.db)
            if len(ids) < batch:
                break
        if deleted:
            logger.info("deleted %s log rows older than %s", deleted, cutoff)
        return deleted < batches * batch


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
    rerun = models.BooleanField(default=False, help_text="A re-run's attempt: the job's schedule was left alone.")
    start_lag = models.FloatField(
        null=True,
        blank=True,
        help_text="Seconds from its slot to its start: only for a slot on time, not a backlog, retry or re-run.",
    )
    # A row covering several slots (a missed or paused span): from ``since`` to ``slot``.
    since = models.DateTimeField(null=True, blank=True, help_text="The oldest slot the row covers.")
    covers = models.PositiveIntegerField(default=1, help_text="How many slots of the schedule the row covers.")

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
        cls, job: Job, slots: list[datetime], started_at: datetime, host: str, pid: int, again=False, rerun=False
    ) -> list[Log]:
        """The rows of attempts at ``slots`` about to start, one after another (not saved):
        ``running`` until each ends. ``again``: they may follow earlier attempts at the slots
        (a retry, a re-run); ``rerun``: they are a re-run's."""
        tries = cls.objects.try_numbers(job, slots, again or rerun)
        same = dict(job=job, started_at=started_at, duration=0, outcome=Outcome.RUNNING, host=host[:200], pid=pid)
        return [cls(slot=slot, attempt=tries.get(slot, 1), rerun=rerun, **same) for slot in slots]

    @classmethod
    def spanning(cls, job: Job, span, outcome: Outcome, why: str, now: datetime, host: str, pid: int | None) -> Log:
        """The one row of a job's slots that did not run (plan.Span: missed, paused), not saved."""
        return cls(
            job=job,
            slot=span.until,
            since=span.since,
            covers=span.covers,
            started_at=now,
            duration=0,
            outcome=outcome,
            error_value=why,
            host=host[:200],
            pid=pid,
        )

    def finish(self, attempt: Attempt) -> None:
        """The attempt's outcome on this row (in memory)."""
        self.duration, self.outcome, self.error_type = attempt.duration, attempt.outcome, attempt.error_type[:200]
        self.error_value, self.traceback, self.output = attempt.error_value, attempt.traceback, attempt.output
