"""Keeping secrets out of what crontabber stores and sends: each line of a job's output
(before it is logged, so before Sentry's breadcrumbs, and before it is kept as the tail),
and an attempt's error and traceback (before the Log row, ``last_error``, the mail and the
Sentry event). Sentry events also go through :func:`sentry_event_scrubber` and
:func:`sentry_before_send` (see docs/security.md).

A pattern is a regular expression; what it matches is replaced by ``[scrubbed]``, or only
its group named ``secret`` when it has one (``password=[scrubbed]`` keeps the key).
``CRONTABBER_SCRUB_PATTERNS`` adds patterns to the built-in ones; with
``CRONTABBER_SCRUB_DEFAULTS = False`` only those are used.
"""

from __future__ import annotations

import re
from dataclasses import replace

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf
from .outcomes import Attempt

REPLACEMENT = "[scrubbed]"
# Names of settings, environment variables, keys and locals that hold secrets.
SECRET_WORDS = r"password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?"
DEFAULT_PATTERNS = [
    # Authorization: Bearer xyz / Proxy-Authorization: Basic xyz (the whole value).
    r"(?i)\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*(?P<secret>[^\r\n\"']+)",
    r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    # password=x, DB_PASSWORD: x, "api_key": "x", aws_secret_access_key = x, --token=x
    # (bounded repeats: a long line costs linear time, never quadratic)
    rf"(?i)(?:{SECRET_WORDS})[\w.-]{{0,40}}[\"']?\s{{0,3}}[:=]\s{{0,3}}[\"']?(?P<secret>[^\s\"',;&]+)",
    # --password x (a command line)
    rf"(?i)--[\w-]{{0,40}}?(?:{SECRET_WORDS})[\w-]{{0,40}} +(?P<secret>[^\s-]\S*)",
    # The user and password of a URL: postgres://app:pw@db/site, https://token@host/
    r"(?i)\b[a-z][a-z0-9+.-]*://(?P<secret>[^\s/?#@]+(?:@[^\s/?#@]+)*)@",
    # AWS access key ids.
    r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
]

_compiled: tuple[tuple, list[re.Pattern]] = ((), [])


def patterns() -> list[re.Pattern]:
    """The compiled patterns of the current settings (compiled once per change)."""
    global _compiled
    extra = conf.get("CRONTABBER_SCRUB_PATTERNS")
    defaults = conf.get("CRONTABBER_SCRUB_DEFAULTS")
    if isinstance(extra, str):
        extra = [extra]
    key = (bool(defaults), tuple(extra))
    if key != _compiled[0]:
        compiled = []
        for text in (DEFAULT_PATTERNS if defaults else []) + list(extra):
            try:
                compiled.append(re.compile(text))
            except (re.error, TypeError) as error:
                raise ImproperlyConfigured(f"CRONTABBER_SCRUB_PATTERNS: bad pattern {text!r}: {error}") from None
        _compiled = (key, compiled)
    return _compiled[1]


@checks.register("crontabber")
def check_patterns(app_configs=None, **kwargs):
    try:
        patterns()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), obj="CRONTABBER_SCRUB_PATTERNS", id="crontabber.E009")]
    return []


def _replace(match: re.Match) -> str:
    if "secret" not in match.re.groupindex or match.group("secret") is None:
        return REPLACEMENT
    start, end = match.span("secret")
    whole = match.group(0)
    offset = match.start()
    return whole[: start - offset] + REPLACEMENT + whole[end - offset :]


def text(value: str) -> str:
    """``value`` with every secret the patterns find replaced."""
    if not value:
        return value
    for pattern in patterns():
        value = pattern.sub(_replace, value)
    return value


TEXTS = ("output", "error_type", "error_value", "traceback")  # what an attempt says, stored and sent


def attempt(result: Attempt) -> Attempt:
    """The attempt with every text it carries fit to leave it: no secret, and no NUL
    character (PostgreSQL refuses them). The one place an attempt is scrubbed, before its
    Log row, ``last_error``, a mail or a Sentry event see it."""
    changes = {}
    for name in TEXTS:
        value = getattr(result, name)
        clean = text(value).replace("\x00", "\ufffd") if value else value
        if clean != value:
            changes[name] = clean
    return replace(result, **changes) if changes else result


# --- Sentry ------------------------------------------------------------------------------


def _walk(value):
    """Every string in a JSON-like structure, scrubbed (keys are left as they are)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {key: _walk(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item) for item in value]
    return value


def sentry_before_send(event, hint):
    """sentry_sdk.init(before_send=...): every string of the event (messages, exception
    values, breadcrumbs, contexts, local variables) through the patterns."""
    return _walk(event)


def sentry_event_scrubber():
    """sentry_sdk.init(event_scrubber=...): sentry_sdk's EventScrubber with its default
    denylist, whose keys (request data, extra, breadcrumb data, local variables) are also
    scrubbed when their name contains a secret word: ``db_password``, ``github_token``."""
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
    from sentry_sdk.utils import AnnotatedValue

    secret_name = re.compile(rf"(?i)(?:{SECRET_WORDS}|dsn|auth)")

    class Scrubber(EventScrubber):
        def scrub_dict(self, d):
            if isinstance(d, dict):
                for key in d:
                    if isinstance(key, str) and secret_name.search(key) and not key.lower().startswith("author"):
                        d[key] = AnnotatedValue.substituted_because_contains_sensitive_data()
            super().scrub_dict(d)

    return Scrubber(denylist=[*DEFAULT_DENYLIST, "database_url", "sentry_dsn", "secret_key"], recursive=True)


def sentry_event_processor(event, hint):
    """For crontabber's own events, whatever the project's sentry_sdk.init says."""
    sentry_event_scrubber().scrub_event(event)
    return sentry_before_send(event, hint)
