#!/usr/bin/env python
"""What one ``cronrun`` tick costs, in wall time and SQL queries.

For each database (SQLite, PostgreSQL) and each registry size N (10, 100, 1,000 jobs
running the no-op command ``noop`` of the test app), on a fresh database:

* **none due**: a first tick creates every job and runs it; then each job's
  ``next_run`` is pushed a day ahead, so nothing can fall due while we measure;
* **all due**: before each measured tick every job's ``next_run``/``next_slot`` is
  set a week back (an UPDATE outside the measurement), so every job runs exactly once
  (no job backfills: the missed slots coalesce into one run).

and measures

* **wall**: the whole process ``python webapp/manage.py cronrun`` (what the loop in
  bin/run_crontabber.sh really pays: interpreter, Django start-up, tick), against
  ``python webapp/manage.py check`` in the same project with the same registry; the two
  alternate (check first on even runs, cronrun first on odd ones) and the medians are
  compared. The CPU time (user + system) of each child is reported too: on a busy
  machine it is steadier than the wall time;
* **in-process**: the tick alone, ``call_command("cronrun")`` timed in one process
  that is already set up (the first tick of that process, "cold", separately), and
  ``Runner().tick()`` for the nothing-due case;
* **loop tick** (nothing due): the cost of one more idle tick of a long-lived
  ``cronrun --loop --interval 0.1``: a process running 21 ticks against one running 1,
  alternating, the difference of the medians divided by 20 (CPU and wall time; the
  wall time includes the 0.1 s sleeps, so the CPU time is the figure);
* **queries**: the SQL statements of one in-process tick, counted by an execute wrapper
  on the main thread's connection (a job's heartbeat thread does not beat during a no-op
  job anyway; BEGIN and COMMIT are not statements sent with execute, so not counted).
  Not Django's debug cursor: it renders every statement with its parameters, which at
  10,000 jobs costs a noticeable part of the tick it would measure.

Every measured tick is checked: nothing ran when nothing was due, each job ran once
when all were due; a run that does not hold is an error, not a figure.

Usage (from the checkout, with the project's venv):

    .venv/bin/python benchmarks/tick.py                      # 10,100,1000 x sqlite,postgres
    .venv/bin/python benchmarks/tick.py --sizes 1000 --db sqlite --runs 7
    .venv/bin/python benchmarks/tick.py --profile            # + cProfile of cronrun vs check

PostgreSQL: a scratch database ``crontabber_bench_<pid>`` is created on the server of
--pg-url (default $CRONTABBER_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432) and
dropped at the end. SQLite: a file in a fresh temporary directory (on disk, as in
production: each commit is a real fsync).

Results: a table on stdout and benchmarks/results-tick.md (machine, method, figures).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import io
import json
import math
import os
import platform
import pstats
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project measured (see --root)
MANAGE = ROOT / "webapp" / "manage.py"
# With --root, children start through this script: it drops the venv's editable-install
# finder, which would otherwise fill any module missing from ROOT/crontabber from this
# checkout's crontabber/ (it is consulted after sys.path, for submodules too).
LAUNCH: list[str] = []
BOOT = """\
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
RESULTS = Path(__file__).resolve().parent / "results-tick.md"
TARGET_RATIO = 1.1  # issue 14: cronrun / check with nothing due, at the largest N
TARGET_MS_PER_JOB = 0.35  # issue 14: an all-due tick per job at N = 10,000 on PostgreSQL

UTC = dt.UTC

# --- the registry ------------------------------------------------------------------------

# Non-backfill schedules of every kind the registry knows, cycled over the jobs: interval
# grids, a daily wall time, cron expressions (one read in another zone), and jobs given
# --last-success. No backfill: an "all due" tick must run each job exactly once.
MIXED = [
    {"frequency": "5m"},
    {"frequency": "1h", "last_success": True},
    {"frequency": "1d", "time": "03:30"},
    {"cron": "*/15 * * * *"},
    {"cron": "0 4 * * 1-5", "timezone": "Europe/Paris"},
]


def registry(n: int, kind: str) -> list[dict]:
    if kind == "frequency":  # the example: every job {"cmd": "noop", "frequency": "5m"}
        return [{"name": f"job-{i}", "cmd": "noop", "frequency": "5m"} for i in range(n)]
    return [{"name": f"job-{i}", "cmd": "noop", **MIXED[i % len(MIXED)]} for i in range(n)]


# --- databases ---------------------------------------------------------------------------


from hostinfo import cpu_model  # noqa: E402
from scratchdb import Database, PostgresDatabase, SQLiteDatabase, registry_env  # noqa: E402  the benchmarks' folder

# --- child processes ---------------------------------------------------------------------


class Failed(RuntimeError):
    pass


try:
    import psycopg

    DATABASE_ERRORS: tuple[type[Exception], ...] = (OSError, sqlite3.Error, psycopg.Error)
except ImportError:  # no PostgreSQL driver: the postgres cases report it
    DATABASE_ERRORS = (OSError, sqlite3.Error, ImportError)


def child_env(db: Database, jobs: list[dict]) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=db.url,
        **registry_env(jobs),
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # use the .pyc files, as a deployed loop does
    env.pop("TEST_SETTINGS", None)  # tests.settings reads extra settings from it: none here
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def run_process(argv: list[str], env: dict, timeout: float) -> tuple[float, float]:
    """Run a child to completion; its wall time and CPU time (user + system), in s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            check=False,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            text=True,
        )
    except subprocess.TimeoutExpired:
        raise Failed(f"{' '.join(argv[1:])}: still running after {timeout:.0f} s") from None
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise Failed(f"{' '.join(argv[1:])}: exit status {done.returncode}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def manage(*args: str) -> list[str]:
    return [sys.executable, *LAUNCH, str(MANAGE), *args]


def last_log_id(db: Database) -> int:
    return db.scalar("SELECT COALESCE(MAX(id), 0) FROM crontabber_log")


def runs_since(db: Database, last_id: int) -> tuple[int, int]:
    """Log rows (attempts) written since ``last_id``, and the distinct jobs they belong to."""
    rows = db.execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM crontabber_log WHERE id > %s", last_id)
    return rows[0][0], rows[0][1]


def push_ahead(db: Database) -> None:
    """Nothing due: every next_run a day ahead (next_slot left alone)."""
    db.execute("UPDATE crontabber_job SET next_run = %s", dt.datetime.now(UTC) + dt.timedelta(days=1))


def make_all_due(db: Database) -> None:
    """All due: every job's pending slot and next run a week back."""
    past = dt.datetime.now(UTC) - dt.timedelta(days=7)
    db.execute("UPDATE crontabber_job SET next_run = %s, next_slot = %s", past, past)


def wall_series(db, env, n, scenario, runs, timeout, budget) -> dict:
    """Alternating runs of check and cronrun; every cronrun verified. Past 3 pairs, a
    pair that would end beyond ``budget`` seconds is not started (the count is reported)."""
    series = {"check": {"wall": [], "cpu": []}, "cronrun": {"wall": [], "cpu": []}}
    started = time.perf_counter()
    for i in range(runs):
        spent = time.perf_counter() - started
        if i >= 3 and spent + spent / i > budget:
            series["cut"] = f"{i} of {runs} runs: the series would have passed its {budget:.0f} s budget"
            break
        for which in ("check", "cronrun") if i % 2 == 0 else ("cronrun", "check"):
            if which == "check":
                wall, cpu = run_process(manage("check"), env, timeout)
            else:
                if scenario == "all due":
                    make_all_due(db)
                last = last_log_id(db)
                wall, cpu = run_process(manage("cronrun"), env, timeout)
                ran, jobs = runs_since(db, last)
                expected = n if scenario == "all due" else 0
                if ran != expected or jobs != expected:
                    raise Failed(
                        f"{db.name} N={n} {scenario}: cronrun ran {ran} slot(s) of {jobs} job(s), "
                        f"expected {expected} of {expected}"
                    )
            series[which]["wall"].append(wall)
            series[which]["cpu"].append(cpu)
    return series


LOOP_TICKS = 21


def loop_series(db, env, runs, timeout) -> dict:
    """``cronrun --loop`` with nothing due: processes of 1 and LOOP_TICKS ticks, alternating;
    the cost of one more tick is the difference of the medians over LOOP_TICKS - 1."""
    series = {1: {"wall": [], "cpu": []}, LOOP_TICKS: {"wall": [], "cpu": []}}
    last = last_log_id(db)
    for i in range(runs):
        for ticks in (1, LOOP_TICKS) if i % 2 == 0 else (LOOP_TICKS, 1):
            argv = manage("cronrun", "--loop", "--interval", "0.1", "--max-ticks", str(ticks))
            wall, cpu = run_process(argv, env, timeout)
            series[ticks]["wall"].append(wall)
            series[ticks]["cpu"].append(cpu)
    if runs_since(db, last)[0]:
        raise Failed("cronrun --loop ran a job while none was due")
    extra = LOOP_TICKS - 1
    return {
        "series": series,
        "tick_cpu": (median(series[LOOP_TICKS]["cpu"]) - median(series[1]["cpu"])) / extra,
        "tick_wall": (median(series[LOOP_TICKS]["wall"]) - median(series[1]["wall"])) / extra,
    }


def in_process(env, scenario, n, runs, timeout) -> dict:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        scenario,
        "--n",
        str(n),
        "--runs",
        str(runs),
        "--root",
        str(ROOT),
    ]
    try:
        done = subprocess.run(argv, check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"in-process {scenario} N={n}: still running after {timeout:.0f} s") from None
    if done.returncode != 0:
        raise Failed(f"in-process {scenario} N={n}: exit status {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the in-process worker (a child with Django set up) ----------------------------------


def server_pid(connection) -> int | None:
    """The PostgreSQL backend serving this connection (same host), or None (SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def on_cpu(pid: int | str | None = "self") -> float:
    """Seconds a process has run on a CPU (/proc/PID/schedstat; 0 without a process)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9 if pid else 0.0
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_queue_wait(pid: int | str = "self") -> float:
    """Seconds the process has waited, runnable, for a CPU: what the machine's load adds."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def worker(scenario: str, n: int, runs: int) -> None:
    sys.path.insert(0, str(ROOT))
    if Path(__file__).resolve().parent.parent != ROOT:  # see LAUNCH
        sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    import gc

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from crontabber.engine.runner import Runner
    from crontabber.models import Job, Log

    gc.freeze()  # as a cronrun process does before it ticks (Command.run_from_argv)
    statements: list[str] = []

    def counting(execute, sql, params, many, context):
        statements.append(sql.lstrip().split(None, 1)[0].upper())
        return execute(sql, params, many, context)

    def make_due(due: bool) -> None:
        now = timezone.now()
        if due:
            Job.objects.update(next_run=now - dt.timedelta(days=7), next_slot=now - dt.timedelta(days=7))
        else:
            Job.objects.update(next_run=now + dt.timedelta(days=1))

    cpu_spent: dict[str, list[float]] = {"cpu": [], "server_cpu": [], "queued": []}

    def measured(fn, what, due):
        make_due(due)
        last = Log.objects.order_by("-id").values_list("id", flat=True).first() or 0
        statements.clear()
        server = server_pid(connection)
        before = (time.process_time(), on_cpu(server), run_queue_wait())
        started = time.perf_counter()
        with connection.execute_wrapper(counting):
            fn()
        elapsed = time.perf_counter() - started
        after = (time.process_time(), on_cpu(server), run_queue_wait())
        for key, b, a in zip(cpu_spent, before, after, strict=True):
            cpu_spent[key].append(a - b)
        new = Log.objects.filter(id__gt=last)
        ran, jobs = new.count(), new.order_by().values("job").distinct().count()
        expected = n if due else 0
        if ran != expected or jobs != expected:
            raise SystemExit(
                f"{what} (N={n}, {'all' if due else 'none'} due): {ran} slot(s) of {jobs} job(s) ran, "
                f"expected {expected} of {expected}"
            )
        kinds: dict[str, int] = {}
        for kind in statements:
            kinds[kind] = kinds.get(kind, 0) + 1
        return elapsed, len(statements), kinds

    def cronrun():
        call_command("cronrun", stdout=io.StringIO(), stderr=io.StringIO())

    def runner_tick():
        Runner().tick()

    result: dict = {}
    if scenario == "none due":
        # The first tick of the process, with its lazy imports and the scan of the
        # management commands (the connection is already open: make_due() used it).
        result["cold"], result["cold_queries"], _ = measured(cronrun, "cold call_command('cronrun')", False)
    else:
        # Warm the process up with a cheap tick: an all-due tick costs seconds at
        # N=1,000, and its first-time costs are those of the nothing-due tick above.
        measured(cronrun, "warm-up call_command('cronrun')", False)
    ticks, counts, kinds = [], [], {}
    for values in cpu_spent.values():
        values.clear()
    for _ in range(runs):
        elapsed, count, kinds = measured(cronrun, "call_command('cronrun')", scenario == "all due")
        ticks.append(elapsed)
        counts.append(count)
    result.update(tick=ticks, queries=counts, kinds=kinds, **{f"tick_{k}": v for k, v in cpu_spent.items()})
    strays = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in ("crontabber", "webapp", "tests")
        and getattr(module, "__file__", None)
        and not Path(module.__file__).resolve().is_relative_to(ROOT)
    )
    if strays:
        raise SystemExit(f"modules loaded from outside {ROOT}: {', '.join(strays)}")
    if scenario == "none due":
        result["runner_tick"] = [measured(runner_tick, "Runner().tick()", False)[0] for _ in range(runs)]
        check = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
            check.append(time.perf_counter() - started)
        result["check_cold"], result["check"] = check[0], check[1:]
    print(json.dumps(result))


# --- profiles ----------------------------------------------------------------------------


def profile_processes(db, env, n, timeout) -> str:
    """cProfile of the whole cronrun (none due) and check processes at size n: the
    functions with the most cumulative time, and those under crontabber/."""
    out = io.StringIO()
    push_ahead(db)
    with tempfile.TemporaryDirectory() as tmp:
        for which in ("cronrun", "check"):
            path = os.path.join(tmp, f"{which}.prof")
            argv = [sys.executable, "-m", "cProfile", "-o", path, *LAUNCH, str(MANAGE), which]
            run_process(argv, env, timeout)
            stats = pstats.Stats(path, stream=out)
            total = stats.total_tt
            out.write(f"\n### {which}, {db.name}, N={n}, nothing due: {total:.3f} s under cProfile\n\n")
            out.write("Top cumulative (whole process):\n```\n")
            stats.sort_stats("cumulative").print_stats(25)
            out.write("```\nUnder crontabber/ (cumulative):\n```\n")
            stats.sort_stats("cumulative").print_stats(str(ROOT / "crontabber"), 20)
            out.write("```\n")
    text = out.getvalue()
    # pstats prints absolute paths; keep the report readable.
    return text.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "<venv>/")


# --- reporting ---------------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else float("nan")


def spread(values):
    return f"{min(values):.3f}–{max(values):.3f}" if values else ""


def machine() -> list[str]:
    import django

    cpu = cpu_model()
    lines = [
        f"- date: {dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- host: {platform.platform()}, {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))})"
        + (f", {cpu}" if cpu else ""),
        (f"- Python {platform.python_version()}, Django {django.get_version()}, SQLite {sqlite3.sqlite_version}"),
    ]
    try:
        import psycopg

        lines.append(f"- psycopg {psycopg.__version__}")
    except ImportError:
        pass
    return lines


def code_version() -> str:
    """The commit of the project measured, and whether its crontabber/ has local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "crontabber", "webapp", "tests"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(ROOT)
    if not commit:
        return f"{ROOT} (not a git checkout)"
    return f"{ROOT} at {commit}" + (" with uncommitted changes to crontabber/, webapp/ or tests/" if dirty else "")


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def fmt_queries(counts):
    if not counts:
        return "?"
    return str(counts[0]) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"


def ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f}"  # NaN: not measured


def table(rows) -> list[str]:
    head = [
        "db",
        "N",
        "scenario",
        "cronrun wall s",
        "check wall s",
        "ratio",
        "cronrun CPU s",
        "check CPU s",
        "CPU ratio",
        "in-proc tick ms",
        "its CPU ms: runner + server",
        "its wait for a CPU ms",
        "cold tick ms",
        "Runner.tick ms",
        "in-proc check ms",
        "queries",
        "loop tick CPU ms",
        "loop tick wall ms",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    r["db"],
                    str(r["n"]),
                    r["scenario"],
                    f"{r['cronrun_wall']:.3f}",
                    f"{r['check_wall']:.3f}",
                    f"{r['ratio']:.2f}",
                    f"{r['cronrun_cpu']:.3f}",
                    f"{r['check_cpu']:.3f}",
                    f"{r['cpu_ratio']:.2f}",
                    f"{r['tick_ms']:.1f}",
                    f"{ms(r['tick_cpu_ms'])} + {ms(r['server_cpu_ms'])}",
                    ms(r["queued_ms"]),
                    ms(r["cold_ms"]),
                    ms(r["runner_ms"]),
                    ms(r["check_ms"]),
                    r["queries"],
                    ms(r["loop_cpu_ms"]),
                    ms(r["loop_wall_ms"]),
                ]
            )
            + " |"
        )
    return lines


def plain_table(rows) -> str:
    head = ("db", "N", "scenario", "median wall s", "check s", "ratio", "CPU ratio", "tick ms", "queries")
    data = [
        (
            r["db"],
            str(r["n"]),
            r["scenario"],
            f"{r['cronrun_wall']:.3f}",
            f"{r['check_wall']:.3f}",
            f"{r['ratio']:.2f}",
            f"{r['cpu_ratio']:.2f}",
            f"{r['tick_ms']:.1f}",
            r["queries"],
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *data, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += [
        "  ".join(x.rjust(w) if i >= 3 else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths, strict=True)))
        for row in data
    ]
    return "\n".join(out)


def verdicts(rows, sizes) -> list[str]:
    lines = []
    for db in dict.fromkeys(r["db"] for r in rows):
        none = [r for r in rows if r["db"] == db and r["scenario"] == "none due"]
        counts = {r["n"]: r["query_counts"] for r in none}
        values = {c for cs in counts.values() for c in cs}
        constant = len(values) == 1
        lines.append(
            f"- {db}: queries of a tick with nothing due: "
            + ", ".join(f"N={n}: {fmt_queries(c)}" for n, c in counts.items())
            + (" — constant: **met**" if constant else " — not constant: **not met**")
        )
        biggest = max(none, key=lambda r: r["n"], default=None)
        if biggest is not None:
            ok = biggest["ratio"] <= TARGET_RATIO
            cpu_ok = biggest["cpu_ratio"] <= TARGET_RATIO
            lines.append(
                f"- {db}: cronrun / check at N={biggest['n']}, nothing due: wall {biggest['ratio']:.2f}x, "
                f"CPU {biggest['cpu_ratio']:.2f}x, fastest runs {biggest['best_ratio']:.2f}x "
                f"(target ≤ {TARGET_RATIO}x on the median wall time) — "
                + ("**met**" if ok else "**not met**")
                + ("" if ok == cpu_ok else f" on wall time, {'met' if cpu_ok else 'not met'} on CPU time")
            )
            if not math.isnan(biggest.get("loop_cpu_ms", float("nan"))):
                lines.append(
                    f"- {db}: an idle tick of a long-lived `cronrun --loop` at N={biggest['n']}: "
                    f"{biggest['loop_cpu_ms']:.1f} ms CPU, against {biggest['cronrun_cpu'] * 1000:.0f} ms CPU "
                    f"for a `cronrun` process ({biggest['cronrun_cpu'] * 1000 / max(biggest['loop_cpu_ms'], 0.01):.0f}x)"
                )
        due = [r for r in rows if r["db"] == db and r["scenario"] == "all due"]
        for r in [max(due, key=lambda r: r["n"])] if due else []:
            per_job, cpu = r["tick_ms"] / r["n"], (r["tick_cpu_ms"] + r["server_cpu_ms"]) / r["n"]
            lines.append(
                f"- {db}: an all-due tick at N={r['n']}: {r['tick_ms']:.0f} ms in process, {per_job:.3f} ms per job"
                f" (target ≤ {TARGET_MS_PER_JOB} ms at N=10,000) — "
                + ("**met**" if per_job <= TARGET_MS_PER_JOB else "**not met**")
                + f"; its CPU, the runner's and its database server's: {cpu:.3f} ms per job"
                f" ({'within' if cpu <= TARGET_MS_PER_JOB else 'over'} the target), the runner waited"
                f" {r['queued_ms']:.0f} ms for a CPU"
            )
    return lines


def method(args) -> list[str]:
    if args.registry == "frequency":
        jobs = "every job `noop` every 5m"
    else:
        jobs = "jobs cycle over " + ", ".join(f"`{json.dumps(entry)}`" for entry in MIXED)
    return [
        (
            f"- registry: `{args.registry}` ({jobs}), all running the no-op command `noop` of `tests.jobs`;"
            " settings `tests.settings`"
        ),
        (
            "- fresh database per (db, N): SQLite file in a temporary directory, PostgreSQL scratch database;"
            " `manage.py migrate`, then one tick so every job exists and has run"
        ),
        (
            "- none due: every `next_run` pushed a day ahead; all due: before each tick, `next_run` and"
            " `next_slot` a week back (an UPDATE outside the measurement); every tick verified (no run when"
            " none is due, exactly one run of each job when all are)"
        ),
        (
            "- wall: whole processes `python webapp/manage.py cronrun` and `python webapp/manage.py check`,"
            f" alternating, {args.runs} runs each (at least 3 if a series would pass {args.budget:.0f} s: see"
            " Notes), after one untimed warm-up of each with nothing due; medians; ratio = cronrun / check;"
            " CPU = the child's user + system time"
        ),
        (
            f"- in-process (a child process with Django set up): none due, median of {args.inproc_runs}"
            " `call_command('cronrun')` ticks after the first one (cold, reported apart), then"
            f" {args.inproc_runs} `Runner().tick()` and `call_command('check')` (after one untimed); all due,"
            f" {args.inproc_due_runs} tick(s) after a nothing-due warm-up tick"
        ),
        (
            f"- loop tick (none due): `cronrun --loop --interval 0.1` processes of 1 and {LOOP_TICKS} ticks,"
            f" alternating, {max(3, args.runs // 2)} of each; (median of {LOOP_TICKS} - median of 1) /"
            f" {LOOP_TICKS - 1}; the wall figure includes the 0.1 s sleeps (about 0.1 s per tick), the CPU"
            " figure is the cost"
        ),
        (
            "- queries: statements sent by each in-process tick, counted by an execute wrapper on the main"
            " thread's connection (BEGIN/COMMIT not counted; not Django's debug cursor, which renders each"
            " statement); the in-process child freezes what its start-up made (`gc.freeze()`), as a cronrun"
            " process does"
        ),
    ]


def write_results(args, rows, raw, notes, profiles, started, elapsed, load_before) -> None:
    lines = [
        "# cronrun tick benchmark",
        "",
        f"Written by `benchmarks/tick.py` ({' '.join(sys.argv[1:]) or 'defaults'}); do not edit by hand.",
        "",
        "## Machine",
        "",
        *machine(),
        f"- load average before / after: {load_before} / {loadavg()}",
        f"- whole run: {elapsed:.0f} s, started {started:%Y-%m-%d %H:%M:%S} UTC",
        f"- code measured: {code_version()}",
        "",
        "## Method",
        "",
        *method(args),
        "",
        "## Results",
        "",
        *table(rows),
        "",
        "Columns: medians; `ratio` = cronrun wall / check wall; `in-proc tick ms` = warm",
        "`call_command('cronrun')`; `cold tick ms` = first tick of a process; `Runner.tick ms` = the engine",
        "without the command's own registry check; `in-proc check ms` = `call_command('check')` in a warm",
        "process; `queries` = SQL statements of one in-process tick; `its CPU` = that tick's CPU time in the",
        "runner process (time.process_time) and in the PostgreSQL backend serving it (/proc/PID/schedstat,",
        "same host): what the tick costs whatever the machine's load; `its wait for a CPU` = the time the",
        "runner spent runnable but not running (schedstat): what the load added to its wall time.",
        "",
        "## Targets",
        "",
        *verdicts(rows, args.sizes),
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    lines += ["## Raw figures", "", "```", json.dumps(raw, indent=1), "```", ""]
    if profiles:
        lines += ["## Profiles", "", profiles]
    args.output.write_text("\n".join(lines))


# --- the driver --------------------------------------------------------------------------


def benchmark(args) -> int:
    started = dt.datetime.now(UTC)
    t0 = time.perf_counter()
    load_before = loadavg()
    rows, raw, notes, profiles = [], [], [], ""
    failed = False
    for dbname in args.db:
        for n in args.sizes:
            label = f"{dbname} N={n}"
            try:
                db = (
                    SQLiteDatabase(args.tmpdir)
                    if dbname == "sqlite"
                    else PostgresDatabase(args.pg_url, f"crontabber_bench_{os.getpid()}")
                )
            except DATABASE_ERRORS as error:  # no server: say so, go on with the rest
                notes.append(f"{label}: skipped, cannot create the database: {error}")
                print(f"{label}: skipped ({error})", file=sys.stderr)
                failed = True
                continue
            try:
                jobs = registry(n, args.registry)
                env = child_env(db, jobs)
                print(f"{label}: migrate, first tick", file=sys.stderr, flush=True)
                run_process(manage("migrate", "--noinput", "-v0"), env, args.timeout)
                run_process(manage("cronrun"), env, args.timeout)
                if db.scalar("SELECT COUNT(*) FROM crontabber_job") != n:
                    raise Failed(f"{label}: the first tick did not create {n} jobs")
                for scenario in args.scenarios:
                    print(f"{label}: {scenario}", file=sys.stderr, flush=True)
                    if scenario == "none due":
                        push_ahead(db)
                        run_process(manage("check"), env, args.timeout)  # warm-ups, untimed
                        run_process(manage("cronrun"), env, args.timeout)
                    series = wall_series(db, env, n, scenario, args.runs, args.timeout, args.budget)
                    if "cut" in series:
                        notes.append(f"{label} {scenario}: {series['cut']}")
                    inproc_runs = args.inproc_runs if scenario == "none due" else args.inproc_due_runs
                    inproc = in_process(env, scenario, n, inproc_runs, args.timeout * (inproc_runs + 3))
                    loop = {"tick_cpu": float("nan"), "tick_wall": float("nan")}
                    if scenario == "none due":
                        push_ahead(db)  # the in-process run left it so; be explicit
                        loop = loop_series(db, env, max(3, args.runs // 2), args.timeout)
                    cw, kw = median(series["cronrun"]["wall"]), median(series["check"]["wall"])
                    cc, kc = median(series["cronrun"]["cpu"]), median(series["check"]["cpu"])
                    row = {
                        "db": dbname,
                        "n": n,
                        "scenario": scenario,
                        "cronrun_wall": cw,
                        "check_wall": kw,
                        "ratio": cw / kw,
                        "best_ratio": min(series["cronrun"]["wall"]) / min(series["check"]["wall"]),
                        "cronrun_cpu": cc,
                        "check_cpu": kc,
                        "cpu_ratio": cc / kc,
                        "tick_ms": 1000 * median(inproc["tick"]),
                        "tick_cpu_ms": 1000 * median(inproc.get("tick_cpu", [])),
                        "server_cpu_ms": 1000 * median(inproc.get("tick_server_cpu", [])),
                        "queued_ms": 1000 * median(inproc.get("tick_queued", [])),
                        "cold_ms": 1000 * inproc.get("cold", float("nan")),
                        "runner_ms": 1000 * median(inproc.get("runner_tick", [])),
                        "check_ms": 1000 * median(inproc.get("check", [])),
                        "queries": fmt_queries(inproc["queries"]),
                        "query_counts": inproc["queries"],
                        "loop_cpu_ms": 1000 * loop["tick_cpu"],
                        "loop_wall_ms": 1000 * loop["tick_wall"],
                    }
                    rows.append(row)
                    raw.append(
                        {"db": dbname, "n": n, "scenario": scenario, "wall": series, "in_process": inproc, "loop": loop}
                    )
                    print(
                        f"  cronrun {cw:.3f} s (spread {spread(series['cronrun']['wall'])}), "
                        f"check {kw:.3f} s "
                        f"({spread(series['check']['wall'])}), ratio {cw / kw:.2f}, CPU ratio {cc / kc:.2f}, "
                        f"tick {row['tick_ms']:.1f} ms, queries {row['queries']} {inproc['kinds']}",
                        file=sys.stderr,
                        flush=True,
                    )
                if args.profile and n == max(args.sizes):
                    print(f"{label}: profiles", file=sys.stderr, flush=True)
                    profiles += profile_processes(db, env, n, args.timeout * 3)
            except Failed as error:
                notes.append(f"{label}: FAILED: {str(error).splitlines()[0]}")
                print(f"{label}: FAILED: {error}", file=sys.stderr)
                failed = True
            finally:
                try:
                    db.drop()
                except DATABASE_ERRORS as error:
                    print(f"{label}: could not drop the scratch database: {error}", file=sys.stderr)
    elapsed = time.perf_counter() - t0
    print()
    print(plain_table(rows))
    print()
    print("\n".join(verdicts(rows, args.sizes)).replace("**", ""))
    for note in notes:
        print(f"note: {note}")
    write_results(args, rows, raw, notes, profiles, started, elapsed, load_before)
    print(f"\n{args.output} written ({elapsed:.0f} s)")
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of jobs, comma-separated (default 10,100,1000)")
    parser.add_argument("--runs", type=int, default=5, help="timed processes of each kind per case (default 5)")
    parser.add_argument("--inproc-runs", type=int, default=5, help="warm in-process ticks with nothing due (default 5)")
    parser.add_argument(
        "--inproc-due-runs",
        type=int,
        default=1,
        help="in-process ticks with all due, after a warm-up tick (default 1: seconds each at N=1000)",
    )
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (default both)")
    parser.add_argument("--scenarios", default="none,all", help="none (nothing due), all (all due) or both (default)")
    parser.add_argument(
        "--registry",
        choices=("mixed", "frequency"),
        default="mixed",
        help="mixed: interval, daily, cron and zoned jobs; frequency: every job '5m' (default mixed)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name) for the scratch database",
    )
    parser.add_argument("--tmpdir", default=None, help="where the SQLite files go (default: the system's)")
    parser.add_argument(
        "--budget",
        type=float,
        default=90,
        help="seconds one series of runs may take; past 3 runs it stops short of it (default 90)",
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds any one process may take (default 120)")
    parser.add_argument("--profile", action="store_true", help="also cProfile cronrun and check at the largest size")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"where to write the results (default {RESULTS.name})"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="measure the project in this directory (e.g. a `git archive` export) instead of this checkout",
    )
    parser.add_argument("--worker", choices=("none due", "all due"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.root is not None:
        global ROOT, MANAGE
        ROOT = args.root.resolve()
        MANAGE = ROOT / "webapp" / "manage.py"
        if not MANAGE.is_file():
            parser.error(f"--root {args.root}: no webapp/manage.py there")
    if args.worker:
        worker(args.worker, args.n, args.runs)
        return 0
    if Path(__file__).resolve().parent.parent != ROOT:
        boot_dir = tempfile.mkdtemp(prefix="crontabber-bench-boot-")
        (Path(boot_dir) / "boot.py").write_text(BOOT)
        LAUNCH.append(str(Path(boot_dir) / "boot.py"))
        atexit.register(shutil.rmtree, boot_dir, True)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    names = {"none": "none due", "all": "all due"}
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not wanted or set(wanted) - set(names):
        parser.error(f"--scenarios {args.scenarios}: give none, all or none,all")
    args.scenarios = [names[s] for s in wanted]
    unknown = set(args.db) - {"sqlite", "postgres"}
    if unknown or args.runs < 1 or args.inproc_runs < 1 or args.inproc_due_runs < 1 or not args.sizes:
        parser.error(f"bad arguments: --db {','.join(sorted(unknown))}" if unknown else "bad arguments")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
