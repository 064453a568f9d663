#!/usr/bin/env python
"""Folding a backlog (`fold`): a ``*/5 * * * *`` backfill job a day and a year behind
catches up in one attempt, against the same job without ``fold`` a day behind (a run
per slot).

In the project of benchmarks/project/ (as backfill.py: its job, its rows set behind with
``Backlog.set``), on SQLite and PostgreSQL: one ``cronrun`` process per measure, against
Django's start-up (``manage.py version``). Every tick is verified from the database: a
folded tick writes one successful Log row covering every due slot and moves the job past
them; the other writes a row per slot.

    .venv/bin/python benchmarks/fold.py     # ~2 min
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

from backfill import STEP, Backlog, floor_slot, log_count, next_slot
from common import PROJECT, Failed, Tree, add_options, fmt, header, loadavg, median, run, scratch_database, write

UTC = dt.UTC
JOB = {"name": "backfill", "cmd": "noop", "cron": "*/5 * * * *", "backfill": True}
CASES = [("folded", True, "1d"), ("folded", True, "365d"), ("a run per slot", False, "1d")]


def covered(db) -> tuple[int, str]:
    """How many slots the latest Log row covers, and its outcome."""
    rows = db.execute("SELECT covers, outcome FROM crontabber_log ORDER BY id DESC LIMIT 1")
    return rows[0] if rows else (0, "")


class Bench:
    def __init__(self, tree: Tree, db, args):
        self.tree, self.db, self.args = tree, db, args
        self.env = tree.env(db.url, DJANGO_SETTINGS_MODULE="benchproj.settings", BENCH_DB=db.url,
                            PYTHONPATH=str(tree.root))  # fmt: skip

    def child(self, argv: list[str], fold: bool) -> dict:
        env = {**self.env, "BENCH_JOBS": json.dumps([{**JOB, "fold": fold}])}
        return run(self.tree.argv(PROJECT / "manage.py", *argv), env, self.args.timeout, cwd=PROJECT, capture=True)

    def tick(self, fold: bool, backlog: Backlog) -> dict:
        """One verified ``cronrun`` with the job ``backlog`` behind."""
        self.db.execute("DELETE FROM crontabber_log")
        backlog.set(self.db)
        done = self.child(["cronrun"], fold)
        rows, moved = log_count(self.db), next_slot(self.db)
        due = (floor_slot(dt.datetime.now(UTC)) - backlog.start) // STEP + 1  # a 5-minute mark may have passed
        expected = backlog.start + due * STEP
        covers, outcome = covered(self.db)
        ok = (rows, covers) == (1, due) if fold else rows == due
        if not ok or outcome != "success" or moved not in (expected, expected - STEP):
            raise Failed(f"{self.db.name} {backlog.label} fold={fold}: {rows} rows, the last covering {covers} "
                         f"({outcome}), next slot {moved}; expected {due} slots and {expected}")  # fmt: skip
        return {"wall": done["wall"], "cpu": done["cpu"], "rss_mb": done["rss_mb"], "slots": due, "rows": rows}

    def measure(self) -> dict:
        self.child(["migrate", "--noinput", "-v", "0"], False)
        self.tree.check_imports({**self.env, "BENCH_JOBS": "[]"}, cwd=PROJECT)
        self.child(["cronrun"], False)  # the job's row
        data = {"startup": [], **{f"{what} {key}": [] for what, _, key in CASES}}
        for _ in range(self.args.runs):
            data["startup"].append(self.child(["version"], False)["wall"])
            for what, fold, key in CASES:
                data[f"{what} {key}"].append(self.tick(fold, Backlog(key)))
        return data


def table(results: dict) -> list[str]:
    out = ["| db | job | behind | slots | Log rows written | tick wall s | beyond start-up s | CPU s |",
           "|" + "---|" * 8]  # fmt: skip
    for dbname, data in results.items():
        startup = median(data["startup"])
        for what, _, key in CASES:
            runs = data[f"{what} {key}"]
            wall = median([r["wall"] for r in runs])
            out.append(f"| {dbname} | {what} | {Backlog(key).label} | {runs[-1]['slots']:,} | {runs[-1]['rows']:,} | "
                       f"{fmt(wall, 3)} | {fmt(wall - startup, 3)} | {fmt(median([r['cpu'] for r in runs]), 3)} |")  # fmt: skip
        out.append(f"| {dbname} | (Django's start-up: `manage.py version`) | | | | {fmt(startup, 3)} | | |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=600)
    add_options(parser, "results-fold.md")
    args = parser.parse_args()
    started, load_before, tree = dt.datetime.now(UTC), loadavg(), Tree.from_args(args)
    results, pg_version = {}, None
    for dbname in args.db.split(","):
        db = scratch_database(dbname, args.pg_url, "fold")
        try:
            clock = time.perf_counter()
            results[dbname] = Bench(tree, db, args).measure()
            print(f"{dbname}: {time.perf_counter() - clock:.0f} s", file=sys.stderr)
            pg_version = db.version() or pg_version
        finally:
            db.drop()
    figures = table(results)
    print("\n".join(figures))
    method = [
        f"Median of {args.runs} rounds; each tick a `cronrun` process with the job's row set behind (its Log "
        "emptied first), verified from the database (rows written, slots covered, outcome, next slot). "
        "`beyond start-up` is the tick's wall time less the median of `manage.py version` in the same rounds.",
    ]
    write(args, [*header("Folding a backlog: a `*/5 * * * *` job a day and a year behind, in one attempt", started,
                         load_before, tree, pg_version), "## Method", "", *method, "", "## Results", "", *figures, "",
                 "## Raw figures", "", "```", json.dumps(results, indent=1, default=str), "```"])  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
