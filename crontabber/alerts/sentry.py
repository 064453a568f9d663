"""Sentry, when the SDK is installed and initialised (e.g. by SENTRY_DSN in webapp):

- each failed or timed-out attempt is captured once, tagged crontabber.job,
  crontabber.slot, crontabber.attempt and crontabber.outcome: the exception itself for
  an in-process failure, otherwise a message event with the output tail. The runner's
  own one-line record of the failure goes to the ``crontabber.failures`` logger, which
  Sentry's logging integration is told to ignore, so it does not become a second event;
- with CRONTABBER_SENTRY_CRONS, each attempt is a Crons check-in (in_progress, then ok
  or error with its duration), the monitor created or updated from the registry entry.
  Sentry puts a check-in on the slot it expects at the time it arrives, so a catch-up
  slot (one run after a later slot already fell due) never checks in as on time: a
  backlog is one check-in, its newest slot's, or the error that stopped it
  (CRONTABBER_SENTRY_CATCH_UP_CHECKINS "one"), or only the newest slot's ("none").
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import uuid

from django.core import checks

from .. import conf, failure_logger, scrub
from ..models import Log
from ..schedules import (
    CalendarSchedule,
    CronSchedule,
    IntervalSchedule,
    Schedule,
    Switched,
    UnionSchedule,
    format_instant,
)

MONITOR_SLUG_MAX = 50


# --- Sentry: events ----------------------------------------------------------------------


def sdk():
    """The Sentry SDK if this process imported it (initialising it does), else None: the
    SDK is optional, and importing it costs a runner (and each child process) a fifth of
    a second for nothing when it is not used."""
    return sys.modules.get("sentry_sdk")


def sentry_active() -> bool:
    found = sdk()
    return found is not None and found.get_client().is_active()


def ignore_failure_logger() -> None:
    from sentry_sdk.integrations.logging import ignore_logger

    ignore_logger(failure_logger.name)  # a set: adding twice is harmless


def _without_output(event, hint):
    """An event without the attempt's output: its breadcrumbs (the output's log lines);
    crontabber's own frames lose their locals anyway (scrub.sentry_event_processor)."""
    event.pop("breadcrumbs", None)
    return event


def attempt_tags(spec, log: Log) -> dict[str, str]:
    return {
        "crontabber.job": spec.name,
        "crontabber.slot": format_instant(log.slot),
        "crontabber.attempt": str(log.attempt),
        "crontabber.outcome": log.outcome,
    }


def sentry_capture_failure(sender, spec, job, log, attempt, previous_error_count=0, **kwargs):
    """A failed or timed-out attempt, captured once, with its tags and output tail."""
    if not attempt.is_error or not sentry_active():
        return
    sentry_sdk = sdk()
    with sentry_sdk.new_scope() as scope:
        for key, value in attempt_tags(spec, log).items():
            scope.set_tag(key, value)
        scope.set_context(
            "crontabber",
            {
                "job": spec.name,
                "command": spec.command_line,
                "slot": format_instant(log.slot),
                "attempt": log.attempt,
                "outcome": attempt.outcome,
                "duration": round(attempt.duration, 3),
                "error": f"{attempt.error_type}: {attempt.error_value}",
                "consecutive_errors": job.error_count,
                "next_run": format_instant(job.next_run) if job.next_run else None,
                "host": log.host,
                "pid": log.pid,
                "log_id": log.pk,
                **({"output": attempt.output} if conf.get("CRONTABBER_NOTIFY_OUTPUT") else {}),
            },
        )
        # Whatever sentry_sdk.init says, crontabber's own events are scrubbed (docs/security.md).
        scope.add_event_processor(scrub.sentry_event_processor)
        if not conf.get("CRONTABBER_NOTIFY_OUTPUT"):
            scope.add_event_processor(_without_output)
        scope.set_transaction_name(f"crontabber {spec.name}")
        if attempt.exception is not None:
            sentry_sdk.capture_exception(attempt.exception)
        else:
            # No exception in this process (a child process, a timeout): one issue per job and kind.
            scope.fingerprint = ["crontabber", spec.name, attempt.outcome, attempt.error_type]
            sentry_sdk.capture_message(
                f"{spec.name}: {attempt.outcome}: {attempt.error_type}: {attempt.error_value}", level="error"
            )


# --- Sentry: Crons check-ins ---------------------------------------------------------------


def monitor_slug(name: str) -> str:
    """The Crons monitor slug of a job: its name in lower case, runs of other characters
    than a-z 0-9 _ - as one '-'; a name too long for a slug is cut and keeps a hash."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "job"
    if len(slug) > MONITOR_SLUG_MAX:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        slug = f"{slug[: MONITOR_SLUG_MAX - 9].rstrip('-')}-{digest}"
    return slug


def _crontab(value: str) -> dict:
    return {"type": "crontab", "value": value}


def _interval(value: int, unit: str) -> dict:
    return {"type": "interval", "value": value, "unit": unit}


def monitor_schedule(schedule: Schedule) -> dict | None:
    """The Sentry monitor schedule of a crontabber schedule, or None when none fits."""
    if isinstance(schedule, CronSchedule):
        return _crontab(schedule.crontab())
    if isinstance(schedule, CalendarSchedule):
        if schedule.days == 1 and schedule.at is not None:
            return _crontab(f"{schedule.at.minute} {schedule.at.hour} * * *")
        return _interval(schedule.days, "day")  # every n days, or at the first run's wall time
    if isinstance(schedule, IntervalSchedule):
        minutes = max(int(schedule.step.total_seconds() // 60), 1)
        return _interval(minutes // 60, "hour") if minutes % 60 == 0 else _interval(minutes, "minute")
    if isinstance(schedule, UnionSchedule):  # an operator's override 'HH:MM,HH:MM'
        return _daily_times_monitor(schedule.parts)
    return None


def _daily_times_monitor(parts) -> dict | None:
    """Daily wall times that share their minute are one crontab; other unions have none."""
    if not all(isinstance(p, CalendarSchedule) and p.days == 1 and p.at is not None for p in parts):
        return None
    minutes = {p.at.minute for p in parts}
    if len(minutes) != 1:
        return None
    hours = ",".join(str(h) for h in sorted({p.at.hour for p in parts}))
    return _crontab(f"{minutes.pop()} {hours} * * *")


def checkin_margin() -> int:
    """Minutes Sentry waits past a slot for its check-in: a slot runs at the first tick
    after it, so by default twice the loop's interval."""
    return max(int(conf.get("CRONTABBER_SENTRY_CHECKIN_MARGIN_MINUTES")), 1)


def monitor_config(spec) -> dict | None:
    """The monitor Sentry creates or updates from a check-in, derived from the job's
    (effective) registry entry, its schedule as in force now; None when that has no Sentry
    equivalent."""
    now = spec.schedule.after if isinstance(spec.schedule, Switched) else spec.schedule
    schedule = monitor_schedule(now)
    if schedule is None:
        return None
    source = now.parts[0] if isinstance(now, UnionSchedule) else now
    zone = getattr(source, "zone", None)  # an interval of real time has none: the registry's
    config = {
        "schedule": schedule,
        "timezone": zone.key if zone else spec.zone,
        "checkin_margin": checkin_margin(),
    }
    if spec.timeout:
        config["max_runtime"] = math.ceil(spec.timeout / 60)
    return config


# Log id -> check-in id, from an attempt's start to its end (both in this process).
_open_checkins: dict[int, str] = {}


def crons_enabled(name: str) -> bool:
    """CRONTABBER_SENTRY_CRONS: True for every job, or a list of job names."""
    wanted = conf.get("CRONTABBER_SENTRY_CRONS")
    on = wanted is True or (isinstance(wanted, (list, tuple, set, frozenset)) and name in wanted)
    return on and sentry_active()


def catching_up(spec, job, log) -> bool:
    """The slot is run after a later one of its schedule already fell due: a catch-up."""
    later = spec.schedule.next_after(log.slot, job.anchor(log.started_at))
    return later is not None and later <= log.started_at


CATCH_UP_CHOICES = ("one", "none")


@checks.register("crontabber")
def check_catch_up_setting(app_configs=None, **kwargs):
    value = conf.get("CRONTABBER_SENTRY_CATCH_UP_CHECKINS")
    if value in CATCH_UP_CHOICES:
        return []
    why = f"must be 'one' or 'none', not {value!r}"
    return [checks.Error(why, obj="CRONTABBER_SENTRY_CATCH_UP_CHECKINS", id="crontabber.E024")]


def sentry_attempt_started(sender, spec, job, log, **kwargs):
    if not sentry_active():
        return
    ignore_failure_logger()  # before the runner may log the failure
    # Breadcrumbs of an event are the failed attempt's own log lines, not the tick's.
    sdk().get_isolation_scope().clear_breadcrumbs()
    if crons_enabled(spec.name) and not catching_up(spec, job, log):
        from sentry_sdk.crons import capture_checkin

        check_in_id = capture_checkin(
            monitor_slug=monitor_slug(spec.name),
            check_in_id=_queued_checkin(spec, log),
            status="in_progress",
            monitor_config=monitor_config(spec),
        )
        if check_in_id:
            _open_checkins[log.pk] = check_in_id


def _queued_checkin(spec, log) -> str | None:
    """An attempt on a task backend ends in another tick, maybe another process: its
    check-in id is derived from its Log row, so that its end closes the same check-in."""
    return uuid.uuid5(uuid.NAMESPACE_OID, f"crontabber.log.{log.pk}").hex if spec.backend else None


def sentry_checkin_finished(sender, spec, job, log, attempt, **kwargs):
    check_in_id = _open_checkins.pop(log.pk, None) or _queued_checkin(spec, log)
    if not crons_enabled(spec.name):
        return
    late = catching_up(spec, job, log)
    if late and (attempt.handled or conf.get("CRONTABBER_SENTRY_CATCH_UP_CHECKINS") == "none"):
        return  # the backlog's newest slot checks in for it
    from sentry_sdk.crons import capture_checkin

    # skipped: ok (the slot is handled); failure, timeout, interrupted: error (a catch-up's
    # on its own, no in_progress before it: the backlog stops there).
    capture_checkin(
        monitor_slug=monitor_slug(spec.name),
        check_in_id=None if late else check_in_id,
        status="ok" if attempt.handled else "error",
        duration=attempt.duration,
        monitor_config=monitor_config(spec),
    )
