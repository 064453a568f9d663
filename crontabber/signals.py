"""The signals sent around each attempt, for notifications (crontabber.alerts: e-mail,
Sentry) and a project's own receivers. Receivers run in the runner's process, after
the attempt's row is written; one that raises is logged and the runner goes on."""

from django.dispatch import Signal

# kwargs: spec (JobSpec), job (Job), log (Log, outcome "running")
attempt_started = Signal(use_caching=True)  # receivers looked up once per sender, not per attempt
# kwargs: spec, job (its new state), log (finished), attempt (outcomes.Attempt),
# previous_error_count (consecutive errors before this attempt)
attempt_finished = Signal(use_caching=True)
