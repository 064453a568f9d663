#!/usr/bin/env python
"""Jobs run on Django Tasks workers (issue 15, docs/tasks.md), on PostgreSQL: what queueing
an attempt costs the runner per slot (in the runner, enqueued to django-tasks-db's ``db``
backend, read back after a worker ran it), and the makespan of 200 jobs of 50 ms shared by
1, 2 and 4 ``db_worker`` processes with 1, 2 and 4 ``cronrun --loop`` runners, with their
duplicates (target: none). The method in detail: report().

    .venv/bin/python benchmarks/tasks.py [--reps 3] [--no-write]
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

from common import CHECKOUT, UTC, Tree, add_options, header, loadavg, median, scratch_database, write

JOBS = 200
SECONDS = 0.05
POLL = 0.1
COUNTS = (1, 2, 4)


def registry(seconds: float, backend: str) -> list[dict]:
    return [
        {"name": f"job-{i}", "cmd": "work", "cmd_args": ["--label", f"job-{i}", "--seconds", str(seconds)],
         "frequency": "1d", "backend": backend}
        for i in range(JOBS)
    ]  # fmt: skip


def setup_django(url: str) -> None:
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=url)
    sys.path.insert(0, str(CHECKOUT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def clear() -> None:
    from django_tasks_db.models import DBTaskResult

    from crontabber.models import Job, Log
    from tests.jobs.models import Execution

    for model in (Log, Execution, DBTaskResult, Job):
        model.objects.all().delete()


def make_rows(due: bool) -> None:
    """A row per job, every job due (a week back) or not (a day ahead)."""
    from crontabber.models import Job
    from crontabber.registry import load_jobs

    now = dt.datetime.now(UTC)
    when = now - dt.timedelta(days=7) if due else now + dt.timedelta(days=1)
    for spec in load_jobs():
        Job.objects.update_or_create(
            name=spec.name, defaults=Job.fresh_state(spec.schedule, now - dt.timedelta(days=8))
        )
    Job.objects.update(next_run=when, next_slot=now - dt.timedelta(days=7))


def child_env(url: str, jobs: list[dict]) -> dict:
    return Tree().env(
        url, jobs, PYTHONPATH=str(CHECKOUT), TEST_SETTINGS=json.dumps({"CRONTABBER_TASK_POLL_SECONDS": POLL})
    )


def manage(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(Tree().manage_argv(*args), env=env, cwd=CHECKOUT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def worker_args(*extra: str) -> list[str]:
    return ["db_worker", "--backend", "db", "--interval", "0.05", "--no-startup-delay", "--no-reload", *extra]


# --- 1. enqueue cost ---------------------------------------------------------------------


def timed_tick() -> float:
    from crontabber.engine.runner import Runner

    started = time.perf_counter()
    Runner().tick()
    return time.perf_counter() - started


def enqueue_costs(url: str, reps: int) -> dict[str, list[float]]:
    from django.conf import settings

    from crontabber.models import Log

    costs = {"in the runner": [], "enqueue": [], "read and record": []}
    for _ in range(reps + 1):  # the first round warms up and is dropped
        for label, backend in (("in the runner", ""), ("enqueue", "db")):
            settings.CRONTABBER_JOBS = registry(0, backend)
            clear()
            make_rows(due=True)
            costs[label].append(timed_tick() / JOBS)
        assert Log.objects.filter(outcome="queued").count() == JOBS
        worker = manage(child_env(url, []), *worker_args("--batch"))
        worker.communicate(timeout=300)
        costs["read and record"].append(timed_tick() / JOBS)
        assert Log.objects.filter(outcome="success").count() == JOBS
    return {label: values[1:] for label, values in costs.items()}


# --- 2. makespan -------------------------------------------------------------------------


def makespan(url: str, workers: int, runners: int) -> dict:
    from django.db import connection

    from crontabber.models import Job, Log
    from tests.jobs.models import Execution

    jobs = registry(SECONDS, "db")
    clear()
    from django.conf import settings

    settings.CRONTABBER_JOBS = jobs
    make_rows(due=False)
    env = child_env(url, jobs)
    processes = [manage(env, *worker_args("--worker-id", f"w{i}")) for i in range(workers)]
    processes += [manage(env, "cronrun", "--loop", "--interval", "1") for _ in range(runners)]
    try:
        time.sleep(4)  # started, Django set up, idle
        started = time.time()
        Job.objects.update(next_run=dt.datetime.now(UTC) - dt.timedelta(days=7))
        deadline = time.monotonic() + 600
        while Log.objects.filter(outcome="success").count() < JOBS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers, {runners} runners: not done after 600 s")
            time.sleep(0.02)
        ended = time.time()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    connection.close()
    executions = list(Execution.objects.values_list("label", flat=True))
    attempts = Log.objects.count()
    return {
        "makespan": ended - started,
        "duplicates": len(executions) - len(set(executions)) + attempts - JOBS,
        "executions": len(executions),
        "floor": JOBS * SECONDS / workers,
    }


# --- the report --------------------------------------------------------------------------


def report(costs: dict, runs: list[dict], args, started: dt.datetime, load_before: str, pg: str) -> list[str]:
    lines = [
        *header("Jobs on Django Tasks workers (django-tasks-db, PostgreSQL)", started, load_before, Tree(), pg),
        "## Method",
        "",
        f"- enqueue cost: one tick of {JOBS} due jobs (`work --seconds 0`) in this process, Django set up on "
        "`tests.settings`: run in the runner, sent to the `db` backend (row opened, enqueued, marked queued), and "
        f"the tick after a `db_worker --batch` ran them all (read back, recorded); tick wall / {JOBS}, median of "
        f"{args.reps} rounds after one dropped",
        f"- makespan: W `db_worker --interval 0.05` and R `cronrun --loop --interval 1` processes "
        f"(`CRONTABBER_TASK_POLL_SECONDS` {POLL}) started with nothing due, 4 s to settle; the jobs (`work --seconds "
        f"{SECONDS}`) made due in one UPDATE; makespan until every job has a recorded success (polled every 20 ms); "
        "duplicates: `work` executions beyond one per job plus attempts beyond one per job",
        "",
        f"## Cost per slot in one tick of {JOBS} due jobs (median of {args.reps}, ms)",
        "",
        "| path | ms per slot |",
        "|---|---|",
        *[f"| {label} | {median(values) * 1000:.2f} |" for label, values in costs.items()],
        "",
        f"## Makespan: {JOBS} jobs of {SECONDS * 1000:.0f} ms, W workers x R runners (s)",
        "",
        "| workers | runners | makespan (s) | floor: work / W (s) | work executions | duplicates |",
        "|---|---|---|---|---|---|",
    ]
    return lines + [f"| {r['workers']} | {r['runners']} | {r['makespan']:.2f} | {r['floor']:.1f} | {r['executions']} | "
                    f"{r['duplicates']} |" for r in runs]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    add_options(parser, "results-tasks.md", trees=False)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop: the workers and runners are stopped too
    started, load_before = dt.datetime.now(UTC), loadavg()
    db = scratch_database("postgres", args.pg_url, "tasks")
    try:
        pg = db.version()
        setup_django(db.url)
        costs = enqueue_costs(db.url, args.reps)
        print({label: f"{median(v) * 1000:.2f} ms" for label, v in costs.items()}, flush=True)
        runs = []
        for workers in COUNTS:
            for runners in COUNTS:
                runs.append({"workers": workers, "runners": runners, **makespan(db.url, workers, runners)})
                print(runs[-1], flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        db.drop()
    lines = report(costs, runs, args, started, load_before, pg)
    print("\n".join(lines))
    write(args, lines)
    return 1 if any(run["duplicates"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
