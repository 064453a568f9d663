"""Scrubbing a text, an attempt, a stream of output lines.

What the finders (finders.py) take for a secret, and what matches a pattern of
``CRONTABBER_SCRUB_PATTERNS`` (or only its group named ``secret``), becomes ``[scrubbed]``;
``CRONTABBER_SCRUB_DEFAULTS = False`` leaves only those patterns. Every span is found on
the text as it came, then all are replaced at once, so one finder never hides a secret
from another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .. import conf
from ..outcomes import Attempt
from . import finders

REPLACEMENT = "[scrubbed]"
TEXTS = ("output", "error_type", "error_value", "traceback")  # what an attempt says, stored and sent
_compiled: tuple[tuple, list[re.Pattern]] = ((), [])


def patterns() -> list[re.Pattern]:
    """The project's own patterns (CRONTABBER_SCRUB_PATTERNS), compiled once per change."""
    global _compiled
    extra = conf.get("CRONTABBER_SCRUB_PATTERNS")
    extra = [extra] if isinstance(extra, str) else list(extra)
    if tuple(extra) != _compiled[0]:
        compiled = []
        for pattern in extra:
            try:
                compiled.append(re.compile(pattern))
            except (re.error, TypeError) as error:
                raise ImproperlyConfigured(f"CRONTABBER_SCRUB_PATTERNS: bad pattern {pattern!r}: {error}") from None
        _compiled = (tuple(extra), compiled)
    return _compiled[1]


@checks.register("crontabber")
def check_patterns(app_configs=None, **kwargs):
    try:
        patterns()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), obj="CRONTABBER_SCRUB_PATTERNS", id="crontabber.E009")]
    return []


def spans(value: str) -> list[tuple[int, int]]:
    """Every span of ``value`` that holds a secret, merged, in order."""
    found = finders.spans(value) if conf.get("CRONTABBER_SCRUB_DEFAULTS") else []
    for pattern in patterns():
        for match in pattern.finditer(value):
            secret = "secret" in pattern.groupindex and match.group("secret") is not None
            found.append(match.span("secret") if secret else match.span())
    return _merged(found)


def _merged(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(span for span in found if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def masked(value: str, secret_spans: list[tuple[int, int]]) -> str:
    """``value`` with each of its (merged) ``secret_spans`` replaced."""
    pieces, at = [], 0
    for start, end in secret_spans:
        pieces += [value[at:start], REPLACEMENT]
        at = end
    return "".join(pieces) + value[at:]


def text(value: str) -> str:
    """``value`` with every secret found replaced."""
    return masked(value, spans(value)) if value else value


def attempt(result: Attempt) -> Attempt:
    """The attempt with every text it carries fit to leave it: no secret, and no NUL
    character (PostgreSQL refuses them)."""
    changes = {}
    for name in TEXTS:
        value = getattr(result, name)
        clean = text(value).replace("\x00", "\ufffd") if value else value
        if clean != value:
            changes[name] = clean
    return replace(result, **changes) if changes else result


STREAM_OVERLAP = 2 * finders.LONGEST_VALUE  # what a long line's piece carries into the next


@dataclass
class Lines:
    """A stream of output scrubbed line by line, as it is printed: the lines of a PEM
    private key after its BEGIN line are scrubbed whole; a line too long to hold is scrubbed
    in pieces that overlap, so a key and its value are always seen together."""

    in_private_key: bool = False
    _carried: list[tuple[int, int]] = field(default_factory=list)  # secrets already found in the carry

    def line(self, value: str) -> str:
        """A whole line (the end of a long one too), scrubbed."""
        if self.in_private_key:
            self.in_private_key = not finders.PEM_END.search(value)
            return REPLACEMENT
        found = spans(value) + self._carried
        self._carried = []
        begins = list(finders.PEM_BEGIN.finditer(value))
        self.in_private_key = bool(begins) and not finders.PEM_END.search(value, begins[-1].end())
        return masked(value, _merged(found))

    def piece(self, value: str) -> tuple[str, str]:
        """A long line's text so far: (the part to emit now, scrubbed; the rest, to be
        continued by the next piece). The rest is the last STREAM_OVERLAP characters, or
        more where a secret crosses into them."""
        found = _merged(spans(value) + self._carried)
        cut = max(len(value) - STREAM_OVERLAP, 0)
        for start, end in found:
            if start < cut < end:
                cut = start
        self._carried = [(max(start, cut) - cut, end - cut) for start, end in found if end > cut]
        return masked(value[:cut], [(start, min(end, cut)) for start, end in found if start < cut]), value[cut:]
