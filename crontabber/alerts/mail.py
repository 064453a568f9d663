"""E-mail (to CRONTABBER_NOTIFY_EMAILS, default the ADMINS): the first failure of a series,
the recovery that ends it (with how many attempts failed), and, for a job with
``notify_on_success``, a success that printed something. docs/alerts.md has the rules."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from .. import conf, logger, scrub
from ..models import Log
from ..outcomes import Outcome
from ..schedules import format_instant
from ..words import plural

MAIL_TIMEOUT_SECONDS = 30  # when EMAIL_TIMEOUT is not set: a hung SMTP server must not hang the runner


def _setting(name, default):
    return getattr(settings, name, default)


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
    if not conf.get("CRONTABBER_NOTIFY_OUTPUT"):
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
        return _first_failure(spec, job, log, attempt)
    if attempt.handled and previous_error_count:
        return _recovery(spec, job, log, attempt, previous_error_count)
    if attempt.outcome == Outcome.SUCCESS and spec.notify_on_success and attempt.output.strip():
        return f"{spec.name} succeeded (slot {_short(log.slot)})", [], []
    return None  # later failures of a series were mailed when it began; its end will be too


def _first_failure(spec, job, log, attempt) -> tuple[str, list[str], list[str]]:
    verb = "timed out" if attempt.outcome == Outcome.TIMEOUT else "failed"
    return (
        f"{spec.name} {verb} (slot {_short(log.slot)})",
        [
            f"Error:    {attempt.error_type}: {attempt.error_value}",
            f"Next try: {format_instant(job.next_run) if job.next_run else '-'}",
        ],
        ["Later failures of this job are not mailed; a mail follows when it succeeds again."],
    )


def _recovery(spec, job, log, attempt, failed: int) -> tuple[str, list[str], list[str]]:
    first, error = _failure_series(job, log, failed)
    what = "succeeded" if attempt.outcome == Outcome.SUCCESS else f"skipped ({attempt.error_value})"
    since = f" since {format_instant(first)}" if first else ""
    notes = [f"It {what} after {plural(failed, 'failed attempt')}{since}."]
    notes += [f"The last error was: {error}"] if error else []
    return f"{spec.name} recovered after {plural(failed, 'failed attempt')}", [], notes


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
