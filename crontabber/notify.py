"""Telling people about attempts: Sentry events, Sentry Crons check-ins, and e-mail.

Receivers of crontabber.signals, connected once by the app's ready(). They run in the
runner's process after each attempt (send_robust: an exception in one is logged, the
runner goes on), and each catches its own failures too.

Sentry (when the SDK is installed and initialised, e.g. by SENTRY_DSN in webapp):
  - each failed or timed-out attempt is captured once, tagged crontabber.job,
    crontabber.slot, crontabber.attempt and crontabber.outcome: the exception itself for
    an in-process failure, otherwise a message event with the output tail. The runner's
    own one-line record of the failure goes to the ``crontabber.failures`` logger, which
    Sentry's logging integration is told to ignore, so it does not become a second event;
  - with CRONTABBER_SENTRY_CRONS, each attempt is a Crons check-in (in_progress, then ok
    or error with its duration), the monitor created or updated from the registry entry.

E-mail (to CRONTABBER_NOTIFY_EMAILS, default the ADMINS): the first failure of a series,
the recovery that ends it (with how many attempts failed), and, for a job with
``notify_on_success``, a success that printed something. docs/alerts.md has the rules.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import sys
import uuid

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from . import conf, scrub, signals
from .attempt import Outcome
from .cron import CronSchedule
from .models import Log
from .schedule import CalendarSchedule, IntervalSchedule, Schedule, UnionSchedule, format_instant

logger = logging.getLogger("crontabber")
# The runner logs one line per failed attempt here; the attempt itself is captured below.
FAILURE_LOGGER = "crontabber.failures"
MONITOR_SLUG_MAX = 50
MAIL_TIMEOUT_SECONDS = 30  # when EMAIL_TIMEOUT is not set: a hung SMTP server must not hang the runner


def _setting(name, default):
    return getattr(settings, name, default)


# --- Sentry: events ----------------------------------------------------------------------


def _sdk():
    """The Sentry SDK if this process imported it (initialising it does), else None: the
    SDK is optional, and importing it costs a runner (and each child process) a fifth of
    a second for nothing when it is not used."""
    return sys.modules.get("sentry_sdk")


def sentry_active() -> bool:
    sdk = _sdk()
    return sdk is not None and sdk.get_client().is_active()


def _ignore_failure_logger() -> None:
    from sentry_sdk.integrations.logging import ignore_logger

    ignore_logger(FAILURE_LOGGER)  # a set: adding twice is harmless


def notify_output() -> bool:
    """CRONTABBER_NOTIFY_OUTPUT: False leaves a job's output and traceback out of mails and Sentry."""
    return bool(conf.get("CRONTABBER_NOTIFY_OUTPUT"))


def _without_output(event, hint):
    """An event without the attempt's output: its breadcrumbs (the output's log lines) and
    the locals of crontabber's own frames (which hold the captured output)."""
    from sentry_sdk.utils import iter_event_frames

    event.pop("breadcrumbs", None)
    for frame in iter_event_frames(event):
        if str(frame.get("module", "")).startswith("crontabber."):
            frame.pop("vars", None)
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
    sentry_sdk = _sdk()
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
                **({"output": attempt.output} if notify_output() else {}),
            },
        )
        # Whatever sentry_sdk.init says, crontabber's own events are scrubbed (docs/security.md).
        scope.add_event_processor(scrub.sentry_event_processor)
        if not notify_output():
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
    (effective) registry entry; None when its schedule has no Sentry equivalent."""
    schedule = monitor_schedule(spec.schedule)
    if schedule is None:
        return None
    source = spec.schedule.parts[0] if isinstance(spec.schedule, UnionSchedule) else spec.schedule
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


def sentry_attempt_started(sender, spec, job, log, **kwargs):
    if not sentry_active():
        return
    _ignore_failure_logger()  # before the runner may log the failure
    # Breadcrumbs of an event are the failed attempt's own log lines, not the tick's.
    _sdk().get_isolation_scope().clear_breadcrumbs()
    if crons_enabled(spec.name):
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
    from sentry_sdk.crons import capture_checkin

    # skipped: ok (the slot is handled); failure, timeout, interrupted: error.
    capture_checkin(
        monitor_slug=monitor_slug(spec.name),
        check_in_id=check_in_id,
        status="ok" if attempt.handled else "error",
        duration=attempt.duration,
        monitor_config=monitor_config(spec),
    )


# --- e-mail ------------------------------------------------------------------------------


def notify_emails() -> list[str]:
    emails = conf.get("CRONTABBER_NOTIFY_EMAILS")
    if emails is None:
        emails = [admin if isinstance(admin, str) else admin[1] for admin in _setting("ADMINS", [])]
    elif isinstance(emails, str):
        emails = emails.split(",")
    return [email.strip() for email in emails if email and email.strip()]


def _short(instant) -> str:
    return instant.strftime("%Y-%m-%d %H:%MZ") if instant else "-"


def _failure_series(job, log, count: int) -> tuple:
    """(when the first of the ``count`` failed attempts before ``log`` started, the last one's error)."""
    failed = Log.objects.filter(
        job_id=job.pk, outcome__in=(Outcome.FAILURE, Outcome.TIMEOUT), started_at__lte=log.started_at, id__lt=log.pk
    ).order_by("-started_at", "-id")
    last = failed.values_list("error_type", "error_value").first()
    first = failed.values_list("started_at", flat=True)[count - 1 : count]
    error = f"{last[0]}: {last[1]}".splitlines()[0] if last else ""
    return (first[0] if first else None), error


def compose(spec, job, log, attempt, previous_error_count: int) -> tuple[str, str] | None:
    """(subject, body) of the mail this attempt deserves, or None."""
    news = _news(spec, job, log, attempt, previous_error_count)
    if news is None:
        return None
    subject, lines, notes = news
    head = [
        f"Job:      {spec.name} ({spec.command_line})",
        f"Slot:     {format_instant(log.slot)}",
        f"Outcome:  {attempt.outcome} (attempt {log.attempt}, {attempt.duration:.2f} s, on {log.host} pid {log.pid})",
        *lines,
    ]
    body = "\n".join(head) + "\n\n" + "".join(f"{note}\n" for note in notes)
    if not notify_output():
        if attempt.output.strip() or attempt.traceback:
            body += "\nOutput and traceback are left out of mails (CRONTABBER_NOTIFY_OUTPUT): see the admin's Log.\n"
    else:
        if attempt.output.strip():
            body += f"\nOutput (the last {conf.get('CRONTABBER_OUTPUT_TAIL_CHARS')} characters at most):\n"
            body += f"{attempt.output}\n"
        if attempt.is_error and attempt.traceback and attempt.traceback.strip() != attempt.output.strip():
            body += f"\n{attempt.traceback}"
    prefix = _setting("EMAIL_SUBJECT_PREFIX", "[Django] ")
    # The attempt's text is scrubbed already; this also covers the job's cmd_args.
    return scrub.text(" ".join(f"{prefix}crontabber: {subject}".split())), scrub.text(body)


def _news(spec, job, log, attempt, previous_error_count: int) -> tuple[str, list[str], list[str]] | None:
    """(subject, lines for the head, notes) of what this attempt changed, or None: the
    first failure of a series, the recovery that ends it, a success that printed."""
    if attempt.is_error and not previous_error_count:
        verb = "timed out" if attempt.outcome == Outcome.TIMEOUT else "failed"
        return (
            f"{spec.name} {verb} (slot {_short(log.slot)})",
            [
                f"Error:    {attempt.error_type}: {attempt.error_value}",
                f"Next try: {format_instant(job.next_run) if job.next_run else '-'}",
            ],
            ["Later failures of this job are not mailed; a mail follows when it succeeds again."],
        )
    if attempt.handled and previous_error_count:
        first, error = _failure_series(job, log, previous_error_count)
        what = "succeeded" if attempt.outcome == Outcome.SUCCESS else f"skipped ({attempt.error_value})"
        since = f" since {format_instant(first)}" if first else ""
        notes = [f"It {what} after {previous_error_count} failed attempt(s){since}."]
        notes += [f"The last error was: {error}"] if error else []
        return f"{spec.name} recovered after {previous_error_count} failed attempt(s)", [], notes
    if attempt.outcome == Outcome.SUCCESS and spec.notify_on_success and attempt.output.strip():
        return f"{spec.name} succeeded (slot {_short(log.slot)})", [], []
    return None  # later failures of a series were mailed when it began; its end will be too


def mail_on_attempt(sender, spec, job, log, attempt, previous_error_count=0, **kwargs):
    recipients = notify_emails()
    if not recipients:
        return
    message = compose(spec, job, log, attempt, previous_error_count)
    if message is None:
        return
    subject, body = message
    try:
        connection = get_connection(timeout=_setting("EMAIL_TIMEOUT", None) or MAIL_TIMEOUT_SECONDS)
        EmailMessage(subject, body, settings.SERVER_EMAIL, recipients, connection=connection).send()
    except Exception:  # never the runner's problem: logged (and so seen by Sentry's logging integration)
        logger.exception("%s: could not mail %r to %s", spec.name, subject, ", ".join(recipients))


# --- wiring ------------------------------------------------------------------------------


def connect() -> None:
    """Connect the receivers (idempotent); called by CrontabberConfig.ready()."""
    signals.attempt_started.connect(sentry_attempt_started, dispatch_uid="crontabber.notify.sentry_started")
    signals.attempt_finished.connect(sentry_capture_failure, dispatch_uid="crontabber.notify.sentry_failure")
    signals.attempt_finished.connect(sentry_checkin_finished, dispatch_uid="crontabber.notify.sentry_checkin")
    signals.attempt_finished.connect(mail_on_attempt, dispatch_uid="crontabber.notify.mail")
    if _sdk() is not None:
        _ignore_failure_logger()
