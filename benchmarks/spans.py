#!/usr/bin/env python
"""Missed and paused slots cost one row, not one per slot: what a tick pays for them.

A scratch SQLite database in process (the test app's `noop` command), the clock frozen:

- missed: one every-minute backfill job with ``starting_deadline: 120`` down for a day, a
  week and a year, as a cron (``* * * * *``: the span counted by walking its slots) and as
  a frequency (``1m``: counted by arithmetic); the tick that records the span and runs
  the last two minutes' slots: its wall time and the Log rows it wrote;
- paused: N hourly jobs without backfill held for 5 hours, then released; the first
  tick after the release, which resumes every job (a paused row each; none runs: each
  waits for its next slot): its wall time per job, beside an idle tick of the same jobs.

    .venv/bin/python benchmarks/spans.py [--sizes 1000,10000] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHECKOUT, Tree, header, loadavg  # noqa: E402

UTC = dt.UTC
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
OUTAGES = {"1 day": dt.timedelta(days=1), "1 week": dt.timedelta(days=7), "1 year": dt.timedelta(days=365)}


def setup_django(database: Path) -> None:
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=f"sqlite:///{database}")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed_tick(when: dt.datetime) -> float:
    from freezegun import freeze_time

    from crontabber.engine.runner import Runner

    clock = time.CLOCK_MONOTONIC  # clock_gettime: freezegun freezes perf_counter, not this
    with freeze_time(when):
        started = time.clock_gettime(clock)
        Runner().tick()
        return time.clock_gettime(clock) - started


def fresh(jobs: list[dict]) -> None:
    from django.conf import settings

    from crontabber.models import Control, Job, Log

    Log.objects.all().delete()
    Job.objects.all().delete()
    Control.objects.all().delete()
    settings.CRONTABBER_JOBS = jobs


def missed(schedule: dict, outage: dt.timedelta) -> tuple[float, int, int]:
    """(the tick's seconds, Log rows it wrote, slots the missed row covers)."""
    from crontabber.models import Log

    fresh([{"name": "minutely", "cmd": "noop", "backfill": True, "starting_deadline": 120, **schedule}])
    timed_tick(START)
    before = Log.objects.count()
    seconds = timed_tick(START + outage)
    row = Log.objects.get(outcome="missed")
    return seconds, Log.objects.count() - before, row.covers


def paused(size: int) -> tuple[float, float, int]:
    """(an idle tick's seconds, the first tick after the release's seconds, its Log rows)."""
    from crontabber.models import Control, Log

    jobs = [{"name": f"job{n}", "cmd": "noop", "cron": "0 * * * *"} for n in range(size)]
    fresh(jobs)
    timed_tick(START)
    idle = timed_tick(START + dt.timedelta(minutes=30))
    Control.hold("bench", START + dt.timedelta(minutes=40))
    timed_tick(START + dt.timedelta(hours=3))
    Control.release()
    before = Log.objects.count()
    resumed = timed_tick(START + dt.timedelta(hours=5, minutes=30))
    return idle, resumed, Log.objects.count() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results-spans.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started, load_before = dt.datetime.now(UTC), loadavg()
    with tempfile.TemporaryDirectory() as scratch:
        setup_django(Path(scratch) / "spans.sqlite3")
        import logging

        logging.getLogger("crontabber").setLevel(logging.WARNING)
        lines = ["## Missed: an every-minute backfill job, starting_deadline 120 s, down for...", ""]
        lines += [
            "| outage | schedule | tick | Log rows written | slots the missed row covers |",
            "|---|---|---|---|---|",
        ]
        for label, outage in OUTAGES.items():
            for name, schedule in (
                ("cron `* * * * *`", {"cron": "* * * * *"}),
                ("frequency `1m`", {"frequency": "1m"}),
            ):
                seconds, rows, covers = missed(schedule, outage)
                lines.append(f"| {label} | {name} | {seconds * 1000:.0f} ms | {rows} | {covers:,} |")
                print(lines[-1], flush=True)
        lines += ["", "## Paused: N hourly jobs without backfill held 5 hours, then released", ""]
        lines += [
            "| N | idle tick | first tick after the release | per job | Log rows written |",
            "|---|---|---|---|---|",
        ]
        for size in (int(n) for n in args.sizes.split(",")):
            idle, resumed, rows = paused(size)
            lines.append(f"| {size:,} | {idle:.2f} s | {resumed:.2f} s | {resumed / size * 1000:.2f} ms | {rows:,} |")
            print(lines[-1], flush=True)
    tree = Tree(CHECKOUT)
    method = [
        "",
        "## Method",
        "",
        "In process, SQLite in a temporary directory, the clock frozen (freezegun); each tick is "
        "`Runner().tick()` timed with `time.clock_gettime(CLOCK_MONOTONIC)`; the registry is set in settings. One run each.",
    ]
    text = "\n".join(header("Missed and paused spans", started, load_before, tree) + lines + method) + "\n"
    if args.no_write:
        print(text)
    else:
        args.output.write_text(text)
        print(f"written: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
