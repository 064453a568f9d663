#!/usr/bin/env python
"""A long-lived ``cronrun --loop`` stays flat: memory, connections, the idle tick's CPU.

One ``cronrun --loop --interval 0.1 --max-ticks 10000`` (0.1 s is the shortest interval
cronrun accepts: nothing soak-only) with 100 no-op jobs on a scratch PostgreSQL database,
most ticks idle and some jobs due every minute, sampled every second from outside: RSS,
CPU (/proc), the database's connections (pg_stat_activity). Targets (issue 14): RSS grows
by at most 5 MB from the start to the end, the idle connections stay as they were, the
idle tick's CPU does not drift (end / start ≤ 1.2). The method in detail: report().

    .venv/bin/python benchmarks/soak.py                    # 10,000 ticks, ~17 min
    .venv/bin/python benchmarks/soak.py --ticks 1000 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import UTC, Tree, add_options, header, loadavg, median, met, proc_cpu, run, scratch_database, write

RSS_TARGET_MB = 5.0
CPU_DRIFT_TARGET = 1.2
WARM_UP_S = 30.0

# 100 jobs, cycled over these: most ticks idle, some runs every minute.
KINDS = [
    {"cron": "* * * * *"},
    {"frequency": "2m", "last_success": True},
    {"frequency": "5m"},
    {"cron": "*/2 * * * *", "timezone": "Europe/Paris"},
    {"frequency": "1h"},
]


def registry(n: int) -> list[dict]:
    jobs = [{"name": f"job-{i}", "cmd": "noop", **KINDS[i % len(KINDS)]} for i in range(n)]
    jobs[-1] = {"name": "backfill", "cmd": "noop", "cron": "* * * * *", "backfill": True}
    return jobs


def proc_sample(pid: int) -> dict:
    """RSS (MB), threads, open files and CPU (s) of a live process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "cpu": proc_cpu(pid),
    }


def sample_until_exit(proc, conn, db, every: float, started: float) -> list[dict]:
    count = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    samples = []
    while proc.poll() is None:
        time.sleep(every - (time.time() - started) % every)
        try:
            sample = proc_sample(proc.pid)
        except (OSError, KeyError, IndexError):
            break  # it has just exited
        sample.update(t=time.time(), connections=conn.execute(count, [db.dbname]).fetchone()[0])
        samples.append(sample)
        if len(samples) % 60 == 0:
            print(f"[{sample['t'] - started:5.0f} s] {json.dumps(sample)}", file=sys.stderr, flush=True)
    return samples


def soak(tree: Tree, db, args) -> dict:
    env = tree.env(db.url, registry(args.jobs))
    run(tree.manage_argv("migrate", "--noinput", "-v0"), env, 300, cwd=tree.root)
    argv = tree.manage_argv("cronrun", "--loop", "--interval", str(args.interval), "--max-ticks", str(args.ticks))
    with tempfile.TemporaryFile("w+") as out, db.connect() as conn:
        conn.autocommit = True
        started = time.time()
        proc = subprocess.Popen(argv, env=env, cwd=tree.root, stdout=out, stderr=subprocess.STDOUT)
        try:
            samples = sample_until_exit(proc, conn, db, args.every, started)
            proc.wait(timeout=args.interval * args.ticks * 2 + 300)
        finally:
            if proc.poll() is None:
                proc.kill()
        ended = time.time()
        out.seek(0)
        output = out.read()
        if proc.returncode != 0:
            raise SystemExit(f"cronrun --loop: exit status {proc.returncode}\n{output[-3000:]}")
        runs = conn.execute("SELECT EXTRACT(EPOCH FROM started_at), outcome FROM crontabber_log").fetchall()
    return {"samples": samples, "started": started, "ended": ended, "runs": runs, "output_lines": output.count("\n")}


# --- the figures -------------------------------------------------------------------------


def windows(samples: list[dict], interval: float, starts: list[float]) -> list[dict]:
    """Consecutive samples as windows: the ticks in each (multiples of the interval it
    spans), the CPU spent, and whether an attempt started in or near it."""
    out = []
    for a, b in zip(samples, samples[1:], strict=False):
        ticks = int(b["t"] // interval) - int(a["t"] // interval)
        busy = any(a["t"] - 0.5 <= s <= b["t"] + 0.5 for s in starts)  # few runs: a scan is fine
        if ticks > 0:
            out.append({"t": b["t"], "ticks": ticks, "cpu": b["cpu"] - a["cpu"], "idle": not busy})
    return out


def idle_cpu(wins: list[dict], section) -> tuple[float, int]:
    """CPU per tick over the section's idle windows together (/proc counts CPU in 10 ms
    steps: one window's figure alone is too coarse), and how many windows."""
    picked = [w for w in wins if w["idle"] and section(w["t"])]
    return sum(w["cpu"] for w in picked) / max(1, sum(w["ticks"] for w in picked)), len(picked)


def totals(samples: list[dict], runs: list, idle: list[dict], t0: float) -> dict:
    """The figures of the whole run: attempts, samples, the first and the largest RSS, threads, connections."""
    return {"attempts": len(runs), "failed_attempts": sum(1 for r in runs if r[1] != "success"),
            "samples": len(samples), "rss_first_mb": next(s["rss_mb"] for s in samples if s["t"] >= t0 + 5),
            "rss_max_mb": max(s["rss_mb"] for s in samples), "threads": sorted({s["threads"] for s in idle}),
            "connections_max": max(s["connections"] for s in samples), "cpu_total_s": samples[-1]["cpu"]}  # fmt: skip


def summarise(run: dict, args) -> dict:
    samples, t0, t1, runs = run["samples"], run["started"], run["ended"], run["runs"]
    span = (t1 - t0) / 10
    sections = {"start": lambda t: t0 + WARM_UP_S <= t <= t0 + WARM_UP_S + span, "end": lambda t: t >= t1 - span}
    wins = windows(samples, args.interval, sorted(r[0] for r in runs))
    idle = [s for s in samples if not any(s["t"] - 0.5 <= r[0] <= s["t"] + 0.5 for r in runs)]
    f = totals(samples, runs, idle, t0) | {"duration_s": t1 - t0, "ticks": args.ticks, "idle_windows": []}
    for name, inside in sections.items():
        mine = [s for s in samples if inside(s["t"])]
        f[f"rss_{name}_mb"], f[f"fds_{name}"] = median([s["rss_mb"] for s in mine]), median([s["fds"] for s in mine])
        f[f"connections_idle_{name}"] = sorted({s["connections"] for s in idle if inside(s["t"])})
        cpu, windows_idle = idle_cpu(wins, inside)
        f[f"idle_cpu_{name}_ms"] = 1000 * cpu
        f["idle_windows"].append(windows_idle)
    f["rss_growth_mb"] = f["rss_end_mb"] - f["rss_start_mb"]
    f["rss_growth_from_first_mb"] = f["rss_end_mb"] - f["rss_first_mb"]
    f["cpu_drift"] = f["idle_cpu_end_ms"] / f["idle_cpu_start_ms"]
    return f


def verdicts(f: dict) -> list[str]:
    return [
        f"- RSS: {f['rss_start_mb']:.1f} MB at the start, {f['rss_end_mb']:.1f} MB at the end: grew"
        f" {f['rss_growth_mb']:+.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB) — {met(f['rss_growth_mb'] <= RSS_TARGET_MB)}"
        f"; from the first sample ({f['rss_first_mb']:.1f} MB, after the first tick):"
        f" {f['rss_growth_from_first_mb']:+.1f} MB",
        f"- database connections while idle: {f['connections_idle_start']} at the start,"
        f" {f['connections_idle_end']} at the end (0 between ticks: CONN_MAX_AGE 0 closes the connection after"
        f" each tick, as after a request); at most {f['connections_max']} at any sample (the loop's, and a"
        " heartbeat's while jobs run) — constant: "
        + met(max(f["connections_idle_end"]) <= max(f["connections_idle_start"]) and f["connections_max"] <= 2),
        f"- the idle tick's CPU: {f['idle_cpu_start_ms']:.2f} ms at the start, {f['idle_cpu_end_ms']:.2f} ms at the"
        f" end: {f['cpu_drift']:.2f}x (target ≤ {CPU_DRIFT_TARGET}x) — {met(f['cpu_drift'] <= CPU_DRIFT_TARGET)}",
        f"- threads while idle: {', '.join(map(str, f['threads']))}; open files {f['fds_start']:.0f} at the start,"
        f" {f['fds_end']:.0f} at the end",
    ]


def report(args, f: dict, run: dict, tree: Tree, started: dt.datetime, load_before: str, pg: str) -> list[str]:
    trace = [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in s.items() if k != "t"}
        | {"s": round(s["t"] - run["started"])}
        for s in run["samples"][:: max(1, len(run["samples"]) // 40)]
    ]
    return [
        *header("Soak: a long-lived cronrun --loop", started, load_before, tree, pg),
        "## Method",
        "",
        f"- `cronrun --loop --interval {args.interval:g} --max-ticks {args.ticks}` on a scratch PostgreSQL database,"
        f" {args.jobs} no-op jobs cycling over {', '.join(f'`{json.dumps(k)}`' for k in KINDS)}, the last one"
        " `* * * * *` with `backfill`; settings `tests.settings` (DEBUG off)",
        f"- sampled every {args.every:g} s from outside: VmRSS, threads and open files from /proc, CPU (utime +"
        " stime) from /proc/<pid>/stat, backends on the database from pg_stat_activity",
        f"- start = the first tenth of the run after {WARM_UP_S:.0f} s, end = the last tenth; RSS: medians there;"
        " idle tick CPU: the CPU of the idle windows (no attempt started within 0.5 s) over their ticks,"
        " together (/proc counts CPU in 10 ms steps), the ticks being the multiples of the interval each"
        " window spans",
        "",
        "## Results",
        "",
        f"- {f['ticks']} ticks in {f['duration_s']:.0f} s; {f['attempts']} attempts ({f['failed_attempts']} not"
        f" successful); {f['cpu_total_s']:.1f} s CPU in all; {f['samples']} samples,"
        f" {f['idle_windows'][0]} / {f['idle_windows'][1]} idle windows at the start / end",
        "",
        "## Targets",
        "",
        *verdicts(f),
        "",
        "## Raw figures",
        "",
        "```",
        json.dumps(f, indent=1),
        "```",
        "",
        "Samples (every few; s = seconds since the start):",
        "",
        "```",
        *[json.dumps(s) for s in trace],
        "```",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=10_000, help="ticks of the loop (default 10,000)")
    parser.add_argument("--interval", type=float, default=0.1, help="the loop's --interval (default 0.1)")
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the registry (default 100)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between samples (default 1)")
    add_options(parser, "results-soak.md")
    args = parser.parse_args()
    started, load_before, tree = dt.datetime.now(UTC), loadavg(), Tree.from_args(args)
    db = scratch_database("postgres", args.pg_url, "soak")
    try:
        pg = db.version()
        loop = soak(tree, db, args)
    finally:
        db.drop()
    figures = summarise(loop, args)
    print("\n".join(verdicts(figures)).replace("**", ""))
    write(args, report(args, figures, loop, tree, started, load_before, pg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
