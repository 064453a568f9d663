#!/usr/bin/env python
"""A long-lived ``cronrun --loop`` stays flat: memory, connections, the idle tick's CPU.

One ``python webapp/manage.py cronrun --loop --interval 0.1 --max-ticks 10000`` on a
scratch PostgreSQL database with 100 no-op jobs (a fifth of them every minute, the rest
every 2 or 5 minutes or every hour, some with --last-success or a backfill, one in another
zone), so that most ticks are idle and every minute some jobs run: 10,000 ticks of the
loop's own code path in about 17 minutes instead of 2.8 hours at --interval 1 (0.1 s is
the shortest interval cronrun accepts; nothing here is soak-only).

Every second this script samples the process from outside:

* **RSS**: VmRSS from /proc/<pid>/status (and its threads and open files);
* **CPU**: utime + stime from /proc/<pid>/stat;
* **connections**: the backends on the scratch database in pg_stat_activity (this
  script's own excluded).

The loop ticks at every multiple of the interval of the clock, so a window of samples
holds one tick per multiple it spans. A window is **idle** when no attempt started within
half a second of it (the Log rows say when attempts started): its CPU over its ticks is
the idle tick's CPU cost. Start and end are the first and last tenth of the run (the
first 30 s, imports and first runs, left out of the start): there, the CPU of the idle
windows together over their ticks (/proc counts in 10 ms steps), and RSS medians.

Targets (issue 14): RSS grows by at most 5 MB, the number of connections stays constant
while idle, the idle tick's CPU does not drift (end / start within 1.2 on this shared
machine). Results: benchmarks/results-soak.md.

Usage (from the checkout, with the project's venv):

    .venv/bin/python benchmarks/soak.py                    # 10,000 ticks, ~17 min
    .venv/bin/python benchmarks/soak.py --ticks 1000 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hostinfo import cpu_model
from scratchdb import PostgresDatabase, registry_env

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "webapp" / "manage.py"
RESULTS = Path(__file__).resolve().parent / "results-soak.md"
UTC = dt.UTC
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
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


# --- sampling the process ----------------------------------------------------------------


def proc_sample(pid: int) -> dict:
    """RSS (MB), threads, open files and CPU (s) of a live process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "cpu": (int(fields[11]) + int(fields[12])) / CLOCK_TICK,  # utime, stime
    }


def soak(db: PostgresDatabase, args) -> dict:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "TEST_SETTINGS", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=db.url, **registry_env(registry(args.jobs)))
    subprocess.run([sys.executable, str(MANAGE), "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
    argv = [sys.executable, str(MANAGE), "cronrun", "--loop", "--interval", str(args.interval)]
    argv += ["--max-ticks", str(args.ticks)]
    samples = []
    with tempfile.TemporaryFile("w+") as out, db.connect() as conn:
        conn.autocommit = True
        count = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        started = time.time()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(args.every - (time.time() - started) % args.every)
                try:
                    sample = proc_sample(proc.pid)
                except (OSError, KeyError, IndexError):
                    break  # it has just exited
                sample.update(t=time.time(), connections=conn.execute(count, [db.dbname]).fetchone()[0])
                samples.append(sample)
                if len(samples) % 60 == 0:
                    print(f"[{sample['t'] - started:5.0f} s] {json.dumps(sample)}", file=sys.stderr, flush=True)
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
    starts = sorted(starts)
    out = []
    for a, b in zip(samples, samples[1:], strict=False):
        ticks = int(b["t"] // interval) - int(a["t"] // interval)
        busy = any(a["t"] - 0.5 <= s <= b["t"] + 0.5 for s in starts)  # few runs: a scan is fine
        if ticks > 0:
            out.append({"t": b["t"], "ticks": ticks, "cpu": b["cpu"] - a["cpu"], "idle": not busy})
    return out


def summarise(run: dict, args) -> dict:
    samples, t0, t1 = run["samples"], run["started"], run["ended"]
    span = (t1 - t0) / 10
    start = [s for s in samples if t0 + WARM_UP_S <= s["t"] <= t0 + WARM_UP_S + span]
    end = [s for s in samples if s["t"] >= t1 - span]
    wins = windows(samples, args.interval, [r[0] for r in run["runs"]])

    def idle_cpu(section) -> float:
        """CPU per tick over the section's idle windows together (/proc counts CPU in
        10 ms steps: one window's figure alone is too coarse)."""
        picked = [w for w in wins if w["idle"] and section(w["t"])]
        return sum(w["cpu"] for w in picked) / max(1, sum(w["ticks"] for w in picked)), len(picked)

    def in_start(t):
        return t0 + WARM_UP_S <= t <= t0 + WARM_UP_S + span

    def in_end(t):
        return t >= t1 - span

    (cpu_start, idle_start), (cpu_end, idle_end) = idle_cpu(in_start), idle_cpu(in_end)
    idle = [s for s in samples if not any(s["t"] - 0.5 <= r[0] <= s["t"] + 0.5 for r in run["runs"])]
    median = statistics.median
    figures = {
        "duration_s": t1 - t0,
        "ticks": args.ticks,
        "attempts": len(run["runs"]),
        "failed_attempts": sum(1 for r in run["runs"] if r[1] != "success"),
        "samples": len(samples),
        "rss_first_mb": next(s["rss_mb"] for s in samples if s["t"] >= t0 + 5),
        "rss_start_mb": median(s["rss_mb"] for s in start),
        "rss_end_mb": median(s["rss_mb"] for s in end),
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "threads": sorted({s["threads"] for s in idle}),
        "fds_start": median(s["fds"] for s in start),
        "fds_end": median(s["fds"] for s in end),
        "connections_idle_start": sorted({s["connections"] for s in idle if in_start(s["t"])}),
        "connections_idle_end": sorted({s["connections"] for s in idle if in_end(s["t"])}),
        "connections_max": max(s["connections"] for s in samples),
        "idle_cpu_start_ms": 1000 * cpu_start,
        "idle_cpu_end_ms": 1000 * cpu_end,
        "idle_windows": [idle_start, idle_end],
        "cpu_total_s": samples[-1]["cpu"],
    }
    figures["rss_growth_mb"] = figures["rss_end_mb"] - figures["rss_start_mb"]
    figures["rss_growth_from_first_mb"] = figures["rss_end_mb"] - figures["rss_first_mb"]
    figures["cpu_drift"] = figures["idle_cpu_end_ms"] / figures["idle_cpu_start_ms"]
    return figures


def verdicts(f: dict) -> list[str]:
    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

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


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def code_version() -> str:
    def git(*argv):
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--", "crontabber", "webapp", "tests")
    return f"{ROOT} at {git('rev-parse', '--short', 'HEAD')}" + (" with uncommitted changes" if dirty else "")


def write_results(args, f: dict, run: dict, load_before: str, started: dt.datetime, pg: str, code: str) -> None:
    import django

    trace = [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in s.items() if k != "t"}
        | {"s": round(s["t"] - run["started"])}
        for s in run["samples"][:: max(1, len(run["samples"]) // 40)]
    ]
    lines = [
        "# Soak: a long-lived cronrun --loop",
        "",
        f"Written by `benchmarks/soak.py` ({' '.join(sys.argv[1:]) or 'defaults'}); do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; the run took {f['duration_s']:.0f} s",
        f"- host: {platform.platform()}, {os.cpu_count()} CPUs, {cpu_model()}",
        f"- Python {platform.python_version()}, Django {django.get_version()}, PostgreSQL {pg}",
        f"- load average (1, 5, 15 min) before / after: {load_before} / {loadavg()} (2 cores shared with other work)",
        f"- code measured: {code}",
        "",
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
        "",
    ]
    RESULTS.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=10_000, help="ticks of the loop (default 10,000)")
    parser.add_argument("--interval", type=float, default=0.1, help="the loop's --interval (default 0.1)")
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the registry (default 100)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between samples (default 1)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name) for the scratch database",
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args()
    started, load_before, code = dt.datetime.now(UTC), loadavg(), code_version()
    db = PostgresDatabase(args.pg_url, f"crontabber_soak_{os.getpid()}")
    try:
        pg = db.version()
        run = soak(db, args)
    finally:
        db.drop()
    figures = summarise(run, args)
    print("\n".join(verdicts(figures)).replace("**", ""))
    if not args.no_write:
        write_results(args, figures, run, load_before, started, pg, code)
        print(f"{RESULTS} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
