"""Every CRONTABBER_* setting, its default and what it means: the one place they are read.

Read through ``get`` at the moment of use, never copied at import, so that
``override_settings`` in tests and a changed settings module take effect at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

DERIVED = object()  # a default computed from other settings (see get)


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    meaning: str
    shown_default: str = ""  # the default as the docs state it, when not its repr


SETTINGS = {
    s.name: s
    for s in (
        Setting("CRONTABBER_JOBS", [], "the registry (see the registry keys above)"),
        Setting(
            "CRONTABBER_INTERVAL",
            300,
            "seconds between ticks of the shell loop; for `cronrun --loop`, which also ticks when a job falls due, "
            "its longest sleep",
        ),
        Setting(
            "CRONTABBER_REQUEST_POLL_SECONDS",
            30,
            "a sleeping `cronrun --loop` looks this often (one short query) whether an operator asked for something "
            "in the admin (run now, re-run, an override, a release) or a repair command ran, and ticks if so; `0`: "
            "never, such requests wait for the next tick ([operations](operations.md#the-loop-on-time))",
        ),
        Setting(
            "CRONTABBER_LATE_START_SECONDS",
            60,
            "a job whose latest on-time slot started later than this after the slot: health WARNING "
            "([operations](operations.md#the-loop-on-time))",
        ),
        Setting(
            "CRONTABBER_LEASE_SECONDS",
            300,
            "how long a claim holds without renewal; a running job renews it every third of this",
        ),
        Setting(
            "CRONTABBER_RETRY_DELAY_SECONDS",
            60,
            "back-off after the first failure; doubles with each consecutive failure",
        ),
        Setting("CRONTABBER_RETRY_MAX_DELAY_SECONDS", 3600, "the back-off's cap"),
        Setting("CRONTABBER_OUTPUT_TAIL_CHARS", 4000, "how much of a run's output is kept on its Log row"),
        Setting("CRONTABBER_STOP_GRACE_SECONDS", 60, "on SIGTERM/SIGINT, how long the running job may go on"),
        Setting("CRONTABBER_KILL_GRACE_SECONDS", 10, "for a `process` job, between SIGTERM and SIGKILL"),
        Setting("CRONTABBER_DRY_RUN_SHOWN", 20, "`cronrun --dry-run` lists at most this many slots per job"),
        Setting(
            "CRONTABBER_LOG_RETENTION_DAYS",
            90,
            "Log rows older than this are deleted (checked at most hourly by any tick)",
        ),
        Setting("CRONTABBER_LOG_PURGE_BATCH", 1000, "rows per DELETE; at most ten per tick, the rest on the next"),
        Setting(
            "CRONTABBER_NOTIFY_EMAILS",
            None,
            "addresses mailed on a job's first failure and its recovery, and on `notify_on_success` "
            "([alerts](alerts.md)); `[]`: no mail",
            "the `ADMINS` addresses",
        ),
        Setting(
            "CRONTABBER_SENTRY_CRONS",
            False,
            "`True`: every job sends Sentry Crons check-ins, its monitor configured from the registry; "
            "or a list of job names",
        ),
        Setting(
            "CRONTABBER_SENTRY_CATCH_UP_CHECKINS",
            "one",
            'what a backlog tells Sentry Crons: `"one"`, one check-in (its newest slot\'s, or the error that '
            'stopped it); `"none"`, only the newest slot\'s. A slot caught up after a later one fell due never '
            "checks in as if on time ([alerts](alerts.md))",
        ),
        Setting(
            "CRONTABBER_SENTRY_CHECKIN_MARGIN_MINUTES",
            DERIVED,
            "the Sentry monitors' `checkin_margin`",
            "twice `CRONTABBER_INTERVAL`, in minutes (10)",
        ),
        Setting(
            "CRONTABBER_OVERDUE_GRACE_SECONDS",
            900,
            "a job due for longer than this without running is `overdue` (health: CRITICAL)",
        ),
        Setting(
            "CRONTABBER_TICK_GRACE_SECONDS",
            DERIVED,
            "no runner completed a tick for longer than this: health CRITICAL",
            "two `CRONTABBER_INTERVAL`s (`600`)",
        ),
        Setting(
            "CRONTABBER_SCRUB_PATTERNS",
            [],
            "more regular expressions whose matches (or their group `secret`) are scrubbed from output, errors "
            "and tracebacks before they are stored or sent ([security](security.md)); a string is one pattern",
        ),
        Setting(
            "CRONTABBER_SCRUB_DEFAULTS",
            True,
            "`False`: only `CRONTABBER_SCRUB_PATTERNS` are scrubbed, not the built-in passwords, tokens, keys and "
            "URL credentials",
        ),
        Setting(
            "CRONTABBER_NOTIFY_OUTPUT",
            True,
            "`False`: mails and Sentry events carry no output tail, traceback or locals (the Log row keeps the "
            "scrubbed tail)",
        ),
        Setting(
            "CRONTABBER_HEALTH_TOKEN",
            "",
            "the bearer token that gets the full health report (`Authorization: Bearer ...`); without it, or a "
            "session of staff with `crontabber.view_job`, the endpoint tells only the verdict and each job's status; "
            "also the key to "
            "`GET /crontabber/metrics`",
            "none",
        ),
        Setting(
            "CRONTABBER_CHILD_ENV",
            None,
            "for `process` jobs: the environment variables the child gets (names or patterns such as `LC_*`); "
            "`DJANGO_SETTINGS_MODULE` always",
            "all of the runner's",
        ),
        Setting(
            "CRONTABBER_TASK_BACKEND",
            None,
            "the alias of a `TASKS` backend whose workers run every job's attempts, unless a job's `backend` says "
            "otherwise ([Scheduling Django Tasks](tasks.md))",
            "none: jobs run in the runner",
        ),
        Setting(
            "CRONTABBER_TASK_POLL_SECONDS",
            1,
            "`cronrun --loop` ticks again this soon while attempts are on task workers, to read their results "
            "and queue the next slots",
        ),
        Setting(
            "CRONTABBER_CRASHES_BEFORE_ISOLATION",
            3,
            "after this many attempts in a row whose runner died under them (a job that calls `os._exit`, "
            "crashes the interpreter or is killed by the OOM killer), a job's attempts run in a child process; "
            "health CRITICAL until `cronreset` or `cronmarksuccess`",
        ),
        Setting(
            "CRONTABBER_CRITICAL_ERRORS",
            3,
            "this many consecutive failures of a job make the health CRITICAL (fewer: WARNING)",
        ),
        Setting(
            "CRONTABBER_ADMIN_STRIP_SLOTS",
            24,
            "how many of each job's latest slots the admin's job list shows in its slot strip (at most 100)",
        ),
    )
}


def get(name: str):
    """The setting's value, or its default."""
    default = SETTINGS[name].default
    value = getattr(settings, name, default)
    return _derived(name) if default is DERIVED and value in (None, DERIVED) else value


def lease() -> timedelta:
    """How long a claim holds without renewal (CRONTABBER_LEASE_SECONDS)."""
    return timedelta(seconds=get("CRONTABBER_LEASE_SECONDS"))


def default_zone() -> str:
    """The zone of jobs that name none: Django's TIME_ZONE."""
    return settings.TIME_ZONE or "UTC"


def _derived(name: str):
    interval = get("CRONTABBER_INTERVAL")
    if name == "CRONTABBER_TICK_GRACE_SECONDS":
        return 2 * interval
    return math.ceil(2 * interval / 60)  # CRONTABBER_SENTRY_CHECKIN_MARGIN_MINUTES


def table() -> str:
    """The settings as the Markdown table of docs/configuration.md."""
    rows = ["| setting | meaning | default |", "|---|---|---|"]
    for s in SETTINGS.values():
        rows.append(f"| `{s.name}` | {s.meaning} | {s.shown_default or f'`{s.default!r}`'} |")
    return "\n".join(rows)
