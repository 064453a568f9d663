"""ScheduleChange: a row per change of a job's schedule (an operator's override, a new
schedule or zone in the registry, a rename), with its time and who made it. The slots
before a change come from the schedule before it (schedules.history)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from django.db import models

from ..schedules import from_description, in_force


class ScheduleChangeQuerySet(models.QuerySet):
    def in_force(self, job, spec, since: datetime | None):
        """``spec`` (a JobSpec) with the job's schedule as in force at each time from
        ``since``: as it is unless the job's schedule changed since (only then are the
        changes read)."""
        if job.schedule_changed is None or since is None or job.schedule_changed <= since:
            return spec
        changes = list(self.filter(job=job, at__gt=since).order_by("at", "pk").values_list("at", "before"))
        return replace(spec, schedule=in_force(changes, spec.schedule, from_description))

    def unapplied(self, job, description: str):
        """The change to ``description`` an operator made that no runner has applied yet:
        the job's latest change, if it is that one (an override set and taken back before
        a tick is no change to apply)."""
        since = job.schedule_changed or job.first_run  # a reset starts the job afresh
        found = self.filter(job=job, at__gt=since) if since else self.filter(job=job)
        latest = found.order_by("at", "pk").last()
        return latest if latest and (latest.what, latest.after) == (ScheduleChange.OVERRIDE, description) else None


class ScheduleChange(models.Model):
    """One change of a job's schedule."""

    OVERRIDE, REGISTRY, RENAME = "override", "registry", "rename"

    job = models.ForeignKey("crontabber.Job", on_delete=models.CASCADE, related_name="schedule_changes")
    at = models.DateTimeField(help_text="When it took effect: slots before it follow the schedule before it.")
    what = models.CharField(max_length=20, help_text="override, registry or rename.")
    before = models.CharField(max_length=300, blank=True, help_text="The schedule (or name) before.")
    after = models.CharField(max_length=300, blank=True, help_text="The schedule (or name) after.")
    by = models.CharField(max_length=150, blank=True, help_text="Who made it in the admin; empty: a deploy.")

    objects = ScheduleChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["job", "at"])]

    def __str__(self):
        return f"{self.job}: {self.what} at {self.at:%Y-%m-%d %H:%M} UTC: {self.before} -> {self.after}"
