"""Keeping secrets out of what leaves an attempt: every text it carries (output, a task's
return value, error, traceback) is scrubbed once, by ``attempt``, before its Log row,
``last_error``, a mail, a Sentry event, the health report or a log line see it; each line
of its output also as it is printed (``Lines``: before it is logged, and so before
Sentry's breadcrumbs). Where the secrets are is finders.py's; texts.py scrubs; Sentry's
events get their own pass (sentry.py). docs/security.md says what is found."""

from .sentry import sentry_before_send, sentry_event_processor, sentry_event_scrubber
from .texts import REPLACEMENT, Lines, attempt, check_patterns, patterns, spans, text

__all__ = [
    "REPLACEMENT",
    "Lines",
    "attempt",
    "check_patterns",
    "patterns",
    "sentry_before_send",
    "sentry_event_processor",
    "sentry_event_scrubber",
    "spans",
    "text",
]
