"""What one attempt to run a slot can come to: its outcome, and the record of one run."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, replace

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

    def storable(self) -> Attempt:
        """This attempt with text every database stores: PostgreSQL refuses NUL characters."""
        texts = {name: getattr(self, name) for name in ("output", "error_type", "error_value", "traceback")}
        changes = {name: text.replace("\x00", "\ufffd") for name, text in texts.items() if "\x00" in text}
        return replace(self, **changes) if changes else self

    @property
    def handled(self) -> bool:
        """The slot is done with: it never runs again."""
        return self.outcome in (Outcome.SUCCESS, Outcome.SKIPPED)

    @property
    def is_error(self) -> bool:
        """Counts as a failure of the job: backs off and alerts."""
        return self.outcome in (Outcome.FAILURE, Outcome.TIMEOUT)
