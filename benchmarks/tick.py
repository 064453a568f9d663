#!/usr/bin/env python
"""What one ``cronrun`` tick costs, in wall time and SQL queries.

For each database (SQLite, PostgreSQL) and size N (10, 100, 1,000 jobs running the test
app's no-op ``noop``), on a fresh database, with nothing due (every ``next_run`` a day
ahead) and with all due (``next_run``/``next_slot`` a week back before each tick, outside
the measurement): whole ``cronrun`` processes against ``manage.py check``; the tick in
process (its wall time, its CPU in the runner and its PostgreSQL backend, its wait for a
CPU); its SQL statements; one more idle tick of a long-lived ``cronrun --loop``. Every
tick is verified from the database. The method in detail: method() below, written into
the results. Issue 14's targets: idle ≤ 1.1x ``check`` with a constant number of
queries, all due ≤ 0.35 ms per job at N = 10,000 on PostgreSQL.

    .venv/bin/python benchmarks/tick.py                      # 10,100,1000 x sqlite,postgres
    .venv/bin/python benchmarks/tick.py --sizes 100 --db sqlite --runs 3 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import sys
import time
from pathlib import Path

import common
from common import UTC, Failed, Tree, fmt, median, met, run, schedstat

TARGET_RATIO = 1.1  # issue 14: cronrun / check with nothing due, at the largest N
TARGET_MS_PER_JOB = 0.35  # issue 14: an all-due tick per job at N = 10,000 on PostgreSQL
LOOP_TICKS = 21

# Non-backfill schedules of every kind the registry knows, cycled over the jobs. No
# backfill: an "all due" tick must run each job exactly once.
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


def last_log_id(db) -> int:
    return db.scalar("SELECT COALESCE(MAX(id), 0) FROM crontabber_log")


def check_runs(db, last_id: int, expected: int, what: str) -> None:
    """Log rows (attempts) written since ``last_id``: ``expected`` of as many jobs."""
    ran, jobs = db.execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM crontabber_log WHERE id > %s", last_id)[0]
    if ran != expected or jobs != expected:
        raise Failed(f"{what}: {ran} slot(s) of {jobs} job(s) ran, expected {expected} of {expected}")


def push_ahead(db) -> None:
    """Nothing due: every next_run a day ahead (next_slot left alone)."""
    db.execute("UPDATE crontabber_job SET next_run = %s", dt.datetime.now(UTC) + dt.timedelta(days=1))


def make_all_due(db) -> None:
    past = dt.datetime.now(UTC) - dt.timedelta(days=7)
    db.execute("UPDATE crontabber_job SET next_run = %s, next_slot = %s", past, past)


class Case:
    """One database and size: the tree's children on it, with the registry."""

    def __init__(self, tree: Tree, db, n: int, args):
        self.tree, self.db, self.n, self.args = tree, db, n, args
        self.env = tree.env(db.url, registry(n, args.registry))
        self.label = f"{db.name} N={n}"

    def manage(self, *argv: str) -> dict:
        return run(self.tree.manage_argv(*argv), self.env, self.args.timeout, cwd=self.tree.root)

    def wall_series(self, scenario: str) -> dict:
        """Alternating runs of check and cronrun, every cronrun verified. Past 3 pairs, a pair
        that would end beyond the budget is not started (the count is reported)."""
        series = {"check": {"wall": [], "cpu": []}, "cronrun": {"wall": [], "cpu": []}}
        started, runs, budget = time.perf_counter(), self.args.runs, self.args.budget
        for i in range(runs):
            spent = time.perf_counter() - started
            if i >= 3 and spent + spent / i > budget:
                series["cut"] = f"{i} of {runs} runs: the series would have passed its {budget:.0f} s budget"
                break
            for which in ("check", "cronrun") if i % 2 == 0 else ("cronrun", "check"):
                due = which == "cronrun" and scenario == "all due"
                if due:
                    make_all_due(self.db)
                last = last_log_id(self.db)
                done = self.manage(which)
                check_runs(self.db, last, self.n if due else 0, f"{self.label} {scenario} {which}")
                series[which]["wall"].append(done["wall"])
                series[which]["cpu"].append(done["cpu"])
        return series

    def loop_series(self, runs: int) -> dict:
        """``cronrun --loop`` with nothing due: processes of 1 and LOOP_TICKS ticks, alternating."""
        series = {1: {"wall": [], "cpu": []}, LOOP_TICKS: {"wall": [], "cpu": []}}
        last = last_log_id(self.db)
        for i in range(runs):
            for ticks in (1, LOOP_TICKS) if i % 2 == 0 else (LOOP_TICKS, 1):
                done = self.manage("cronrun", "--loop", "--interval", "0.1", "--max-ticks", str(ticks))
                series[ticks]["wall"].append(done["wall"])
                series[ticks]["cpu"].append(done["cpu"])
        check_runs(self.db, last, 0, f"{self.label} cronrun --loop")

        def per_tick(key):
            return (median(series[LOOP_TICKS][key]) - median(series[1][key])) / (LOOP_TICKS - 1)

        return {"series": series, "tick_cpu": per_tick("cpu"), "tick_wall": per_tick("wall")}

    def in_process(self, scenario: str, runs: int) -> dict:
        argv = self.tree.argv(Path(__file__).resolve(), "--worker", scenario, "--n", str(self.n), "--runs", str(runs))
        done = run([*argv, "--root", str(self.tree.root)], self.env, self.args.timeout * (runs + 3),
                   cwd=self.tree.root, capture=True)  # fmt: skip
        return json.loads(done["stdout"].splitlines()[-1])

    def scenario(self, scenario: str) -> tuple[dict, dict]:
        if scenario == "none due":
            push_ahead(self.db)
            self.manage("check")  # warm-ups, untimed
            self.manage("cronrun")
        series = self.wall_series(scenario)
        inproc = self.in_process(
            scenario, self.args.inproc_runs if scenario == "none due" else self.args.inproc_due_runs
        )
        loop = {"tick_cpu": float("nan"), "tick_wall": float("nan")}
        if scenario == "none due":
            push_ahead(self.db)
            loop = self.loop_series(max(3, self.args.runs // 2))
        return row(self.db.name, self.n, scenario, series, inproc, loop), {
            "wall": series,
            "in_process": inproc,
            "loop": loop,
        }


def row(db: str, n: int, scenario: str, series: dict, inproc: dict, loop: dict) -> dict:
    cw, kw = median(series["cronrun"]["wall"]), median(series["check"]["wall"])
    cc, kc = median(series["cronrun"]["cpu"]), median(series["check"]["cpu"])

    def ms(key):
        value = inproc.get(key, float("nan"))
        return 1000 * (median(value) if isinstance(value, list) else value)

    return {
        "db": db, "n": n, "scenario": scenario, "cut": series.get("cut"),
        "cronrun_wall": cw, "check_wall": kw, "ratio": cw / kw,
        "best_ratio": min(series["cronrun"]["wall"]) / min(series["check"]["wall"]),
        "cronrun_cpu": cc, "check_cpu": kc, "cpu_ratio": cc / kc,
        "tick_ms": ms("tick"), "tick_cpu_ms": ms("tick_cpu"), "server_cpu_ms": ms("tick_server_cpu"),
        "queued_ms": ms("tick_queued"), "cold_ms": ms("cold"), "runner_ms": ms("runner_tick"), "check_ms": ms("check"),
        "query_counts": inproc["queries"], "queries": fmt_queries(inproc["queries"]), "kinds": inproc["kinds"],
        "loop_cpu_ms": 1000 * loop["tick_cpu"], "loop_wall_ms": 1000 * loop["tick_wall"],
    }  # fmt: skip


# --- the in-process worker (a child with Django set up) ----------------------------------


class Worker:
    """Ticks of this process, each made due (or not) first, timed, counted and verified."""

    def __init__(self, n: int):
        from django.db import connection

        self.n, self.connection = n, connection
        self.statements: list[str] = []
        self.spent: dict[str, list[float]] = {"cpu": [], "server_cpu": [], "queued": []}
        self.server = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.server = cursor.fetchone()[0]

    def counting(self, execute, sql, params, many, context):
        self.statements.append(sql.lstrip().split(None, 1)[0].upper())
        return execute(sql, params, many, context)

    def usage(self) -> tuple[float, float, float]:
        return time.process_time(), schedstat(self.server, 0), schedstat("self", 1)

    def measured(self, fn, what: str, due: bool):
        from django.utils import timezone

        from crontabber.models import Job, Log

        now = timezone.now()
        if due:
            Job.objects.update(next_run=now - dt.timedelta(days=7), next_slot=now - dt.timedelta(days=7))
        else:
            Job.objects.update(next_run=now + dt.timedelta(days=1))
        last = Log.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.statements.clear()
        before, started = self.usage(), time.perf_counter()
        with self.connection.execute_wrapper(self.counting):
            fn()
        elapsed = time.perf_counter() - started
        for key, b, a in zip(self.spent, before, self.usage(), strict=True):
            self.spent[key].append(a - b)
        new = Log.objects.filter(id__gt=last)
        ran, jobs, expected = new.count(), new.order_by().values("job").distinct().count(), self.n if due else 0
        if ran != expected or jobs != expected:
            raise SystemExit(f"{what} (N={self.n}): {ran} slot(s) of {jobs} job(s) ran, expected {expected}")
        kinds: dict[str, int] = {}
        for kind in self.statements:
            kinds[kind] = kinds.get(kind, 0) + 1
        return elapsed, len(self.statements), kinds


def cronrun() -> None:
    from django.core.management import call_command

    call_command("cronrun", stdout=io.StringIO(), stderr=io.StringIO())


def worker(scenario: str, n: int, runs: int, root: Path) -> None:
    sys.path.insert(0, str(root))
    import gc

    import django

    django.setup()
    from django.core.management import call_command

    try:
        from crontabber.engine.runner import Runner
    except ImportError:  # a tree from before the engine moved to crontabber/engine/ (--root, --rev)
        from crontabber.runner import Runner

    gc.freeze()  # as a cronrun process does before it ticks (Command.run_from_argv)
    w = Worker(n)
    result: dict = {}
    if scenario == "none due":  # the first tick of the process: lazy imports, the commands' scan
        result["cold"], result["cold_queries"], _ = w.measured(cronrun, "cold call_command('cronrun')", False)
    else:  # an all-due tick costs seconds at N=1,000: warm up with a cheap one
        w.measured(cronrun, "warm-up call_command('cronrun')", False)
    for values in w.spent.values():
        values.clear()
    ticks = [w.measured(cronrun, "call_command('cronrun')", scenario == "all due") for _ in range(runs)]
    result.update(tick=[t[0] for t in ticks], queries=[t[1] for t in ticks], kinds=ticks[-1][2])
    result.update({f"tick_{k}": v for k, v in w.spent.items()})
    if scenario == "none due":
        result["runner_tick"] = [w.measured(lambda: Runner().tick(), "Runner().tick()", False)[0] for _ in range(runs)]
        check = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
            check.append(time.perf_counter() - started)
        result["check_cold"], result["check"] = check[0], check[1:]
    print(json.dumps(result))


# --- reporting ---------------------------------------------------------------------------


def fmt_queries(counts) -> str:
    if not counts:
        return "?"
    return str(counts[0]) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"


COLUMNS = [
    ("db", lambda r: r["db"]),
    ("N", lambda r: str(r["n"])),
    ("scenario", lambda r: r["scenario"]),
    ("cronrun wall s", lambda r: f"{r['cronrun_wall']:.3f}"),
    ("check wall s", lambda r: f"{r['check_wall']:.3f}"),
    ("ratio", lambda r: f"{r['ratio']:.2f}"),
    ("cronrun CPU s", lambda r: f"{r['cronrun_cpu']:.3f}"),
    ("check CPU s", lambda r: f"{r['check_cpu']:.3f}"),
    ("CPU ratio", lambda r: f"{r['cpu_ratio']:.2f}"),
    ("in-proc tick ms", lambda r: f"{r['tick_ms']:.1f}"),
    ("its CPU ms: runner + server", lambda r: f"{fmt(r['tick_cpu_ms'])} + {fmt(r['server_cpu_ms'])}"),
    ("its wait for a CPU ms", lambda r: fmt(r["queued_ms"])),
    ("cold tick ms", lambda r: fmt(r["cold_ms"])),
    ("Runner.tick ms", lambda r: fmt(r["runner_ms"])),
    ("in-proc check ms", lambda r: fmt(r["check_ms"])),
    ("queries", lambda r: r["queries"]),
    ("loop tick CPU ms", lambda r: fmt(r["loop_cpu_ms"])),
    ("loop tick wall ms", lambda r: fmt(r["loop_wall_ms"])),
]


def table(rows) -> list[str]:
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return lines + ["| " + " | ".join(cell(r) for _, cell in COLUMNS) + " |" for r in rows]


def idle_verdicts(db: str, none: list[dict]) -> list[str]:
    counts = {r["n"]: r["query_counts"] for r in none}
    constant = len({c for cs in counts.values() for c in cs}) == 1
    lines = [f"- {db}: queries of a tick with nothing due: " + ", ".join(f"N={n}: {fmt_queries(c)}" for n, c in
             counts.items()) + f" — {'constant' if constant else 'not constant'}: {met(constant)}"]  # fmt: skip
    r = max(none, key=lambda r: r["n"])
    ok, cpu_ok = r["ratio"] <= TARGET_RATIO, r["cpu_ratio"] <= TARGET_RATIO
    lines.append(
        f"- {db}: cronrun / check at N={r['n']}, nothing due: wall {r['ratio']:.2f}x, CPU {r['cpu_ratio']:.2f}x, "
        f"fastest runs {r['best_ratio']:.2f}x (target ≤ {TARGET_RATIO}x on the median wall time) — {met(ok)}"
        + ("" if ok == cpu_ok else f" on wall time, {'met' if cpu_ok else 'not met'} on CPU time")
    )
    if not math.isnan(r["loop_cpu_ms"]):
        lines.append(f"- {db}: an idle tick of a long-lived `cronrun --loop` at N={r['n']}: {r['loop_cpu_ms']:.1f} ms "
                     f"CPU, against {r['cronrun_cpu'] * 1000:.0f} ms CPU for a `cronrun` process "
                     f"({r['cronrun_cpu'] * 1000 / max(r['loop_cpu_ms'], 0.01):.0f}x)")  # fmt: skip
    return lines


def due_verdict(db: str, r: dict) -> str:
    per_job, cpu = r["tick_ms"] / r["n"], (r["tick_cpu_ms"] + r["server_cpu_ms"]) / r["n"]
    return (
        f"- {db}: an all-due tick at N={r['n']}: {r['tick_ms']:.0f} ms in process, {per_job:.3f} ms per job (target "
        f"≤ {TARGET_MS_PER_JOB} ms at N=10,000) — {met(per_job <= TARGET_MS_PER_JOB)}; its CPU, the runner's and its "
        f"database server's: {cpu:.3f} ms per job ({'within' if cpu <= TARGET_MS_PER_JOB else 'over'} the target), "
        f"the runner waited {r['queued_ms']:.0f} ms for a CPU"
    )


def verdicts(rows) -> list[str]:
    lines = []
    for db in dict.fromkeys(r["db"] for r in rows):
        none = [r for r in rows if r["db"] == db and r["scenario"] == "none due"]
        due = [r for r in rows if r["db"] == db and r["scenario"] == "all due"]
        lines += idle_verdicts(db, none) if none else []
        lines += [due_verdict(db, max(due, key=lambda r: r["n"]))] if due else []
    return lines


def method(args) -> list[str]:
    if args.registry == "frequency":
        jobs = "every job `noop` every 5m"
    else:
        jobs = "jobs cycle over " + ", ".join(f"`{json.dumps(entry)}`" for entry in MIXED)
    return [
        f"- registry: `{args.registry}` ({jobs}), all running the no-op command `noop` of `tests.jobs`; settings "
        "`tests.settings`",
        "- fresh database per (db, N): SQLite file in a temporary directory, PostgreSQL scratch database; "
        "`manage.py migrate`, then one tick so every job exists and has run",
        "- none due: every `next_run` pushed a day ahead; all due: before each tick, `next_run` and `next_slot` a "
        "week back (an UPDATE outside the measurement); every tick verified (no run when none is due, exactly one "
        "run of each job when all are)",
        "- wall: whole processes `python webapp/manage.py cronrun` and `python webapp/manage.py check`, alternating, "
        f"{args.runs} runs each (at least 3 if a series would pass {args.budget:.0f} s: see Notes), after one untimed "
        "warm-up of each with nothing due; medians; ratio = cronrun / check; CPU = the child's user + system time",
        f"- in-process (a child process with Django set up): none due, median of {args.inproc_runs} "
        f"`call_command('cronrun')` ticks after the first one (cold, reported apart), then {args.inproc_runs} "
        f"`Runner().tick()` and `call_command('check')` (after one untimed); all due, {args.inproc_due_runs} tick(s) "
        "after a nothing-due warm-up tick",
        f"- loop tick (none due): `cronrun --loop --interval 0.1` processes of 1 and {LOOP_TICKS} ticks, alternating, "
        f"{max(3, args.runs // 2)} of each; (median of {LOOP_TICKS} - median of 1) / {LOOP_TICKS - 1}; the wall "
        "figure includes the 0.1 s sleeps (about 0.1 s per tick), the CPU figure is the cost",
        "- queries: statements sent by each in-process tick, counted by an execute wrapper on the main thread's "
        "connection (BEGIN/COMMIT not counted; not Django's debug cursor, which renders each statement); the "
        "in-process child freezes what its start-up made (`gc.freeze()`), as a cronrun process does",
    ]


LEGEND = """\
Columns: medians; `ratio` = cronrun wall / check wall; `in-proc tick ms` = warm
`call_command('cronrun')`; `cold tick ms` = first tick of a process; `Runner.tick ms` = the engine
without the command's own registry check; `in-proc check ms` = `call_command('check')` in a warm
process; `queries` = SQL statements of one in-process tick; `its CPU` = that tick's CPU time in the
runner process (time.process_time) and in the PostgreSQL backend serving it (/proc/PID/schedstat,
same host): what the tick costs whatever the machine's load; `its wait for a CPU` = the time the
runner spent runnable but not running (schedstat): what the load added to its wall time."""


def report(args, tree, rows, raw, notes, started, load_before, pg_version) -> list[str]:
    lines = [*common.header("cronrun tick benchmark", started, load_before, tree, pg_version), "## Method", "",
             *method(args), "", "## Results", "", *table(rows), "", LEGEND, "", "## Targets", "", *verdicts(rows), ""]  # fmt: skip
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return lines + ["## Raw figures", "", "```", json.dumps(raw, indent=1), "```"]


# --- the driver --------------------------------------------------------------------------


def measure(tree: Tree, dbname: str, n: int, args, rows: list, raw: list) -> str | None:
    """Every scenario of one database and size; the PostgreSQL version, if any."""
    db = common.scratch_database(dbname, args.pg_url, "tick")
    try:
        case = Case(tree, db, n, args)
        print(f"{case.label}: migrate, first tick", file=sys.stderr, flush=True)
        case.manage("migrate", "--noinput", "-v0")
        tree.check_imports(case.env)
        case.manage("cronrun")
        if db.scalar("SELECT COUNT(*) FROM crontabber_job") != n:
            raise Failed(f"{case.label}: the first tick did not create {n} jobs")
        for scenario in args.scenarios:
            r, figures = case.scenario(scenario)
            rows.append(r)
            raw.append({"db": dbname, "n": n, "scenario": scenario, **figures})
            print(f"{case.label} {scenario}: cronrun {r['cronrun_wall']:.3f} s, check {r['check_wall']:.3f} s, "
                  f"ratio {r['ratio']:.2f}, CPU ratio {r['cpu_ratio']:.2f}, tick {r['tick_ms']:.1f} ms, "
                  f"queries {r['queries']} {r['kinds']}", file=sys.stderr, flush=True)  # fmt: skip
        return db.version()
    finally:
        db.drop()


def benchmark(args) -> int:
    started, load_before, tree = dt.datetime.now(UTC), common.loadavg(), Tree.from_args(args)
    rows, raw, notes, pg_version = [], [], [], None
    for dbname in args.db:
        for n in args.sizes:
            try:
                pg_version = measure(tree, dbname, n, args, rows, raw) or pg_version
            except (Failed, *common.DB_ERRORS) as error:  # no server, a failed run: say so, go on
                notes.append(f"{dbname} N={n}: FAILED: {str(error).splitlines()[0]}")
                print(f"{dbname} N={n}: FAILED: {error}", file=sys.stderr)
    notes += [f"{r['db']} N={r['n']} {r['scenario']}: {r['cut']}" for r in rows if r["cut"]]
    print("\n".join([*table(rows), "", *verdicts(rows), *[f"note: {n}" for n in notes]]).replace("**", ""))
    common.write(args, report(args, tree, rows, raw, notes, started, load_before, pg_version))
    return 1 if any("FAILED" in note for note in notes) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of jobs, comma-separated (default 10,100,1000)")
    parser.add_argument("--runs", type=int, default=5, help="timed processes of each kind per case (default 5)")
    parser.add_argument("--inproc-runs", type=int, default=5, help="warm in-process ticks with nothing due (default 5)")
    parser.add_argument("--inproc-due-runs", type=int, default=1,
                        help="in-process ticks with all due, after a warm-up tick (default 1: seconds each at N=1000)")  # fmt: skip
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (default both)")
    parser.add_argument("--scenarios", default="none,all", help="none (nothing due), all (all due) or both (default)")
    parser.add_argument("--registry", choices=("mixed", "frequency"), default="mixed",
                        help="mixed: interval, daily, cron and zoned jobs; frequency: every job '5m' (default mixed)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=90, help="seconds one series may take past 3 runs (default 90)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds any one process may take (default 120)")
    common.add_options(parser, "results-tick.md")
    parser.add_argument("--worker", choices=("none due", "all due"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.n, args.runs, args.root.resolve())
        return 0
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    names = {"none": "none due", "all": "all due"}
    args.scenarios = [names.get(s.strip(), s) for s in args.scenarios.split(",") if s.strip()]
    if set(args.scenarios) - set(names.values()) or not args.sizes or min(args.runs, args.inproc_runs) < 1:
        parser.error("bad arguments: --scenarios none, all or none,all; --sizes and --runs at least one")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
