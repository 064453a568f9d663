#!/usr/bin/env python
"""A day of every-minute slots (1,440) of a backfill task job caught up on two django-tasks-db
``db_worker`` processes by one ``cronrun --loop`` at its default interval, on PostgreSQL
(issue 25, docs/tasks.md): with 8 slots queued at once and in strict order (1), and today's
engine (``--today``, a git revision: it runs for ``--today-seconds`` and its pace is
extrapolated to the day). Exactly once each, checked in the rows. The method: report().

    .venv/bin/python benchmarks/tasks_backlog.py [--today main] [--today-seconds 120] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

from common import CHECKOUT, UTC, Tree, add_options, header, loadavg, met, proc_cpu, scratch_database, write

SLOTS = 1440
WORKER_INTERVAL = 0.1  # db_worker --interval: how often an idle worker looks for work
TARGETS = {8: 120, 1: 600}  # slots queued at once -> seconds allowed for the day


def registry(queued_at_once: int | None) -> list[dict]:
    job = {"name": "day", "task": "tests.jobs.tasks.rollup", "frequency": "1m", "backfill": True, "backend": "db"}
    return [job | ({"queued_at_once": queued_at_once} if queued_at_once else {})]


def setup_django(url: str) -> None:
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=url)
    sys.path.insert(0, str(CHECKOUT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def backlog(now: dt.datetime) -> dt.datetime:
    """The job's row, its grid a day behind: SLOTS slots due before ``now``'s minute. Returns the last."""
    from django.conf import settings
    from django_tasks_db.models import DBTaskResult

    from crontabber.models import Job, Log
    from crontabber.registry import load_jobs
    from tests.jobs.models import Execution

    for model in (Log, Execution, DBTaskResult, Job):
        model.objects.all().delete()
    settings.CRONTABBER_JOBS = registry(None)
    minute = now.replace(second=0, microsecond=0)
    (spec,) = load_jobs()
    Job.objects.create(name=spec.name, **Job.fresh_state(spec.schedule, minute - dt.timedelta(minutes=SLOTS)))
    return minute - dt.timedelta(minutes=1)


def start(tree: Tree, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(tree.manage_argv(*args), env=env, cwd=tree.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def done_through(last: dt.datetime) -> int:
    from crontabber.models import Log

    return Log.objects.filter(job__name="day", outcome="success", slot__lte=last).count()


def catch_up(url: str, tree: Tree, queued_at_once: int | None, seconds: float) -> dict:
    """The day's backlog run by two workers and one runner; the time until every slot of it
    succeeded, or the slots done after ``seconds``."""
    from django.db import connection

    last = backlog(dt.datetime.now(UTC))
    env = tree.env(url, registry(queued_at_once), PYTHONPATH=str(tree.root))
    worker = ("db_worker", "--backend", "db", "--interval", str(WORKER_INTERVAL), "--no-startup-delay", "--no-reload")
    processes = [start(tree, env, *worker, "--worker-id", f"w{i}") for i in range(2)]
    time.sleep(4)  # the workers started, idle
    started = time.monotonic()
    processes.append(start(tree, env, "cronrun", "--loop"))
    try:
        while done_through(last) < SLOTS and time.monotonic() - started < seconds:
            time.sleep(0.5)
        elapsed, done = time.monotonic() - started, done_through(last)
        cpu = [proc_cpu(process.pid) for process in processes]  # the workers', the runner's
    finally:
        stop(processes)
    connection.close()
    return {"queued_at_once": queued_at_once or 1, "seconds": elapsed, "done": done, "runner_cpu": cpu[2],
            "workers_cpu": cpu[0] + cpu[1], "load": os.getloadavg()[0], **once_each(last)}  # fmt: skip


def once_each(last: dt.datetime) -> dict:
    """The day's slots run more than once by a worker, or recorded as succeeding more than once."""
    from django.db.models import Count

    from crontabber.models import Log
    from crontabber.schedules import format_instant
    from tests.jobs.models import Execution

    day = {format_instant(last - dt.timedelta(minutes=m)) for m in range(SLOTS)}
    runs = Execution.objects.filter(label="rollup").values("slot").annotate(n=Count("id"))
    successes = Log.objects.filter(outcome="success", slot__lte=last).values("slot").annotate(n=Count("id"))
    return {
        "run_twice": sum(1 for row in runs if row["slot"] in day and row["n"] > 1),
        "recorded_twice": sum(1 for row in successes if row["n"] > 1),
        "failed": Log.objects.exclude(outcome__in=["success", "queued"]).count(),
    }


def report(runs: list[dict], today: dict | None, args, started, load_before, pg) -> list[str]:
    lines = [
        *header("A day's backlog on task workers (django-tasks-db, PostgreSQL)", started, load_before, Tree(), pg),
        "## Method",
        "",
        f"- one backfill job (`frequency: 1m`) of the task `tests.jobs.tasks.rollup` (a no-op that writes one row "
        f"saying which slot it ran) on the `db` backend, its grid set {SLOTS} minutes back: {SLOTS} slots due",
        f"- two `db_worker --interval {WORKER_INTERVAL}` processes started and left 4 s; then one `cronrun --loop` "
        "at its default interval and `CRONTABBER_TASK_POLL_SECONDS`; the time from its start (Django's start-up "
        f"included) until all {SLOTS} slots have a recorded success, polled every 0.5 s",
        "- CPU: user + system seconds of the runner and of the two workers (/proc) over the run, per slot done; the "
        "load average (1 min) at its end: the machine is shared, and two cores run all of it (PostgreSQL too)",
        "- exactly once: slots of the day that a worker ran twice (the task's own rows), slots recorded as "
        "succeeding twice, and attempts that did not succeed (crontabber's rows)",
    ]
    if today:
        lines.append(
            f"- today: `{args.today}` ({today['rev'][:12]}), strict order and its 5 s poll, for "
            f"{args.today_seconds:.0f} s; its pace extrapolated to {SLOTS} slots"
        )
    lines += [
        "",
        "## Results",
        "",
        "| engine | queued at once | slots done | seconds | per slot (s) | the day (min) | target | CPU per slot: "
        "runner, workers (ms) | load at the end | run twice | recorded twice | not succeeded |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in ([today] if today else []) + runs:
        per_slot = run["seconds"] / max(run["done"], 1)
        target = TARGETS.get(run["queued_at_once"]) if run is not today else None
        verdict = met(run["done"] == SLOTS and run["seconds"] <= target) if target else "—"
        lines.append(
            f"| {'today' if run is today else 'this'} | {run['queued_at_once']} | {run['done']} | {run['seconds']:.0f} "
            f"| {per_slot:.3f} | {per_slot * SLOTS / 60:.1f} | {f'≤ {target / 60:.0f} min: {verdict}' if target else '—'} "
            f"| {run['runner_cpu'] / max(run['done'], 1) * 1000:.0f}, {run['workers_cpu'] / max(run['done'], 1) * 1000:.0f} "
            f"| {run['load']:.1f} | {run['run_twice']} | {run['recorded_twice']} | {run['failed']} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--today", default="", help="also run this git revision (today's engine), e.g. main")
    parser.add_argument("--today-seconds", type=float, default=120, help="how long today's engine runs")
    parser.add_argument("--counts", default="8,1", help="slots queued at once, one run each")
    add_options(parser, "results-tasks-backlog.md", trees=False)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started, load_before = dt.datetime.now(UTC), loadavg()
    db = scratch_database("postgres", args.pg_url, "tasks_backlog")
    try:
        pg = db.version()
        setup_django(db.url)
        runs, today = [], None
        for count in [int(c) for c in args.counts.split(",")]:
            runs.append(catch_up(db.url, Tree(), count, 1800))
            print(json.dumps(runs[-1]), flush=True)
        if args.today:
            tree = Tree(rev=args.today)
            today = {**catch_up(db.url, tree, None, args.today_seconds), "rev": tree.rev}
            print(json.dumps(today), flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        db.drop()
    lines = report(runs, today, args, started, load_before, pg)
    print("\n".join(lines))
    write(args, lines)
    return 1 if any(run["run_twice"] or run["recorded_twice"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
