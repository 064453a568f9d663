"""A database that shows every state of the admin's slot strip and grid, made by real ticks
at past instants (freezegun), then the few rows no tick makes in a moment: a running
attempt, a timeout, an interrupted one, and durations of some length. The browser tests
(tests/test_browser.py) and bin/admin_screenshots.py both use it."""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta

from django.utils import timezone
from freezegun import freeze_time

from crontabber.engine.runner import Runner
from crontabber.models import Job, Log
from crontabber.outcomes import Outcome
from tests.jobs import control

REGISTRY = [
    # Every hour, backfilled: a failure retried, and the last hours not run yet (a backlog).
    {"name": "hourly-rollup", "cmd": "record", "cmd_args": ["--label", "rollup"], "frequency": "1h", "backfill": True},
    # Every 15 minutes, coalesced: ticks 45 minutes apart run one slot of three.
    {"name": "sync-feed", "cmd": "record", "cmd_args": ["--label", "feed"], "frequency": "15m"},
    # Daily in Berlin: succeeded, then failing for three days.
    {
        "name": "nightly-export",
        "cmd": "record",
        "cmd_args": ["--label", "export"],
        "frequency": "1d",
        "time": "03:30",
        "timezone": "Europe/Berlin",
    },
    # Every 2 hours, backfilled, its latest slot running now.
    {
        "name": "search-reindex",
        "cmd": "record",
        "cmd_args": ["--label", "reindex"],
        "frequency": "2h",
        "backfill": True,
    },
    # Every 30 minutes: two timeouts and an interrupted attempt among successes.
    {"name": "report-mailer", "cmd": "record", "cmd_args": ["--label", "mail"], "frequency": "30m"},
    # Every 4 hours, with nothing to do.
    {"name": "purge-sessions", "cmd": "skipper", "frequency": "4h"},
]
RUNNING_HOST = "worker-2:4242:seed"


def _tick(name: str, when: datetime) -> None:
    with freeze_time(when):
        Runner(out=io.StringIO()).tick(only=[name])


def _ticks(name: str, start: datetime, end: datetime, every: timedelta, failing=lambda when: False) -> None:
    when = start
    while when <= end:
        control.FAILING.clear()
        if failing(when):
            control.FAILING.add("*")
        _tick(name, when)
        when += every
    control.FAILING.clear()


def seed(now: datetime | None = None) -> datetime:
    """Fill an empty database (the registry must be REGISTRY); returns the hour it ends at."""
    hour = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    retried, stuck = hour - timedelta(hours=14), hour - timedelta(hours=6)
    _ticks(
        "hourly-rollup", hour - timedelta(hours=30), retried, timedelta(hours=1), failing=lambda when: when == retried
    )
    _tick("hourly-rollup", retried + timedelta(minutes=20))  # the retry succeeds
    # A failure at `stuck` holds back the slots after it: a backlog.
    hourly = timedelta(hours=1)
    _ticks("hourly-rollup", retried + hourly, stuck, hourly, failing=lambda when: when == stuck)
    _ticks("sync-feed", hour - timedelta(hours=7), hour, timedelta(minutes=45))
    day = timedelta(days=1)
    _ticks("nightly-export", hour - 12 * day, hour, day, failing=lambda when: when > hour - 3.5 * day)
    _ticks("search-reindex", hour - timedelta(hours=48), hour - timedelta(hours=2), timedelta(hours=2))
    _ticks("report-mailer", hour - timedelta(hours=12), hour, timedelta(minutes=30))
    _ticks("purge-sessions", hour - timedelta(hours=48), hour, timedelta(hours=4))
    for name in ("sync-feed", "report-mailer"):  # up to date
        _tick(name, now or timezone.now())
    _stage_outcomes(hour)
    _vary_durations()
    return hour


def _stage_outcomes(hour: datetime) -> None:
    """What ticks in a moment cannot make: a running attempt, timeouts, an interruption."""
    mailer = Log.objects.filter(job__name="report-mailer", outcome=Outcome.SUCCESS).order_by("slot")
    for log, outcome in zip(mailer[5:8], [Outcome.TIMEOUT, Outcome.INTERRUPTED, Outcome.TIMEOUT], strict=True):
        error = ("TimeoutError", "ran past its timeout of 600 s") if outcome == Outcome.TIMEOUT else ("", "")
        if outcome == Outcome.INTERRUPTED:
            error = ("Interrupted", "the runner was stopped (SIGTERM)")
        Log.objects.filter(pk=log.pk).update(outcome=outcome, error_type=error[0], error_value=error[1])
    reindex = Job.objects.get(name="search-reindex")
    now = timezone.now()
    Job.objects.filter(pk=reindex.pk).update(
        claimed_by=RUNNING_HOST, claimed_at=now - timedelta(minutes=3), claim_expires=now + timedelta(minutes=5)
    )
    Log.objects.create(
        job=reindex,
        slot=reindex.next_slot,
        started_at=now - timedelta(minutes=3),
        duration=0,
        outcome=Outcome.RUNNING,
        host="worker-2",
        pid=4242,
    )


def _vary_durations() -> None:
    """Durations an operator would see: a few seconds to a few minutes, by job and slot."""
    scale = {"hourly-rollup": 40, "sync-feed": 6, "nightly-export": 300, "search-reindex": 150, "report-mailer": 20}
    logs = list(Log.objects.exclude(outcome=Outcome.RUNNING).select_related("job"))
    for log in logs:
        base = scale.get(log.job.name, 1)
        log.duration = round(base * (1.2 + math.sin(log.slot.timestamp() / 7200)) * (2 if log.attempt > 1 else 1), 2)
    Log.objects.bulk_update(logs, ["duration"])
