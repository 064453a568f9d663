"""One verdict on the scheduler's health, for the health endpoint, `cronlist --check`
(Nagios exit codes) and the admin's status column."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from .. import conf
from ..engine.backends import patience
from ..models import Control, Job, Log
from ..registry import JobSpec, effective_spec, load_jobs
from ..words import first_line, took

OK, WARNING, CRITICAL = 0, 1, 2  # Nagios exit codes
HEALTHY = ("ok", "running", "queued", "disabled")
CLOCK_SKEW_TOLERANCE = timedelta(seconds=60)  # clocks of hosts differ by this much without a warning


@dataclass
class JobHealth:
    name: str
    status: str  # ok, running, queued, failing, overdue, missed, stuck (queued too long), isolated, disabled
    schedule: str
    next_run: datetime | None
    last_success: datetime | None
    error_count: int
    last_error: str
    why: str = ""  # what makes a stuck or isolated job CRITICAL, or a missed one WARNING
    start_lag: float | None = None  # seconds its latest on-time slot started late

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
            "start_lag": self.start_lag,
        }


def job_status(spec: JobSpec, job: Job | None, now: datetime, queued: Log | None = None) -> str:
    if not spec.enabled:
        return "disabled"
    if job is None:
        return "ok"
    if job.is_claimed(now):
        return "running"
    if queued is not None:
        return "stuck" if now - queued.started_at > patience(spec) else "queued"
    if job.isolated:
        return "isolated"
    if job.error_count:
        return "failing"
    if _overdue(job, now):
        return "overdue"
    return "missed" if job.missing else "ok"


def _overdue(job: Job, now: datetime) -> bool:
    grace = timedelta(seconds=conf.get("CRONTABBER_OVERDUE_GRACE_SECONDS"))
    return job.next_run is not None and job.next_run < now - grace


def job_health(spec: JobSpec, job: Job | None, now: datetime, queued: Log | None = None) -> JobHealth:
    spec = effective_spec(spec, job)
    return JobHealth(
        name=spec.name,
        status=job_status(spec, job, now, queued),
        why=_stuck(spec, queued, now) or _isolated(job) or _missed(job),
        schedule=spec.schedule.description,
        next_run=job.next_run if job else None,
        last_success=job.last_success if job else None,
        error_count=job.error_count if job else 0,
        last_error=job.last_error if job else "",
        start_lag=job.start_lag if job else None,
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
    overdue, or a job failed CRONTABBER_CRITICAL_ERRORS times in a row; WARNING: a job
    failed fewer times, missed slots past its starting deadline (until it next succeeds),
    its latest on-time slot started late, or all jobs are held."""
    now = now or timezone.now()
    specs = load_jobs(names)
    rows = Job.objects.in_bulk([spec.name for spec in specs], field_name="name")
    control = Control.load()
    queued = queued_of(specs, rows.values())
    jobs = [job_health(spec, rows.get(spec.name), now, queued.get(spec.name)) for spec in specs]
    found = [(code, problem) for code, problem in _verdicts(jobs, rows.values(), control, now) if problem]
    code = max((code for code, _ in found), default=OK)
    return Report(jobs, control.last_tick, control.hold_all, code, [problem for _, problem in found])


def _isolated(job: Job | None) -> str:
    if job is None or not job.isolated:
        return ""
    return (
        f"its runner died under {job.crash_count} attempts in a row (a crash, os._exit, the OOM killer): its "
        "attempts now run in a child process; once it is fixed, cronreset or cronmarksuccess clears this"
    )


def _missed(job: Job | None) -> str:
    if job is None or not job.missing:
        return ""
    since = f"since {job.last_success.isoformat()}" if job.last_success else "yet"
    return (
        f"missed its slots up to {job.last_missed.isoformat()} (not started within its starting_deadline); "
        f"it has not succeeded {since}"
    )


def _stuck(spec: JobSpec, queued: Log | None, now: datetime) -> str:
    if queued is None or now - queued.started_at <= patience(spec):
        return ""
    when = f"since {queued.started_at} ({queued.result_id})"
    return f"attempt queued on {queued.backend} {when}, longer than {patience(spec)}"


def queued_of(specs, jobs) -> dict[str, Log]:
    """Each job's attempt queued on a task backend, by job name: one query, and none
    while no job runs on a backend."""
    if not any(spec.backend for spec in specs):
        return {}
    by_pk = {job.pk: job for job in jobs}
    return {by_pk[log.job_id].name: log for log in Log.objects.queued().filter(job_id__in=list(by_pk))}


def _verdicts(jobs: list[JobHealth], rows, control: Control, now: datetime) -> list[tuple[int, str]]:
    """(code, problem or '') of the runners, each job, the clocks and the hold switch."""
    verdicts = [_tick_verdict(control, now)] if jobs else []
    verdicts += [_job_verdict(job) for job in jobs]
    verdicts += [_late_verdict(job) for job in jobs if job.status != "disabled"]
    verdicts.append(_clock_verdict(control, rows, now))
    if control.hold_all:
        verdicts.append((WARNING, f"all jobs are held by {control.held_by or 'an operator'}"))
    return verdicts


def _tick_verdict(control: Control, now: datetime) -> tuple[int, str]:
    last_tick = control.last_tick
    if last_tick is None or last_tick < now - timedelta(seconds=conf.get("CRONTABBER_TICK_GRACE_SECONDS")):
        return CRITICAL, f"no runner has ticked since {last_tick.isoformat() if last_tick else 'ever'}"
    if control.last_tick_error:
        return CRITICAL, f"the last tick failed: {first_line(control.last_tick_error)}"
    return OK, ""


def _clock_verdict(control: Control, rows, now: datetime) -> tuple[int, str]:
    """A tick or claim stamped in the future: some runner's clock is ahead of this one."""
    ahead = now + CLOCK_SKEW_TOLERANCE
    if control.last_tick and control.last_tick > ahead:
        return WARNING, f"clock skew: the last tick is stamped {control.last_tick.isoformat()}, in the future"
    for job in rows:
        if job.claimed_at and job.claimed_at > ahead:
            return WARNING, f"clock skew: {job.name} was claimed at {job.claimed_at.isoformat()}, in the future"
    return OK, ""


def _job_verdict(job: JobHealth) -> tuple[int, str]:
    if job.status == "overdue":
        return CRITICAL, f"{job.name} is overdue (next run {job.next_run.isoformat()})"
    if job.status in ("stuck", "isolated"):
        return CRITICAL, f"{job.name}: {job.why}"
    if job.status == "missed":
        return WARNING, f"{job.name} {job.why}"
    if job.status == "failing":
        code = CRITICAL if job.error_count >= conf.get("CRONTABBER_CRITICAL_ERRORS") else WARNING
        return code, f"{job.name} failed {job.error_count} time(s) in a row: {job.last_error}"
    return OK, ""


def _late_verdict(job: JobHealth) -> tuple[int, str]:
    """Its latest on-time slot started later than CRONTABBER_LATE_START_SECONDS after it."""
    limit = conf.get("CRONTABBER_LATE_START_SECONDS")
    if job.start_lag is None or job.start_lag <= limit:
        return OK, ""
    return WARNING, f"{job.name}: its latest slot started {took(job.start_lag)} late (more than {limit:g} s)"
