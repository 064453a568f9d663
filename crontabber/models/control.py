"""The one Control row every runner shares: the hold switch, the last tick, the last purge."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, models

from .jobs import Job


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
    asked_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator last asked the runners for something: a sleeping loop wakes."
    )

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
    def ask(cls, now: datetime) -> None:
        """An operator changed what runners should do (run now, re-run, an override, a
        release, a repair): a ``cronrun --loop`` asleep sees it and ticks (Runner.loop)."""
        cls.load()
        cls.objects.filter(pk=1).update(asked_at=now)

    @classmethod
    def asked_since(cls, asked: datetime | None) -> bool:
        """Whether an operator asked for something after ``asked``: one short query, its
        SQL written out (a sleeping loop asks often; the ORM's compiling cost more than it)."""
        quote = connection.ops.quote_name
        sql = f"SELECT 1 FROM {quote(cls._meta.db_table)} WHERE id = 1 AND {quote('asked_at')} "
        with connection.cursor() as cursor:
            if asked is None:
                cursor.execute(sql + "IS NOT NULL")
            else:
                cursor.execute(sql + "> %s", [connection.ops.adapt_datetimefield_value(asked)])
            return cursor.fetchone() is not None

    @classmethod
    def record_purge(cls, now: datetime) -> None:
        cls.objects.filter(pk=1).update(last_purge=now)

    @classmethod
    def hold(cls, by: str, now: datetime) -> tuple[Control, bool]:
        """Hold every job: no runner starts any until released, and each is paused (the slots
        due meanwhile are one span when it runs again). Returns the row and whether this call
        set the hold (False: someone already holds them)."""
        cls.load()
        changed = cls.objects.filter(pk=1, hold_all=False).update(hold_all=True, held_by=by[:150], held_since=now)
        if changed:
            Job.objects.filter(paused_since=None).update(paused_since=now)
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
