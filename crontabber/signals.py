"""Signals the runner sends around each attempt, for notifications (e-mail, Sentry).

Receivers run in the runner's process; an exception in one is logged and does not stop
the runner (they are sent with send_robust)."""

import logging

from django.dispatch import Signal

from .models import Job

logger = logging.getLogger("crontabber")

# kwargs: spec (JobSpec), job (Job), log (Log, outcome "running")
attempt_started = Signal(use_caching=True)  # receivers looked up once per sender, not per attempt
# kwargs: spec, job (its new state), log (finished), attempt (attempt.Attempt),
# previous_error_count (consecutive errors before this attempt)
attempt_finished = Signal(use_caching=True)


def send(signal: Signal, **kwargs) -> None:
    """Send to every receiver; one that raises is logged and the others still run."""
    try:
        for receiver, error in signal.send_robust(sender=Job, **kwargs):
            if isinstance(error, Exception):
                logger.error("%s: %s failed: %r", kwargs["spec"].name, getattr(receiver, "__name__", receiver), error)
    except SystemExit as exit_:  # a receiver that calls sys.exit() does not stop the runner
        logger.error("%s: a receiver of %s called sys.exit(%r)", kwargs["spec"].name, signal, exit_.code)
