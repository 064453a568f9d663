"""Signals the runner sends around each attempt, for notifications (e-mail, Sentry).

Receivers run in the runner's process; an exception in one is logged and does not stop
the runner (they are sent with send_robust)."""

from django.dispatch import Signal

# kwargs: spec (JobSpec), job (Job), log (Log, outcome "running")
attempt_started = Signal()
# kwargs: spec, job (its new state), log (finished), attempt (execution.Attempt),
# previous_error_count (consecutive errors before this attempt)
attempt_finished = Signal()
