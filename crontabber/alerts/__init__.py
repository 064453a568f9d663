"""Telling people about attempts: Sentry events and Crons check-ins (sentry.py) and e-mail
(mail.py), receivers of crontabber.signals connected once by the app's ready(). They run
in the runner's process after each attempt; one that raises is logged and the runner
goes on, and each catches its own failures too."""

from .. import signals
from .mail import mail_on_attempt
from .sentry import ignore_failure_logger, sdk, sentry_attempt_started, sentry_capture_failure, sentry_checkin_finished


def connect() -> None:
    """Connect the receivers (idempotent); called by CrontabberConfig.ready()."""
    signals.attempt_started.connect(sentry_attempt_started, dispatch_uid="crontabber.alerts.sentry_started")
    signals.attempt_finished.connect(sentry_capture_failure, dispatch_uid="crontabber.alerts.sentry_failure")
    signals.attempt_finished.connect(sentry_checkin_finished, dispatch_uid="crontabber.alerts.sentry_checkin")
    signals.attempt_finished.connect(mail_on_attempt, dispatch_uid="crontabber.alerts.mail")
    if sdk() is not None:
        ignore_failure_logger()
