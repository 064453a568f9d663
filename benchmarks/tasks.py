#!/usr/bin/env python
"""Jobs run on Django Tasks workers (issue 15, docs/tasks.md): what queueing an attempt
costs the runner, and how 1, 2 and 4 django-tasks-db workers share 200 jobs with 1, 2 and
4 crontabber runners, on PostgreSQL.

1. **Enqueue cost per slot** (in this process, Django set up against a scratch database):
   one tick of 200 due jobs, each the test app's ``work --seconds 0`` command, run three
   ways: in the runner (the baseline), sent to the ``db`` backend (open the row, enqueue
   through crontabber's shipped task, mark it queued), and the tick after a worker ran
   them all (read each result, record it). Each tick's wall time divided by 200, the
   median of ``--reps`` rounds.
2. **Makespan**: W ``manage.py db_worker --interval 0.05`` processes and R ``cronrun
   --loop --interval 1`` processes (``CRONTABBER_TASK_POLL_SECONDS`` 0.1) are started
   with nothing due and left to settle; then the 200 jobs (``work --seconds 0.05``, one
   slot each) are made due at once (one UPDATE), and makespan is from that moment until
   every job has a recorded success (one query every 20 ms). Duplicates: ``work``
   executions beyond one per job (each records itself in ``testjobs_execution``), and
   attempts beyond one per job. The floor is 200 x 50 ms / W of work.

Usage: ``.venv/bin/python benchmarks/tasks.py [--reps 3] [--no-write]``. PostgreSQL: a
scratch database on ``--pg-url`` (default $CRONTABBER_BENCH_PG_URL or
postgres://postgres@127.0.0.1:5432), dropped at the end. Results: benchmarks/results-tasks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
RESULTS = HERE / "results-tasks.md"
JOBS = 200
SECONDS = 0.05
POLL = 0.1
COUNTS = (1, 2, 4)
LOAD_AT_START = 0.0

from hostinfo import cpu_model  # noqa: E402
from scratchdb import PostgresDatabase  # noqa: E402  the benchmarks' folder


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

    now = dt.datetime.now(dt.UTC)
    when = now - dt.timedelta(days=7) if due else now + dt.timedelta(days=1)
    for spec in load_jobs():
        Job.objects.update_or_create(
            name=spec.name, defaults=Job.fresh_state(spec.schedule, now - dt.timedelta(days=8))
        )
    Job.objects.update(next_run=when, next_slot=now - dt.timedelta(days=7))


def child_env(url: str, jobs: list[dict]) -> dict:
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=url, PYTHONPATH=str(CHECKOUT),
               TEST_CRONTABBER_JOBS=json.dumps(jobs), TEST_SETTINGS=json.dumps({"CRONTABBER_TASK_POLL_SECONDS": POLL}))  # fmt: skip
    return env


def manage(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHECKOUT / "webapp" / "manage.py"), *args], env=env, cwd=CHECKOUT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


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
        Job.objects.update(next_run=dt.datetime.now(dt.UTC) - dt.timedelta(days=7))
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


def report(costs: dict, runs: list[dict], reps: int) -> str:
    from django import get_version

    lines = [
        "# Jobs on Django Tasks workers (django-tasks-db, PostgreSQL)",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/tasks.py` on {platform.node()}: "
        f"{os.cpu_count()} CPUs ({cpu_model() or 'unknown CPU'}), Python {platform.python_version()}, "
        f"Django {get_version()}, load average {LOAD_AT_START:.2f} at the start and {os.getloadavg()[0]:.2f} at the "
        "end (1 minute). The machine is shared "
        "with other work: figures move with its load. Method: the script's docstring.",
        "",
        f"## Cost per slot in one tick of {JOBS} due jobs (median of {reps}, ms)",
        "",
        "| path | ms per slot |",
        "|---|---|",
    ]
    lines += [f"| {label} | {statistics.median(values) * 1000:.2f} |" for label, values in costs.items()]
    lines += [
        "",
        f"## Makespan: {JOBS} jobs of {SECONDS * 1000:.0f} ms, W workers x R runners (s)",
        "",
        "| workers | runners | makespan (s) | floor: work / W (s) | work executions | duplicates |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['workers']} | {r['runners']} | {r['makespan']:.2f} | {r['floor']:.1f} | {r['executions']} | "
        f"{r['duplicates']} |"
        for r in runs
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--pg-url", default=os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--dbname", default="crontabber_tasks_bench")
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop: the workers and runners are stopped too
    global LOAD_AT_START
    LOAD_AT_START = os.getloadavg()[0]
    db = PostgresDatabase(options.pg_url, options.dbname)
    try:
        setup_django(db.url)
        costs = enqueue_costs(db.url, options.reps)
        print({label: f"{statistics.median(v) * 1000:.2f} ms" for label, v in costs.items()}, flush=True)
        runs = []
        for workers in COUNTS:
            for runners in COUNTS:
                runs.append({"workers": workers, "runners": runners, **makespan(db.url, workers, runners)})
                print(runs[-1], flush=True)
        text = report(costs, runs, options.reps)
    finally:
        from django.db import connections

        connections.close_all()
        db.drop()
    print(text)
    if not options.no_write:
        RESULTS.write_text(text)
    return 1 if any(run["duplicates"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
