"""One verdict on the scheduler's health, for the health endpoint, `cronlist --check`
(Nagios exit codes) and the admin's status column."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import Control, Job
from .registry import JobSpec, load_jobs
from .schedule import ScheduleError

OK, WARNING, CRITICAL = 0, 1, 2  # Nagios exit codes
HEALTHY = ("ok", "running", "disabled")


def _setting(name, default):
    return getattr(settings, name, default)


@dataclass
class JobHealth:
    name: str
    status: str  # ok, running, failing, overdue, disabled
    schedule: str
    next_run: datetime | None
    last_success: datetime | None
    error_count: int
    last_error: str

    def as_dict(self):
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {
            "name": self.name,
            "status": self.status,
            "schedule": self.schedule,
            "next_run": iso(self.next_run),
            "last_success": iso(self.last_success),
            "error_count": self.error_count,
            "last_error": self.last_error or None,
        }


def effective_spec(spec: JobSpec, job: Job | None) -> JobSpec:
    """The spec as operators changed it in the admin (ignoring an override that no longer parses)."""
    if job is None:
        return spec
    try:
        return spec.with_overrides(job.enabled_override, job.schedule_override)
    except ScheduleError:
        return spec.with_overrides(job.enabled_override, "")


def job_status(spec: JobSpec, job: Job | None, now: datetime) -> str:
    grace = timedelta(seconds=_setting("CRONTABBER_OVERDUE_GRACE_SECONDS", 900))
    if not spec.enabled:
        return "disabled"
    if job is not None and job.claimed_by and job.claim_expires and job.claim_expires > now:
        return "running"
    if job is not None and job.error_count:
        return "failing"
    if job is not None and job.next_run and job.next_run < now - grace:
        return "overdue"
    return "ok"


def job_health(spec: JobSpec, job: Job | None, now: datetime) -> JobHealth:
    spec = effective_spec(spec, job)
    return JobHealth(
        name=spec.name,
        status=job_status(spec, job, now),
        schedule=spec.schedule.description,
        next_run=job.next_run if job else None,
        last_success=job.last_success if job else None,
        error_count=job.error_count if job else 0,
        last_error=job.last_error if job else "",
    )


@dataclass
class Report:
    jobs: list[JobHealth]
    last_tick: datetime | None
    hold_all: bool
    code: int  # OK, WARNING or CRITICAL
    problems: list[str]

    @property
    def healthy(self) -> bool:
        return self.code == OK

    def as_dict(self):
        return {
            "status": ("ok", "warning", "critical")[self.code],
            "last_tick": self.last_tick.isoformat() if self.last_tick else None,
            "hold_all": self.hold_all,
            "problems": self.problems,
            "jobs": [job.as_dict() for job in self.jobs],
        }


def report(names=None, now=None) -> Report:
    """Every job's status and one verdict. CRITICAL: no runner ticked recently, a job is
    overdue, or a job failed CRONTABBER_CRITICAL_ERRORS times in a row (default 3);
    WARNING: a job failed fewer times, or all jobs are held."""
    now = now or timezone.now()
    specs = load_jobs()
    if names:
        specs = [spec for spec in specs if spec.name in names]
    rows = {job.name: job for job in Job.objects.filter(name__in=[spec.name for spec in specs])}
    control = Control.objects.filter(pk=1).first()
    jobs = [job_health(spec, rows.get(spec.name), now) for spec in specs]
    critical_errors = _setting("CRONTABBER_CRITICAL_ERRORS", 3)
    tick_grace = timedelta(seconds=_setting("CRONTABBER_TICK_GRACE_SECONDS", 3 * _setting("CRONTABBER_INTERVAL", 300)))
    problems, code = [], OK
    last_tick = control.last_tick if control else None
    if specs and (last_tick is None or last_tick < now - tick_grace):
        problems.append(f"no runner has ticked since {last_tick.isoformat() if last_tick else 'ever'}")
        code = CRITICAL
    for job in jobs:
        if job.status == "overdue":
            problems.append(f"{job.name} is overdue (next run {job.next_run.isoformat()})")
            code = CRITICAL
        elif job.status == "failing":
            problems.append(f"{job.name} failed {job.error_count} time(s) in a row: {job.last_error}")
            code = max(code, CRITICAL if job.error_count >= critical_errors else WARNING)
    if control and control.hold_all:
        problems.append(f"all jobs are held by {control.held_by or 'an operator'}")
        code = max(code, WARNING)
    return Report(
        jobs=jobs,
        last_tick=last_tick,
        hold_all=bool(control and control.hold_all),
        code=code,
        problems=problems,
    )
