"""What one attempt to run a slot comes to: its outcome (one enum), why it was
interrupted, and the record of one run (Attempt)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from django.db import models


class Outcome(models.TextChoices):
    # Labels as the values: what the admin and the database show is one word.
    RUNNING = "running", "running"  # not terminal: the attempt has started and not yet ended
    QUEUED = "queued", "queued"  # not terminal: sent to a task backend, its result not read yet
    SUCCESS = "success", "success"
    FAILURE = "failure", "failure"
    TIMEOUT = "timeout", "timeout"
    SKIPPED = "skipped", "skipped"  # the command raised SkipRun: nothing to do, not an error
    INTERRUPTED = "interrupted", "interrupted"  # stopped from outside or abandoned: the slot runs again
    # Not attempts: a row covering slots that did not run (Log.since to Log.slot, Log.covers of them).
    MISSED = "missed", "missed"  # past the job's starting_deadline: never run; the schedule moved on
    PAUSED = "paused", "paused"  # fell due while the job was disabled or held


HANDLED = frozenset({Outcome.SUCCESS, Outcome.SKIPPED})  # the slot is done with: it never runs again
ERRORS = frozenset({Outcome.FAILURE, Outcome.TIMEOUT})  # a failure of the job: it backs off and alerts
UNFINISHED = (Outcome.RUNNING, Outcome.QUEUED)
SPANS = frozenset({Outcome.MISSED, Outcome.PAUSED})  # rows of slots that did not run, not of attempts


class Interruption(models.TextChoices):
    """Why an attempt ended ``interrupted`` (its error type); its slot runs again."""

    STOPPED = "Interrupted", "the runner was stopped, or failed before recording the attempt"
    ABANDONED = "Abandoned", "its runner stopped without finishing it: another took the expired claim over"
    NOT_RECORDED = "NotRecorded", "it ran, but its outcome could not be recorded"
    LOST = "Lost", "no result came back from the task backend"
    UNLOCKED = "Unlocked", "an operator released its runner's claim"
    GIVEN_UP = "GivenUp", "an operator gave up waiting for its result from a task backend"


@dataclass
class Attempt:
    """One run of a slot, as an executor reports it."""

    outcome: Outcome
    duration: float = 0.0
    output: str = ""
    error_type: str = ""
    error_value: str = ""
    traceback: str = ""
    exception: BaseException | None = None  # in-process failures only; not stored

    @classmethod
    def failed(cls, error: BaseException, value: str | None = None) -> Attempt:
        """A failure with the exception's type, message (or ``value``) and traceback."""
        return cls(
            Outcome.FAILURE,
            error_type=type(error).__name__,
            error_value=str(error) if value is None else value,
            traceback="".join(traceback.format_exception(error)),
            exception=error,
        )

    @classmethod
    def interrupted(cls, why: Interruption, value: str) -> Attempt:
        return cls(Outcome.INTERRUPTED, error_type=why.value, error_value=value)

    @property
    def handled(self) -> bool:
        return self.outcome in HANDLED

    @property
    def is_error(self) -> bool:
        """A failure of the job: it backs off and alerts. One its runner died under is one."""
        return self.outcome in ERRORS or (
            self.outcome == Outcome.INTERRUPTED and self.error_type == Interruption.ABANDONED
        )
