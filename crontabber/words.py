"""How crontabber says things, the same way everywhere: a message's first line, counts,
durations, and the known name a typo may be of. Pure: no Django."""

from __future__ import annotations

import difflib
from datetime import timedelta


def first_line(text) -> str:
    """The first line of a message (an error's may go on with details)."""
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def span(duration) -> str:
    """A duration as people say it: '42 s', '7 min', '3 h 05 min', '2 days'."""
    seconds = int(duration.total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return plural(round(seconds / 86400), "day")


def took(seconds: float) -> str:
    """A measured duration: '0.02 s' to the hundredth below 90 s, then as span() says it."""
    return f"{seconds:.2f} s" if seconds < 90 else span(timedelta(seconds=seconds))


def did_you_mean(name, known) -> str:
    """' (did you mean 'x'?)' when ``name`` is a likely typo of one of ``known``, else ''."""
    close = difflib.get_close_matches(str(name), [str(item) for item in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
