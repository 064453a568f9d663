"""What each job did and will do, as `cronlist` shows it: an entry per job (its JSON),
the table's rows, and the health verdict as Nagios reads it."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import Job, ScheduleChange
from ..registry import JobSpec, effective_spec
from ..schedules import truncate_to_minute
from ..schedules.clocks import coming
from ..words import took
from . import health

NOT_IN_REGISTRY = "not in registry"
VERDICTS = ("OK", "WARNING", "CRITICAL")  # health.OK, WARNING, CRITICAL: Nagios exit statuses
HEADER = ("NAME", "SCHEDULE", "LAST RUN", "LAST SUCCESS", "LAST SKIPPED", "NEXT RUN", "LAG", "ERRORS", "RUNNING")
STATE_TIMES = ("next_run", "next_slot", "last_run", "last_success", "last_skipped", "first_run")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def short(value: str | None) -> str:
    """An ISO 8601 time of an entry, to the minute in UTC."""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%MZ") if value else "-"


def entries(registry: dict[str, JobSpec], rows: dict[str, Job], names=()) -> list[dict]:
    """The named jobs' entries, or every job's: the registry's, then those with state that
    left it (removed or renamed), listed rather than hidden."""
    known = [*registry, *(name for name in rows if name not in registry)]
    queued = health.queued_of(registry.values(), rows.values())
    return [entry(registry.get(name), rows.get(name), name, queued.get(name)) for name in names or known]


def entry(spec: JobSpec | None, job: Job | None, name: str, queued=None) -> dict:
    spec = effective_spec(spec, job) if spec is not None else None
    return {
        "name": name,
        "in_registry": spec is not None,
        "cmd": spec.command_line if spec else None,
        "schedule": spec.schedule.description if spec else NOT_IN_REGISTRY,
        "enabled": spec.enabled if spec else False,
        "backfill": spec.backfill if spec else False,
        **state(job),
        "queued": _queued(queued),
    }


def coming_slots(spec: JobSpec, job: Job | None, now: datetime, count: int) -> dict:
    """The job's next ``count`` slots (from its next slot, or now if that is past), in its
    zone and UTC, each with what a clock change does to it (cronlist --next)."""
    spec = effective_spec(spec, job)
    anchor = job.anchor(now) if job else truncate_to_minute(now)
    pending = job.next_slot if job and job.next_slot and job.next_slot > now else None
    after = pending - timedelta(microseconds=1) if pending else now
    schedule = ScheduleChange.objects.in_force(job, spec, after).schedule if job else spec.schedule
    slots = coming(schedule, after, anchor, count)
    return {
        "name": spec.name,
        "schedule": spec.schedule.description,
        "slots": [{"slot": iso(item.slot), "local": item.local(), "clock_change": item.note or None} for item in slots],
    }


def state(job: Job | None) -> dict:
    """The job's row as an entry shows it (None for a job that never ran)."""
    times = {field: iso(getattr(job, field, None)) for field in STATE_TIMES}
    claimed = job is not None and bool(job.claimed_by)
    return {
        **times,
        "start_lag": job.start_lag if job else None,  # seconds: its latest on-time slot's start lag
        "error_count": job.error_count if job else 0,
        "last_error": (job.last_error or None) if job else None,
        "ongoing": iso(job.claimed_at) if claimed else None,
        "claimed_by": job.claimed_by if claimed else None,
    }


def _queued(log) -> dict | None:
    """Its attempt on a task backend whose result is not read yet (docs/tasks.md)."""
    if log is None:
        return None
    return {"slot": iso(log.slot), "backend": log.backend, "result_id": log.result_id, "since": iso(log.started_at)}


def statuses(entries: list[dict], registry: dict[str, JobSpec], rows: dict[str, Job], now: datetime) -> list[str]:
    """Each entry's health status (its colour in the table); "gone": not in the registry."""
    return [
        health.job_status(effective_spec(registry[e["name"]], rows.get(e["name"])), rows.get(e["name"]), now)
        if e["in_registry"]
        else "gone"
        for e in entries
    ]


def row(entry: dict) -> tuple[str, ...]:
    """An entry as a line of the table, a cell per HEADER column."""
    times = [short(entry[field]) for field in ("last_run", "last_success", "last_skipped")]
    lag = "-" if entry["start_lag"] is None else took(entry["start_lag"])
    return (entry["name"], entry["schedule"], *times, _next_run(entry), lag, str(entry["error_count"]), _running(entry))


def _next_run(entry: dict) -> str:
    if not entry["in_registry"]:
        return "never (not in the registry)"
    if not entry["enabled"]:
        return "disabled"
    return "next tick (new)" if entry["first_run"] is None else short(entry["next_run"])


def _running(entry: dict) -> str:
    if entry["ongoing"]:
        return f"since {short(entry['ongoing'])} by {entry['claimed_by']}"
    queued = entry["queued"]
    return f"queued on {queued['backend']} ({queued['result_id']}) since {short(queued['since'])}" if queued else "-"


def nagios_summary(report: health.Report) -> str:
    if report.problems:
        return "; ".join(health.first_line(problem) for problem in report.problems)
    return f"{len(report.jobs)} job{'' if len(report.jobs) == 1 else 's'}"


def nagios_details(report: health.Report) -> list[str]:
    details = [f"last tick: {report.last_tick.isoformat() if report.last_tick else 'never'}"]
    for job in report.jobs:
        line = f"{job.name}: {job.status}"
        if job.error_count:
            line += f", {job.error_count} error(s) in a row: {health.first_line(job.last_error)}"
        details.append(line)
    return details
