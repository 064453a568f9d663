#!/usr/bin/env python3
"""Falling far behind is cheap: a ``*/5 * * * *`` backfill job months behind.

One job, ``{"name": "backfill", "cmd": "noop", "cron": "*/5 * * * *", "backfill": True}``
(``noop`` accepts ``--run-time``), whose Job row says its next slot is a day, a month, six
months or a year ago (365 days: 105,120 missed slots). For each backlog, in the throwaway
project of benchmarks/compare.py (Django 5.0 venv, a copy of this checkout's crontabber),
on SQLite and PostgreSQL, alternating:

* ``manage.py cronrun --dry-run`` (the job as above, and with ``max_backfill: 100``) and
  ``manage.py cronlist``: whole-process wall time, against ``manage.py version`` (Django's
  own start-up: settings and ``django.setup()``, no command) and ``manage.py check`` with
  the same registry; medians of --runs; peak RSS. Target: under 0.5 s beyond start-up;
* a real tick with ``max_backfill: 100`` (``manage.py cronrun``): it runs the 100 oldest
  slots whatever the backlog; wall time, peak RSS of the process, and tracemalloc's peak
  of the tick in a separate child. Target: memory that does not grow with the backlog;
* the tick without ``max_backfill`` (--unbounded: 1 day, 4 days and the whole year,
  105,120 slots in one tick): every due slot runs, its rows opened and its outcomes
  written a batch at a time. Targets (issue 14): at most 0.5 ms per slot beyond start-up,
  and the year's peak RSS within 10 MB of the 1-day backlog's.

Every command is verified: the dry run names the backlog's first slot and writes nothing;
the tick writes exactly 100 successful attempts and moves the job's next slot 100 slots on
(without max_backfill: every slot of the backlog); the row is set back before each
measurement, and the Log table emptied before each tick without max_backfill (SQL
outside the measurement).

Usage: python3.11 benchmarks/backfill.py [--db sqlite,postgres] [--runs 5]
Results: a table on stdout and benchmarks/results-backfill.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  the project, venv, databases and child processes
from compare import UTC, Failed, PostgresDatabase, Project, SQLiteDatabase, Tool, f1, f3, loadavg, median  # noqa: E402

RESULTS = compare.HERE / "results-backfill.md"
STEP = dt.timedelta(minutes=5)
JOB = {"name": "backfill", "cmd": "noop", "cron": "*/5 * * * *", "backfill": True}
BOUND = 100
BACKLOGS = {"1d": ("1 day", 1), "2d": ("2 days", 2), "4d": ("4 days", 4), "30d": ("1 month", 30),
            "182d": ("6 months", 182), "365d": ("1 year", 365)}  # fmt: skip
TARGET_S = 0.5  # beyond Django's start-up
RSS_SLACK_MB = 1.0  # "does not grow": peak RSS within this of the smallest backlog's
UNBOUNDED_MS_PER_SLOT = 0.5  # a tick without max_backfill: at most this per slot beyond start-up...
UNBOUNDED_RSS_SLACK_MB = 10.0  # ...and a year's peak RSS within this of a day's
TRACED_SLACK = 0.10  # ... and tracemalloc's peak within 10 %


def registry(bounded: bool) -> str:
    return json.dumps([{**JOB, "max_backfill": BOUND} if bounded else JOB])


def floor_slot(now: dt.datetime) -> dt.datetime:
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


class Backlog:
    """The job's row set ``days`` behind; the slots it then has to run."""

    def __init__(self, key: str, days: float):
        self.key, self.days = key, days
        self.label = BACKLOGS.get(key, (key, days))[0]

    def set(self, db) -> dt.datetime:
        now = dt.datetime.now(UTC)
        start = floor_slot(now) - dt.timedelta(days=self.days) + STEP
        db.execute(
            "UPDATE crontabber_job SET next_slot = %s, next_run = %s, last_success = %s, last_run = %s,"
            " first_run = %s, error_count = 0, last_error = '', claimed_by = '', claimed_at = NULL,"
            " claim_expires = NULL WHERE name = 'backfill'",
            start, start, start - STEP, start - STEP, start - dt.timedelta(days=400),
        )  # fmt: skip
        self.start = start
        self.slots = (floor_slot(now) - start) // STEP + 1
        return start


def iso(instant: dt.datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def log_count(db) -> int:
    return db.scalar("SELECT COUNT(*) FROM crontabber_log")


def next_slot(db) -> dt.datetime:
    value = db.scalar("SELECT next_slot FROM crontabber_job WHERE name = 'backfill'")
    if isinstance(value, str):  # SQLite: naive UTC text
        value = dt.datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def parse_instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


class Measure:
    """One kind of process measured at each backlog, with its verification."""

    def __init__(self, key: str, argv: list[str], bounded: bool, writes: int = 0):
        self.key, self.argv, self.bounded, self.writes = key, argv, bounded, writes

    def tool(self) -> Tool:
        return Tool(self.key, self.key, self.argv, {"CMP_REGISTRY": "none", "CMP_JOBS": registry(self.bounded)})

    def verify(self, db, backlog: Backlog, before: int, stdout: str | None, what: str) -> None:
        written = log_count(db) - before
        # An unbounded tick that starts after the next 5-minute mark also runs that slot.
        if self.key == "tick unbounded" and written == self.writes + 1:
            self.writes += 1
        if written != self.writes:
            raise Failed(f"{what}: {written} attempt(s) written, expected {self.writes}")
        if self.writes:
            ok = db.scalar("SELECT COUNT(*) FROM (SELECT outcome FROM crontabber_log ORDER BY id DESC LIMIT %s) x"
                           " WHERE outcome = 'success'", self.writes)  # fmt: skip
            moved = next_slot(db)
            expected = backlog.start + self.writes * STEP
            if ok != self.writes or moved != expected:
                raise Failed(f"{what}: {ok} successful, next slot {moved}; expected {self.writes}, {expected}")
        elif next_slot(db) != backlog.start:
            raise Failed(f"{what}: the job's next slot moved")
        if stdout is None:
            return
        if self.key.startswith("dry-run"):
            lines = stdout.strip().splitlines()
            first = re.match(r"would run backfill for (\S+)$", lines[0]) if lines else None
            if not first or parse_instant(first[1]) != backlog.start:
                raise Failed(f"{what}: first line {lines[:1]}, expected the slot {iso(backlog.start)}")
            if backlog.slots > 20 and not lines[-1].startswith("... and more slots of backfill"):
                raise Failed(f"{what}: last line {lines[-1]!r}")
        if self.key == "cronlist" and "backfill" not in stdout:
            raise Failed(f"{what}: the job is not listed")


MEASURES = [
    Measure("startup", ["version"], False),
    Measure("check", ["check"], False),
    Measure("dry-run", ["cronrun", "--dry-run"], False),
    Measure("dry-run bounded", ["cronrun", "--dry-run"], True),
    Measure("cronlist", ["cronlist"], False),
    Measure("tick bounded", ["cronrun"], True, writes=BOUND),
]


def measure_db(project: Project, db, backlogs: list[Backlog], unbounded: list[Backlog], args, log) -> dict:
    env0 = project.env(db, 0, {"CMP_REGISTRY": "none", "CMP_JOBS": registry(False)})
    project.run(["manage.py", "migrate", "--noinput", "-v", "0"], env0, args.timeout)
    # A new cron job's first tick creates its row (and runs its first slot if that is this minute).
    project.run(["manage.py", "cronrun"], env0, args.timeout)
    if db.scalar("SELECT COUNT(*) FROM crontabber_job WHERE name = 'backfill'") != 1:
        raise Failed("the first tick did not create the job's row")
    data: dict = {b.key: {m.key: {"wall": [], "cpu": [], "rss_mb": []} for m in MEASURES} for b in backlogs}
    for m in MEASURES:  # untimed warm-up
        backlogs[0].set(db)
        project.run(["manage.py", *m.argv], project.env(db, 0, m.tool().env), args.timeout)

    def one(backlog: Backlog, m: Measure, what: str, fn):
        backlog.set(db)
        before = log_count(db)
        done = fn()
        output = done["stdout"] if what == "process" else None  # a probe prints its figures instead
        m.verify(db, backlog, before, output, f"{db.name} {backlog.label} {m.key} {what}")
        return done

    started = time.perf_counter()
    for i in range(args.runs):
        if i >= 3 and time.perf_counter() - started > args.budget:
            data["cut"] = f"{i} of {args.runs} rounds (budget {args.budget:.0f} s)"
            break
        order = backlogs[i % len(backlogs) :] + backlogs[: i % len(backlogs)]
        for backlog in order:
            measures = MEASURES[i % len(MEASURES) :] + MEASURES[: i % len(MEASURES)]
            for m in measures:
                env = project.env(db, 0, m.tool().env)
                done = one(backlog, m, "process",
                           lambda: project.run(["manage.py", *m.argv], env, args.timeout, capture=True))  # fmt: skip
                for key in ("wall", "cpu", "rss_mb"):
                    data[backlog.key][m.key][key].append(done[key])
    # In-process (a fresh child each): tracemalloc's peak and the time of the command itself.
    for backlog in backlogs:
        for m in MEASURES[2:]:
            env = project.env(db, 0, m.tool().env)
            got = {}
            for mode in ("tick", "tracemalloc"):
                done = one(backlog, m, mode, lambda: project.run(["probe.py", mode, *m.argv], env, args.timeout,
                                                                 capture=True))  # fmt: skip
                got.update(json.loads(done["stdout"].strip().splitlines()[-1]))
            data[backlog.key][m.key].update(inproc_s=got["tick"], traced_mb=got["traced_peak"] / 2**20,
                                            growth_mb=got["rss_growth_kb"] / 1024)  # fmt: skip
        log(f"{db.name} {backlog.label}: " + ", ".join(
            f"{m.key} {median(data[backlog.key][m.key]['wall']):.3f} s" for m in MEASURES))  # fmt: skip
    # Without max_backfill, small backlogs: every due slot runs in one tick.
    data["unbounded"] = {}
    tick = Measure("tick unbounded", ["cronrun"], False)
    env = project.env(db, 0, tick.tool().env)

    def unbounded_tick(backlog: Backlog, what: str, argv: list[str]) -> dict:
        db.execute("DELETE FROM crontabber_log")
        backlog.set(db)
        tick.writes = backlog.slots
        return one(backlog, tick, what, lambda: project.run(argv, env, args.timeout, capture=True))

    for i in range(args.unbounded_runs):  # backlogs alternate, rotating each round
        for backlog in unbounded[i % len(unbounded) :] + unbounded[: i % len(unbounded)]:
            done = unbounded_tick(backlog, "process", ["manage.py", "cronrun"])
            u = data["unbounded"].setdefault(backlog.key, {"slots": backlog.slots, "wall": [], "cpu": [], "rss_mb": []})
            for key in ("wall", "cpu", "rss_mb"):
                u[key].append(done[key])
    for backlog in unbounded:
        u = data["unbounded"][backlog.key]
        if backlog.slots <= args.traced_max_slots:
            done = unbounded_tick(backlog, "tracemalloc", ["probe.py", "tracemalloc", "cronrun"])
            u["traced_mb"] = json.loads(done["stdout"].strip().splitlines()[-1])["traced_peak"] / 2**20
        log(f"{db.name} unbounded tick, {backlog.label} ({backlog.slots} slots): {median(u['wall']):.2f} s, "
            f"{median(u['rss_mb']):.1f} MB, tracemalloc {u.get('traced_mb', float('nan')):.2f} MB")  # fmt: skip
    for key in ("wall", "cpu"):  # Django's start-up, of every round
        data[f"startup {key}"] = median([value for b in backlogs for value in data[b.key]["startup"][key]])
    return data


def report_rows(dbname: str, data: dict, backlogs: list[Backlog]) -> list[dict]:
    rows = []
    for b in backlogs:
        d = data[b.key]
        med = {m.key: median(d[m.key]["wall"]) for m in MEASURES}
        rows.append({
            "db": dbname, "backlog": b.label, "slots": b.slots, "startup": med["startup"], "check": med["check"],
            **{f"{k} beyond": med[k] - med["startup"] for k in ("dry-run", "dry-run bounded", "cronlist")},
            **{f"{k} wall": med[k] for k in med},
            **{f"{k} rss": median(d[k]["rss_mb"]) for k in ("dry-run", "cronlist", "tick bounded")},
            **{f"{k} inproc": d[k].get("inproc_s", float("nan")) for k in ("dry-run", "cronlist", "tick bounded")},
            **{f"{k} traced": d[k].get("traced_mb", float("nan")) for k in ("dry-run", "cronlist", "tick bounded")},
        })  # fmt: skip
    return rows


def tables(rows: list[dict]) -> list[str]:
    out = ["### Dry run and cronlist (whole processes; s, medians)", ""]
    head = ["db", "behind", "missed slots", "start-up", "check", "dry-run", "dry-run − start-up",
            "dry-run (max_backfill 100) − start-up", "cronlist", "cronlist − start-up", "in-process ms: dry-run / cronlist"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([
            r["db"], r["backlog"], f"{r['slots']:,}", f3(r["startup"]), f3(r["check"]), f3(r["dry-run wall"]),
            f3(r["dry-run beyond"]), f3(r["dry-run bounded beyond"]), f3(r["cronlist wall"]),
            f3(r["cronlist beyond"]), f"{f1(r['dry-run inproc'] * 1000)} / {f1(r['cronlist inproc'] * 1000)}",
        ]) + " |")  # fmt: skip
    out += ["", f"### A real tick with max_backfill {BOUND} (runs the {BOUND} oldest slots)", ""]
    head = ["db", "behind", "missed slots", "tick wall s", "tick in-process s", "peak RSS MB",
            "tick tracemalloc peak MB", "dry-run peak RSS MB", "dry-run tracemalloc MB", "cronlist tracemalloc MB"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([
            r["db"], r["backlog"], f"{r['slots']:,}", f3(r["tick bounded wall"]), f3(r["tick bounded inproc"]),
            f1(r["tick bounded rss"]), f"{r['tick bounded traced']:.2f}", f1(r["dry-run rss"]),
            f"{r['dry-run traced']:.2f}", f"{r['cronlist traced']:.2f}",
        ]) + " |")  # fmt: skip
    return out


def per_slot_ms(data: dict, u: dict, key: str = "wall") -> float:
    """A tick without max_backfill: ms per slot run beyond Django's start-up (wall or
    the process's CPU time: a loaded machine stretches the one more than the other)."""
    return (median(u[key]) - data[f"startup {key}"]) / u["slots"] * 1000


def unbounded_table(results: dict) -> list[str]:
    out = []
    for dbname, data in results.items():
        for key, u in data.get("unbounded", {}).items():
            if not out:
                out = ["### Without max_backfill: one tick runs every due slot", "",
                       "| db | behind | slots run | tick wall s | ms per slot beyond start-up | CPU ms per slot beyond "
                       "start-up | peak RSS MB | tick tracemalloc peak MB |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
            out.append(f"| {dbname} | {BACKLOGS.get(key, (key,))[0]} | {u['slots']:,} | {f3(median(u['wall']))} | "
                       f"{per_slot_ms(data, u):.3f} | {per_slot_ms(data, u, 'cpu'):.3f} | {f1(median(u['rss_mb']))} | "
                       f"{u.get('traced_mb', float('nan')):.2f} |")  # fmt: skip
    for dbname, data in results.items():
        runs = sorted(data.get("unbounded", {}).values(), key=lambda u: u["slots"])
        if len(runs) >= 2 and runs[-1]["slots"] > runs[0]["slots"]:
            slots = runs[-1]["slots"] - runs[0]["slots"]
            seconds = (median(runs[-1]["wall"]) - median(runs[0]["wall"])) / slots
            rss = (median(runs[-1]["rss_mb"]) - median(runs[0]["rss_mb"])) * 2**20 / slots
            traced = [u for u in runs if "traced_mb" in u]
            traced_bytes = (traced[-1]["traced_mb"] - traced[0]["traced_mb"]) * 2**20 / (
                traced[-1]["slots"] - traced[0]["slots"]) if len(traced) >= 2 else float("nan")  # fmt: skip
            out.append(f"\n{dbname}: from {runs[0]['slots']:,} to {runs[-1]['slots']:,} slots, each further slot "
                       f"adds {seconds * 1000:.3f} ms to the tick's time, {rss:,.1f} bytes to its peak RSS and "
                       f"{traced_bytes:,.1f} bytes to its tracemalloc peak (up to {traced[-1]['slots'] if traced else 0:,}"
                       " slots).")  # fmt: skip
    return out


def unbounded_verdicts(results: dict) -> list[str]:
    lines = []
    for dbname, data in results.items():
        runs = sorted(data.get("unbounded", {}).values(), key=lambda u: u["slots"])
        if not runs:
            continue
        least, most = runs[0], runs[-1]
        ms = per_slot_ms(data, most)
        lines.append(f"- {dbname}: a tick without max_backfill, {most['slots']:,} slots: {ms:.3f} ms per slot beyond "
                     f"start-up ({ms / UNBOUNDED_MS_PER_SLOT:.2f}x the target of {UNBOUNDED_MS_PER_SLOT} ms) — "
                     f"**{'met' if ms <= UNBOUNDED_MS_PER_SLOT else 'not met'}**")  # fmt: skip
        if len(runs) >= 2:
            rss = median(most["rss_mb"]) - median(least["rss_mb"])
            lines.append(f"- {dbname}: its peak RSS {median(most['rss_mb']):.1f} MB against {median(least['rss_mb']):.1f}"
                         f" MB for {least['slots']:,} slots ({rss:+.1f} MB, {rss / UNBOUNDED_RSS_SLACK_MB:.2f}x the "
                         f"{UNBOUNDED_RSS_SLACK_MB:.0f} MB allowed) — "
                         f"**{'met' if rss <= UNBOUNDED_RSS_SLACK_MB else 'not met'}**")  # fmt: skip
    return lines


def verdicts(rows: list[dict]) -> list[str]:
    lines = []
    for db in dict.fromkeys(r["db"] for r in rows):
        mine = [r for r in rows if r["db"] == db]
        worst = max(mine, key=lambda r: r["slots"])
        for key, what in (("dry-run", "`cronrun --dry-run`"), ("dry-run bounded", "`cronrun --dry-run` (max_backfill)"),
                          ("cronlist", "`cronlist`")):  # fmt: skip
            value = worst[f"{key} beyond"]
            lines.append(f"- {db}: {what} {worst['backlog']} behind ({worst['slots']:,} slots): {value:.3f} s beyond "
                         f"start-up (target < {TARGET_S} s) — **{'met' if value < TARGET_S else 'not met'}**")  # fmt: skip
        least = min(mine, key=lambda r: r["slots"])
        rss = worst["tick bounded rss"] - least["tick bounded rss"]
        traced = worst["tick bounded traced"] / least["tick bounded traced"] - 1
        ok = rss <= RSS_SLACK_MB and traced <= TRACED_SLACK
        lines.append(f"- {db}: tick memory, {least['backlog']} → {worst['backlog']} behind: peak RSS "
                     f"{least['tick bounded rss']:.1f} → {worst['tick bounded rss']:.1f} MB ({rss:+.1f}), tracemalloc "
                     f"peak {least['tick bounded traced']:.2f} → {worst['tick bounded traced']:.2f} MB ({traced:+.0%}) "
                     f"(does not grow: within {RSS_SLACK_MB} MB and {TRACED_SLACK:.0%}) — "
                     f"**{'met' if ok else 'not met'}**")  # fmt: skip
    return lines


def write(args, rows, results, python, pg_version, digest, started, elapsed, load_before) -> None:
    lines = [
        "# Falling far behind: a `*/5 * * * *` backfill job up to a year behind",
        "",
        f"Written by `benchmarks/backfill.py` ({' '.join(sys.argv[1:]) or 'defaults'}); do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; whole run {elapsed / 60:.1f} min",
        *compare.machine(python, pg_version),
        f"- load average before / after: {load_before} / {loadavg()} (2 cores shared with other work)",
        f"- code measured: {compare.code_version(digest)}",
        "",
        "## Method",
        "",
        f"- the throwaway project of `benchmarks/compare.py` (Django 5.0), one job `{json.dumps(JOB)}`; `noop` "
        "does nothing and accepts `--run-time`; a fresh database per engine (SQLite file, PostgreSQL scratch "
        "database); a first `cronrun` creates the job's row (a new cron job waits for its first slot)",
        "- before each measurement (SQL, not measured) the row is set back: `next_slot` = `next_run` = the first "
        "slot of the backlog, `last_success` the slot before, no claim; 1 year = 365 days = 105,120 slots",
        f"- processes, alternating (backlogs and commands rotate each round), {args.runs} rounds, medians: "
        "`manage.py version` (start-up: settings and `django.setup()`, no command), `manage.py check` (with the "
        f"registry), `cronrun --dry-run` (the job as above, and with `max_backfill: {BOUND}`), `cronlist`, and a "
        f"real tick `cronrun` with `max_backfill: {BOUND}`; peak RSS from `wait4`",
        "- in-process: a fresh child with Django set up runs the command once (time), another under tracemalloc "
        "(peak of the Python allocations during the command)",
        f"- without max_backfill: a real tick `cronrun` runs the whole backlog ({args.unbounded or 'none'}), "
        f"{args.unbounded_runs} rounds alternating, medians, the Log table emptied before each; ms per slot beyond "
        "start-up = (tick wall − the median `manage.py version` of the same database) / slots, and the same of the "
        "process's CPU time (user + system from `wait4`: less stretched by a loaded machine; the PostgreSQL "
        "server's own work is not in it); then once under "
        f"tracemalloc (backlogs of at most {args.traced_max_slots:,} slots)",
        f"- verified: the dry run names the backlog's first slot, ends with `... and more slots`, writes nothing; "
        f"the tick writes {BOUND} successful attempts and moves the next slot {BOUND} slots on (without "
        "max_backfill: one successful attempt per slot of the backlog, the next slot after the last)",
        "",
        "## Results",
        "",
        *tables(rows),
        "",
        *unbounded_table(results),
        "",
        "## Targets",
        "",
        *verdicts(rows),
        *unbounded_verdicts(results),
        "",
        "## Raw figures",
        "",
        "```",
        json.dumps(results, indent=1, default=str),
        "```",
        "",
    ]
    RESULTS.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--backlogs", default="1d,30d,182d,365d", help="days behind: 1d,30d,...")
    parser.add_argument(
        "--unbounded",
        default="1d,4d,365d",
        help="backlogs for the tick without max_backfill ('' = none; the first is the reference)",
    )
    parser.add_argument(
        "--traced-max-slots",
        type=int,
        default=200_000,
        help="the tracemalloc probe of a tick without max_backfill only up to this many slots",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--unbounded-runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=900, help="s; past 3 rounds the rest are skipped")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--venv", type=Path, default=compare.DEFAULT_VENV)
    parser.add_argument(
        "--pg-url", default=os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    compare.reexec_in_venv(args.venv)
    python = compare.venv_python(args.venv)

    def backlogs(text):
        return [Backlog(k, float(k.rstrip("d"))) for k in text.split(",") if k]

    started, clock, load_before = dt.datetime.now(UTC), time.perf_counter(), loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="crontabber-backfill-"))
    project = Project(workdir, python)
    digest = compare.make_project(workdir)

    def log(text):
        print(f"[{time.perf_counter() - clock:5.0f} s, load {loadavg()}] {text}", file=sys.stderr, flush=True)

    results, rows, pg_version = {}, [], None
    try:
        for dbname in args.db.split(","):
            if dbname == "sqlite":
                db = SQLiteDatabase(workdir)
            else:
                db = PostgresDatabase(args.pg_url, f"crontabber_backfill_{os.getpid()}")
                pg_version = db.version()
            try:
                bl = backlogs(args.backlogs)
                results[dbname] = measure_db(project, db, bl, backlogs(args.unbounded), args, log)
                rows += report_rows(dbname, results[dbname], bl)
            finally:
                db.drop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        "\n".join(tables(rows) + [""] + unbounded_table(results) + [""] + verdicts(rows) + unbounded_verdicts(results))
    )
    if not args.no_write:
        write(args, rows, results, python, pg_version, digest, started, time.perf_counter() - clock, load_before)
        print(f"written: {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
