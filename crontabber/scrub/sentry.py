"""Sentry's events scrubbed: every string of an event through the finders (a frame's
local variables are sent as their repr, quotes escaped: the finders read those too), and
sentry_sdk's EventScrubber with a denylist that also catches any key naming a secret.
crontabber's own events get both whatever the project's sentry_sdk.init says, and lose
the local variables of crontabber's own frames, which hold the attempt's raw text."""

from __future__ import annotations

from .finders import names_a_secret
from .texts import text


def _walk(value):
    """Every string in a JSON-like structure, scrubbed (keys are left as they are)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {key: _walk(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item) for item in value]
    return value


def sentry_before_send(event, hint):
    """sentry_sdk.init(before_send=...): every string of the event (messages, exception
    values, breadcrumbs, contexts, local variables) scrubbed."""
    return _walk(event)


def sentry_event_scrubber():
    """sentry_sdk.init(event_scrubber=...): sentry_sdk's EventScrubber with its default
    denylist, whose keys (request data, extra, breadcrumb data, local variables) are also
    scrubbed when their name names a secret: ``db_password``, ``github_token``."""
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
    from sentry_sdk.utils import AnnotatedValue

    class Scrubber(EventScrubber):
        def scrub_dict(self, d):
            if isinstance(d, dict):
                for key in d:
                    if isinstance(key, str) and names_a_secret(key):
                        d[key] = AnnotatedValue.substituted_because_contains_sensitive_data()
            super().scrub_dict(d)

    return Scrubber(denylist=[*DEFAULT_DENYLIST, "database_url", "sentry_dsn", "secret_key"], recursive=True)


def sentry_event_processor(event, hint):
    """For crontabber's own events, whatever the project's sentry_sdk.init says."""
    from sentry_sdk.utils import iter_event_frames

    for frame in iter_event_frames(event):
        if str(frame.get("module", "")).startswith("crontabber."):
            frame.pop("vars", None)
    sentry_event_scrubber().scrub_event(event)
    return sentry_before_send(event, hint)
