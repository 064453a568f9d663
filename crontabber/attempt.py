"""What one attempt to run a slot can come to: its outcome, and the record of one run."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Outcome(models.TextChoices):
    # Labels as the values: what the admin and the database show is one word.
    RUNNING = "running", "running"  # not terminal: the attempt has started and not yet ended
    SUCCESS = "success", "success"
    FAILURE = "failure", "failure"
    TIMEOUT = "timeout", "timeout"
    SKIPPED = "skipped", "skipped"  # the command raised SkipRun: nothing to do, not an error
    INTERRUPTED = "interrupted", "interrupted"  # stopped from outside or abandoned: the slot runs again


@dataclass
class Attempt:
    """One run of a command, as the execution module reports it."""

    outcome: Outcome
    duration: float = 0.0
    output: str = ""
    error_type: str = ""
    error_value: str = ""
    traceback: str = ""
    exception: BaseException | None = None  # in-process failures only; not stored

    @property
    def handled(self) -> bool:
        """The slot is done with: it never runs again."""
        return self.outcome in (Outcome.SUCCESS, Outcome.SKIPPED)

    @property
    def is_error(self) -> bool:
        """Counts as a failure of the job: backs off and alerts."""
        return self.outcome in (Outcome.FAILURE, Outcome.TIMEOUT)
