#!/usr/bin/env python
"""Falling far behind is cheap: a ``*/5 * * * *`` backfill job up to a year behind.

One job whose row says its next slot is a day, a month, six months or a year (105,120
slots) ago, in the project of benchmarks/project/ (crontabber from the tree measured), on
SQLite and PostgreSQL: ``cronrun --dry-run`` and ``cronlist`` against Django's start-up
(target: under 0.5 s beyond it); a real tick with ``max_backfill: 100`` (target: memory
that does not grow with the backlog); and, ``--unbounded``, a tick without max_backfill
running the whole backlog (issue 14: at most 0.5 ms per slot beyond start-up, a year's
peak RSS within 10 MB of a day's). Every command is verified from the database. The
method in detail: method() below, written into the results.

    .venv/bin/python benchmarks/backfill.py                                    # ~10 min
    .venv/bin/python benchmarks/backfill.py --backlogs '' --unbounded 1d,365d  # the year's catch-up only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time

from common import PROJECT, Failed, Tree, add_options, fmt, header, loadavg, median, met, run, scratch_database, write

UTC = dt.UTC
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

    def __init__(self, key: str):
        self.key, self.days = key, float(key.rstrip("d"))
        self.label = BACKLOGS.get(key, (key,))[0]

    def set(self, db) -> None:
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


def log_count(db) -> int:
    return db.scalar("SELECT COUNT(*) FROM crontabber_log")


def next_slot(db) -> dt.datetime:
    value = db.scalar("SELECT next_slot FROM crontabber_job WHERE name = 'backfill'")
    if isinstance(value, str):  # SQLite: naive UTC text
        value = dt.datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


class Measure:
    """One kind of process measured at each backlog, with its verification."""

    def __init__(self, key: str, argv: list[str], bounded: bool, writes: int = 0):
        self.key, self.argv, self.bounded, self.writes = key, argv, bounded, writes

    def verify(self, db, backlog: Backlog, before: int, stdout: str | None, what: str) -> None:
        written = log_count(db) - before
        # An unbounded tick that starts after the next 5-minute mark also runs that slot.
        if self.key == "tick unbounded" and written == self.writes + 1:
            self.writes += 1
        if written != self.writes:
            raise Failed(f"{what}: {written} attempt(s) written, expected {self.writes}")
        moved, expected = next_slot(db), backlog.start + self.writes * STEP
        ok = self.writes and db.scalar("SELECT COUNT(*) FROM (SELECT outcome FROM crontabber_log ORDER BY id DESC "
                                       "LIMIT %s) x WHERE outcome = 'success'", self.writes)  # fmt: skip
        if ok != self.writes or moved != expected:
            raise Failed(f"{what}: {ok} successful, next slot {moved}; expected {self.writes}, {expected}")
        if stdout is not None:
            self.verify_output(stdout, backlog, what)

    def verify_output(self, stdout: str, backlog: Backlog, what: str) -> None:
        lines = stdout.strip().splitlines()
        if self.key.startswith("dry-run"):
            first = re.match(r"would run backfill for (\S+)$", lines[0]) if lines else None
            if not first or dt.datetime.fromisoformat(first[1]).astimezone(UTC) != backlog.start:
                raise Failed(f"{what}: first line {lines[:1]}, expected the slot {backlog.start.isoformat()}")
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
STARTUP = MEASURES[0]


def rotated(items: list, i: int) -> list:
    return items[i % len(items) :] + items[: i % len(items)] if items else []


class Bench:
    """The project's children on one database, each verified from it."""

    def __init__(self, tree: Tree, db, args, log):
        self.tree, self.db, self.args, self.log = tree, db, args, log
        self.env = tree.env(db.url, DJANGO_SETTINGS_MODULE="benchproj.settings", BENCH_DB=db.url,
                            PYTHONPATH=str(tree.root))  # fmt: skip

    def child(self, script: str, argv: list[str], bounded: bool) -> dict:
        env = {**self.env, "BENCH_JOBS": registry(bounded)}
        return run(self.tree.argv(PROJECT / script, *argv), env, self.args.timeout, cwd=PROJECT, capture=True)

    def one(self, backlog: Backlog, m: Measure, mode: str = "process") -> dict:
        """``m`` at ``backlog`` as a whole process, or in a probe child (mode tick or tracemalloc)."""
        backlog.set(self.db)
        before = log_count(self.db)
        done = self.child("manage.py", m.argv, m.bounded) if mode == "process" else \
            self.child("probe.py", [mode, *m.argv], m.bounded)  # fmt: skip
        output = done["stdout"] if mode == "process" else None  # a probe prints its figures instead
        m.verify(self.db, backlog, before, output, f"{self.db.name} {backlog.label} {m.key} {mode}")
        return done if mode == "process" else json.loads(done["stdout"].splitlines()[-1])

    def setup(self) -> None:
        self.child("manage.py", ["migrate", "--noinput", "-v", "0"], False)
        self.tree.check_imports({**self.env, "BENCH_JOBS": "[]"}, cwd=PROJECT)
        # A new cron job's first tick creates its row (and runs its first slot if that is this minute).
        self.child("manage.py", ["cronrun"], False)
        if self.db.scalar("SELECT COUNT(*) FROM crontabber_job WHERE name = 'backfill'") != 1:
            raise Failed("the first tick did not create the job's row")
        for m in MEASURES:  # untimed warm-up
            Backlog("1d").set(self.db)
            self.child("manage.py", m.argv, m.bounded)

    def rounds(self, backlogs: list[Backlog], data: dict) -> None:
        """Every measure at every backlog as whole processes, rotating; then the in-process probes."""
        started = time.perf_counter()
        for i in range(self.args.runs if backlogs else 0):
            if i >= 3 and time.perf_counter() - started > self.args.budget:
                data["cut"] = f"{i} of {self.args.runs} rounds (budget {self.args.budget:.0f} s)"
                break
            for backlog in rotated(backlogs, i):
                for m in rotated(MEASURES, i):
                    done = self.one(backlog, m)
                    for key in ("wall", "cpu", "rss_mb"):
                        data[backlog.key][m.key][key].append(done[key])
        for backlog in backlogs:  # a fresh child each: the command's own time, tracemalloc's peak
            for m in MEASURES[2:]:
                got = {**self.one(backlog, m, "tick"), **self.one(backlog, m, "tracemalloc")}
                data[backlog.key][m.key].update(inproc_s=got["tick"], traced_mb=got["traced_peak"] / 2**20,
                                                growth_mb=got["rss_growth_kb"] / 1024)  # fmt: skip
            self.log(f"{self.db.name} {backlog.label}: " + ", ".join(
                f"{m.key} {median(data[backlog.key][m.key]['wall']):.3f} s" for m in MEASURES))  # fmt: skip

    def unbounded(self, backlogs: list[Backlog], data: dict) -> None:
        """Without max_backfill: every due slot runs in one tick; backlogs rotate each round, and
        each round measures Django's start-up once more."""
        tick, out = Measure("tick unbounded", ["cronrun"], False), data["unbounded"]

        def emptied(backlog: Backlog) -> Backlog:
            self.db.execute("DELETE FROM crontabber_log")
            backlog.set(self.db)
            tick.writes = backlog.slots
            return backlog

        for i in range(self.args.unbounded_runs if backlogs else 0):
            data["startup"].append(self.one(backlogs[0], STARTUP))
            for backlog in rotated(backlogs, i):
                done = self.one(emptied(backlog), tick)
                u = out.setdefault(backlog.key, {"slots": backlog.slots, "wall": [], "cpu": [], "rss_mb": []})
                for key in ("wall", "cpu", "rss_mb"):
                    u[key].append(done[key])
        for backlog in backlogs:
            u = out[backlog.key]
            if backlog.slots <= self.args.traced_max_slots:
                u["traced_mb"] = self.one(emptied(backlog), tick, "tracemalloc")["traced_peak"] / 2**20
            self.log(f"{self.db.name} unbounded tick, {backlog.label} ({backlog.slots} slots): {median(u['wall']):.2f} "
                     f"s, {median(u['rss_mb']):.1f} MB, tracemalloc {u.get('traced_mb', float('nan')):.2f} MB")  # fmt: skip

    def measure(self, backlogs: list[Backlog], unbounded: list[Backlog]) -> dict:
        self.setup()
        data: dict = {b.key: {m.key: {"wall": [], "cpu": [], "rss_mb": []} for m in MEASURES} for b in backlogs}
        data.update(unbounded={}, startup=[])
        self.rounds(backlogs, data)
        self.unbounded(unbounded, data)
        startup = data.pop("startup") + [{"wall": w, "cpu": c} for b in backlogs for w, c in
                                         zip(data[b.key]["startup"]["wall"], data[b.key]["startup"]["cpu"])]  # fmt: skip
        for key in ("wall", "cpu"):  # Django's start-up, of every round
            data[f"startup {key}"] = median([s[key] for s in startup])
        return data


# --- reporting ---------------------------------------------------------------------------


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
    if not rows:
        return []
    out = ["### Dry run and cronlist (whole processes; s, medians)", ""]
    head = ["db", "behind", "missed slots", "start-up", "check", "dry-run", "dry-run − start-up",
            "dry-run (max_backfill 100) − start-up", "cronlist", "cronlist − start-up", "in-process ms: dry-run / cronlist"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join([
        r["db"], r["backlog"], f"{r['slots']:,}", fmt(r["startup"], 3), fmt(r["check"], 3), fmt(r["dry-run wall"], 3),
        fmt(r["dry-run beyond"], 3), fmt(r["dry-run bounded beyond"], 3), fmt(r["cronlist wall"], 3), fmt(r["cronlist beyond"], 3),
        f"{fmt(r['dry-run inproc'] * 1000)} / {fmt(r['cronlist inproc'] * 1000)}"]) + " |" for r in rows]  # fmt: skip
    out += ["", f"### A real tick with max_backfill {BOUND} (runs the {BOUND} oldest slots)", ""]
    head = ["db", "behind", "missed slots", "tick wall s", "tick in-process s", "peak RSS MB",
            "tick tracemalloc peak MB", "dry-run peak RSS MB", "dry-run tracemalloc MB", "cronlist tracemalloc MB"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join([
        r["db"], r["backlog"], f"{r['slots']:,}", fmt(r["tick bounded wall"], 3), fmt(r["tick bounded inproc"], 3),
        fmt(r["tick bounded rss"]), f"{r['tick bounded traced']:.2f}", fmt(r["dry-run rss"]),
        f"{r['dry-run traced']:.2f}", f"{r['cronlist traced']:.2f}"]) + " |" for r in rows]  # fmt: skip
    return out + [""]


def per_slot_ms(data: dict, u: dict, key: str = "wall") -> float:
    """A tick without max_backfill: ms per slot run beyond Django's start-up (wall or
    the process's CPU time: a loaded machine stretches the one more than the other)."""
    return (median(u[key]) - data[f"startup {key}"]) / u["slots"] * 1000


def growth(runs: list[dict]) -> str:
    """What each further slot adds, from the least to the most slots run."""
    least, most = runs[0], runs[-1]
    slots = most["slots"] - least["slots"]
    seconds = (median(most["wall"]) - median(least["wall"])) / slots
    rss = (median(most["rss_mb"]) - median(least["rss_mb"])) * 2**20 / slots
    traced = [u for u in runs if "traced_mb" in u]
    bytes_ = (traced[-1]["traced_mb"] - traced[0]["traced_mb"]) * 2**20 / (traced[-1]["slots"] - traced[0]["slots"]) \
        if len(traced) >= 2 else float("nan")  # fmt: skip
    return (f"from {least['slots']:,} to {most['slots']:,} slots, each further slot adds {seconds * 1000:.3f} ms to "
            f"the tick's time, {rss:,.1f} bytes to its peak RSS and {bytes_:,.1f} bytes to its tracemalloc peak (up "
            f"to {traced[-1]['slots'] if traced else 0:,} slots).")  # fmt: skip


def unbounded_table(results: dict) -> list[str]:
    out = ["### Without max_backfill: one tick runs every due slot", "",
           "| db | behind | slots run | tick wall s | ms per slot beyond start-up | CPU ms per slot beyond start-up "
           "| peak RSS MB | tick tracemalloc peak MB |", "|" + "---|" * 8]  # fmt: skip
    notes = []
    for dbname, data in results.items():
        for key, u in data["unbounded"].items():
            out.append(f"| {dbname} | {BACKLOGS.get(key, (key,))[0]} | {u['slots']:,} | {fmt(median(u['wall']), 3)} | "
                       f"{per_slot_ms(data, u):.3f} | {per_slot_ms(data, u, 'cpu'):.3f} | {fmt(median(u['rss_mb']))} | "
                       f"{u.get('traced_mb', float('nan')):.2f} |")  # fmt: skip
        runs = sorted(data["unbounded"].values(), key=lambda u: u["slots"])
        if len(runs) >= 2 and runs[-1]["slots"] > runs[0]["slots"]:
            notes += ["", f"{dbname}: {growth(runs)}"]
    return out + notes + [""] if len(out) > 4 else []


def unbounded_verdicts(results: dict) -> list[str]:
    lines = []
    for dbname, data in results.items():
        runs = sorted(data["unbounded"].values(), key=lambda u: u["slots"])
        if not runs:
            continue
        least, most = runs[0], runs[-1]
        ms = per_slot_ms(data, most)
        lines.append(f"- {dbname}: a tick without max_backfill, {most['slots']:,} slots: {ms:.3f} ms per slot beyond "
                     f"start-up ({ms / UNBOUNDED_MS_PER_SLOT:.2f}x the target of {UNBOUNDED_MS_PER_SLOT} ms) — "
                     f"{met(ms <= UNBOUNDED_MS_PER_SLOT)}")  # fmt: skip
        if len(runs) >= 2:
            rss = median(most["rss_mb"]) - median(least["rss_mb"])
            lines.append(f"- {dbname}: its peak RSS {median(most['rss_mb']):.1f} MB against {median(least['rss_mb']):.1f}"
                         f" MB for {least['slots']:,} slots ({rss:+.1f} MB, {rss / UNBOUNDED_RSS_SLACK_MB:.2f}x the "
                         f"{UNBOUNDED_RSS_SLACK_MB:.0f} MB allowed) — {met(rss <= UNBOUNDED_RSS_SLACK_MB)}")  # fmt: skip
    return lines


def verdicts(rows: list[dict]) -> list[str]:
    lines = []
    for db in dict.fromkeys(r["db"] for r in rows):
        mine = [r for r in rows if r["db"] == db]
        worst, least = max(mine, key=lambda r: r["slots"]), min(mine, key=lambda r: r["slots"])
        for key, what in (("dry-run", "`cronrun --dry-run`"), ("dry-run bounded", "`cronrun --dry-run` (max_backfill)"),
                          ("cronlist", "`cronlist`")):  # fmt: skip
            value = worst[f"{key} beyond"]
            lines.append(f"- {db}: {what} {worst['backlog']} behind ({worst['slots']:,} slots): {value:.3f} s beyond "
                         f"start-up (target < {TARGET_S} s) — {met(value < TARGET_S)}")  # fmt: skip
        rss = worst["tick bounded rss"] - least["tick bounded rss"]
        traced = worst["tick bounded traced"] / least["tick bounded traced"] - 1
        lines.append(f"- {db}: tick memory, {least['backlog']} → {worst['backlog']} behind: peak RSS "
                     f"{least['tick bounded rss']:.1f} → {worst['tick bounded rss']:.1f} MB ({rss:+.1f}), tracemalloc "
                     f"peak {least['tick bounded traced']:.2f} → {worst['tick bounded traced']:.2f} MB ({traced:+.0%}) "
                     f"(does not grow: within {RSS_SLACK_MB} MB and {TRACED_SLACK:.0%}) — "
                     f"{met(rss <= RSS_SLACK_MB and traced <= TRACED_SLACK)}")  # fmt: skip
    return lines


def method(args) -> list[str]:
    return [
        f"- the project of `benchmarks/project/` (settings `benchproj.settings`: contenttypes, auth, crontabber and "
        f"the app of `noop`), one job `{json.dumps(JOB)}`; `noop` does nothing and accepts `--run-time`; a fresh "
        "database per engine (SQLite file, PostgreSQL scratch database); a first `cronrun` creates the job's row",
        "- before each measurement (SQL, not measured) the row is set back: `next_slot` = `next_run` = the first "
        "slot of the backlog, `last_success` the slot before, no claim; 1 year = 365 days = 105,120 slots",
        f"- processes, alternating (backlogs and commands rotate each round), {args.runs} rounds, medians: "
        "`manage.py version` (start-up: settings and `django.setup()`, no command), `manage.py check` (with the "
        f"registry), `cronrun --dry-run` (the job as above, and with `max_backfill: {BOUND}`), `cronlist`, and a "
        f"real tick `cronrun` with `max_backfill: {BOUND}`; peak RSS from `wait4`",
        "- in-process: a fresh child with Django set up (`project/probe.py`) runs the command once (time), another "
        "under tracemalloc (peak of the Python allocations during the command)",
        f"- without max_backfill: a real tick `cronrun` runs the whole backlog ({args.unbounded or 'none'}), "
        f"{args.unbounded_runs} rounds alternating, medians, the Log table emptied before each; ms per slot beyond "
        "start-up = (tick wall − the median `manage.py version` of the same database, every round of both parts) / "
        "slots, and the same of the process's CPU time (user + system from `wait4`: less stretched by a loaded "
        "machine; the PostgreSQL server's own work is not in it); then once under "
        f"tracemalloc (backlogs of at most {args.traced_max_slots:,} slots)",
        f"- verified: the dry run names the backlog's first slot, ends with `... and more slots`, writes nothing; "
        f"the tick writes {BOUND} successful attempts and moves the next slot {BOUND} slots on (without "
        "max_backfill: one successful attempt per slot of the backlog, the next slot after the last)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--backlogs", default="1d,30d,182d,365d", help="days behind: 1d,30d,... ('' = none)")
    parser.add_argument("--unbounded", default="1d,4d,365d",
                        help="backlogs for the tick without max_backfill ('' = none; the first is the reference)")  # fmt: skip
    parser.add_argument("--traced-max-slots", type=int, default=200_000,
                        help="the tracemalloc probe of a tick without max_backfill only up to this many slots")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--unbounded-runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=900, help="s; past 3 rounds the rest are skipped")
    parser.add_argument("--timeout", type=float, default=600)
    add_options(parser, "results-backfill.md")
    args = parser.parse_args()
    started, clock, load_before, tree = dt.datetime.now(UTC), time.perf_counter(), loadavg(), Tree.from_args(args)
    backlogs = [Backlog(k) for k in args.backlogs.split(",") if k]
    unbounded = [Backlog(k) for k in args.unbounded.split(",") if k]

    def log(text):
        print(f"[{time.perf_counter() - clock:5.0f} s, load {loadavg()}] {text}", file=sys.stderr, flush=True)

    results, rows, pg_version = {}, [], None
    for dbname in args.db.split(","):
        db = scratch_database(dbname, args.pg_url, "backfill")
        try:
            results[dbname] = Bench(tree, db, args, log).measure(backlogs, unbounded)
            rows += report_rows(dbname, results[dbname], backlogs)
            pg_version = db.version() or pg_version
        finally:
            db.drop()
    figures = [
        *tables(rows),
        *unbounded_table(results),
        "## Targets",
        "",
        *verdicts(rows),
        *unbounded_verdicts(results),
    ]
    print("\n".join(figures))
    write(args, [*header("Falling far behind: a `*/5 * * * *` backfill job up to a year behind", started,
                         load_before, tree, pg_version), "## Method", "", *method(args), "", "## Results", "",
                 *figures, "", "## Raw figures", "", "```", json.dumps(results, indent=1, default=str), "```"])  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
