#!/usr/bin/env python
"""On time (issue 25): how late `cronrun --loop`, at its default interval, starts 100 jobs
on mixed cron schedules, in the runner and on a django-tasks-db ``db_worker``; and what the
loop costs in CPU while no slot falls due. Each beside today's loop (``--today REV``, the
same script on that revision's engine).

In two phases of ``--minutes`` (at least 10) each, every loop on its own PostgreSQL
scratch database: first the new loop running the jobs in process, beside the new loop
and today's with 100 jobs none of which falls due; then the new loop queueing the jobs on
one ``db_worker`` (its default poll, ``--interval 1``), beside today's loop running them
in process. The method in detail: method().

    .venv/bin/python benchmarks/ontime.py                           # ~22 min
    .venv/bin/python benchmarks/ontime.py --minutes 3 --no-write    # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import CHECKOUT, UTC, Failed, Tree, add_options, header, loadavg, run, schedstat, scratch_database, write

sys.path.insert(0, str(CHECKOUT))
from crontabber.schedules import build_schedule  # noqa: E402  (pure: no Django)

TODAY = "ff2c472"  # main when issue 25 was taken up
JOBS = 100
CRONS = [
    "* * * * *", "*/2 * * * *", "*/3 * * * *", "*/4 * * * *", "*/5 * * * *",
    "1-59/2 * * * *", "*/10 * * * *", "15,45 * * * *", "0 * * * *", "7,19,31,43,55 * * * *",
]  # fmt: skip
SETTLE = 70  # seconds after the start before slots are counted: the first tick's new jobs are not measured
WORKER_POLL = 1.0  # db_worker's default --interval
TARGETS = {"runner p50": 0.1, "runner p99": 1.0, "worker": WORKER_POLL + 0.5}


def registry(task: bool) -> list[dict]:
    run_as = {"task": "tests.jobs.tasks.plain", "backend": "db"} if task else {"cmd": "noop"}
    return [{"name": f"job-{i}", "cron": CRONS[i % len(CRONS)], **run_as} for i in range(JOBS)]


def idle_registry(now: dt.datetime) -> list[dict]:
    """Jobs whose slots are hours away: none falls due during the run."""
    hour = (now + dt.timedelta(hours=6)).hour
    return [{"name": f"job-{i}", "cron": f"{i % 60} {hour} * * *", "cmd": "noop"} for i in range(JOBS)]


class Loop:
    """A `cronrun --loop` (and, with a worker, one `db_worker`) of one tree on its own database."""

    def __init__(self, label: str, tree: Tree, args, jobs: list[dict], worker=False):
        self.label, self.tree, self.worker = label, tree, worker
        self.db = scratch_database("postgres", args.pg_url, f"ontime_{label.replace(' ', '_')}")
        self.env = tree.env(self.db.url, jobs)
        run(tree.manage_argv("migrate", "--noinput"), self.env, 300, cwd=tree.root)
        self.out = open(Path(self.db.dbname).with_suffix(".log").name, "w") if args.keep_logs else subprocess.DEVNULL
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        self.started = dt.datetime.now(UTC)
        self.processes.append(self._spawn("cronrun", "--loop"))
        if self.worker:
            self.processes.append(
                self._spawn(
                    "db_worker",
                    "--backend",
                    "db",
                    "--interval",
                    f"{WORKER_POLL:g}",
                    "--no-startup-delay",
                    "--no-reload",
                    "--worker-id",
                    "bench",
                )  # fmt: skip
            )

    def _spawn(self, *argv: str) -> subprocess.Popen:
        return subprocess.Popen(self.tree.manage_argv(*argv), cwd=self.tree.root, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)  # fmt: skip

    def ticked(self) -> bool:
        return self.db.scalar("SELECT COUNT(*) FROM crontabber_control WHERE last_tick IS NOT NULL") > 0

    def stop(self) -> None:
        self.stopped = dt.datetime.now(UTC)
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -signal.SIGTERM):
                raise Failed(f"{self.label}: {process.args[-1]} exited with status {process.returncode}")

    def attempts(self) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
        """Each job's attempts: (slot, started), oldest first."""
        rows = self.db.execute(
            "SELECT j.name, l.slot, l.started_at FROM crontabber_log l JOIN crontabber_job j ON j.id = l.job_id "
            "ORDER BY l.started_at"
        )
        found: dict[str, list] = {}
        for name, slot, started in rows:
            found.setdefault(name, []).append((slot, started))
        return found


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def slot_lags(loop: Loop, jobs: list[dict], start: dt.datetime, end: dt.datetime) -> tuple[list[float], int]:
    """For every slot of every job from ``start`` to ``end``: seconds from it to the start of
    the first attempt that covers it (at it or at a later slot, as a coalesced run does). A
    slot no attempt covered by the end counts at its lag so far, a lower bound: returned
    with how many there were."""
    attempts, lags, uncovered = loop.attempts(), [], 0
    for spec in jobs:
        schedule = build_schedule(cron=spec["cron"])
        runs = attempts.get(spec["name"], [])
        slot = schedule.next_after(start - dt.timedelta(microseconds=1), start)
        while slot is not None and slot <= end:
            covering = next((started for ran, started in runs if ran >= slot and started >= slot), None)
            if covering is None:
                uncovered += 1
            lags.append(((covering or loop.stopped) - slot).total_seconds())
            slot = schedule.next_after(slot, start)
    return lags, uncovered


def worker_lags(loop: Loop, start: dt.datetime) -> tuple[list[float], list[float], int]:
    """Of the attempts queued on the worker at slots from ``start``: seconds from the slot
    to the queueing (the runner) and to the worker's start; and how many the worker never started."""
    rows = loop.db.execute(
        "SELECT l.slot, l.started_at, r.started_at FROM crontabber_log l "
        "LEFT JOIN django_tasks_database_dbtaskresult r ON r.id::text = l.result_id WHERE l.slot >= %s",
        start,
    )
    queued = [(enqueued - slot).total_seconds() for slot, enqueued, _ in rows]
    started = [(began - slot).total_seconds() for slot, _, began in rows if began is not None]
    return queued, started, sum(began is None for _, _, began in rows)


def summary(lags: list[float]) -> dict:
    return {"n": len(lags), "p50": quantile(lags, 0.5), "p99": quantile(lags, 0.99), "max": max(lags, default=math.nan)}


def method(args, today: Tree) -> list[str]:
    crons = ", ".join(f"`{c}`" for c in CRONS)
    return [
        "## Method",
        "",
        f"- {JOBS} jobs cycling over {len(CRONS)} cron schedules ({crons}); settings `tests.settings`; every "
        "loop `manage.py cronrun --loop` with no `--interval` (so `CRONTABBER_INTERVAL`, 300 s), each on its own "
        "PostgreSQL scratch database, in two phases of "
        f"{args.minutes:g} minutes, the loops of a phase started together and stopped with SIGTERM: (1) this tree's "
        "runner, and the idle loops; (2) the worker case, and today's runner",
        "- in the runner: the jobs run the no-op command `noop`, on this tree's loop and on today's "
        f"({today.describe()}). Lag of a slot: from the slot to the start (`Log.started_at`) of the first attempt "
        "that covers it, at it or at a later slot (a job that is not a backfill job coalesces missed slots "
        f"into one run for the latest); every slot of every job from {SETTLE} s after the start to the stop; a slot "
        "no attempt covered by the stop counts at its lag so far (a lower bound; counted as uncovered)",
        f"- on a worker: the same jobs as the task `tests.jobs.tasks.plain` on django-tasks-db's `db` backend, one "
        f"`db_worker --interval {WORKER_POLL:g}` (its default poll), this tree's loop: from each slot to the queueing "
        "(`Log.started_at`) and to the worker's start (the task result's `started_at`)",
        f"- idle: {JOBS} jobs at a time of day hours away, nothing due during the run; the loop's time on a CPU "
        "(/proc/PID/schedstat, in nanoseconds) from its first tick to the stop, per hour; this tree's loop against today's. The "
        "PostgreSQL backends' CPU is not counted",
        "- percentiles: nearest rank",
        "",
    ]


def results(args, figures: dict, started, load_before, tree: Tree, today: Tree) -> list[str]:
    lines = header("On time: start lag and idle CPU of `cronrun --loop`", started, load_before, tree)
    lines += method(args, today)
    lines += ["## Results", "", "| case | slots | p50 s | p99 s | max s | uncovered |", "|---|---|---|---|---|---|"]
    for label, row in figures["lags"].items():
        lines.append(
            f"| {label} | {row['n']} | {row['p50']:.3f} | {row['p99']:.3f} | {row['max']:.3f} | {row.get('uncovered', 0)} |"
        )
    recorded = figures["recorded"]
    lines += [
        "",
        f"`Log.start_lag` as this tree records it (the runner case, on-time slots): {recorded['n']} attempts, "
        f"p50 {recorded['p50']:.3f} s, p99 {recorded['p99']:.3f} s, max {recorded['max']:.3f} s.",
        "",
        "| idle loop | CPU s over the run | seconds measured | CPU s per hour |",
        "|---|---|---|---|",
    ]
    for label, (cpu, seconds) in figures["idle"].items():
        lines.append(f"| {label} | {cpu:.2f} | {seconds:.0f} | {cpu * 3600 / seconds:.2f} |")
    new, old = figures["lags"]["runner, this tree"], figures["lags"]["runner, today"]
    worker = figures["lags"]["worker start, this tree"]
    idle_new, idle_old = (cpu * 3600 / seconds for cpu, seconds in figures["idle"].values())
    lines += [
        "",
        "## Targets",
        "",
        f"- runner: p50 {new['p50']:.3f} s (target ≤ {TARGETS['runner p50']} s) "
        f"{'**met**' if new['p50'] <= TARGETS['runner p50'] else '**not met**'}, p99 {new['p99']:.3f} s (target ≤ "
        f"{TARGETS['runner p99']} s) {'**met**' if new['p99'] <= TARGETS['runner p99'] else '**not met**'}; "
        f"today p50 {old['p50']:.1f} s, p99 {old['p99']:.1f} s, max {old['max']:.1f} s",
        f"- worker: from the slot to the worker's start p99 {worker['p99']:.3f} s, max {worker['max']:.3f} s (target ≤ "
        f"the poll {WORKER_POLL:g} s + 0.5 s) {'**met**' if worker['max'] <= TARGETS['worker'] else '**not met**'} "
        f"(on the max; p99 {'met' if worker['p99'] <= TARGETS['worker'] else 'not met'})",
        f"- idle CPU: {idle_new:.2f} s an hour against today's {idle_old:.2f} s "
        f"({'**no more than today**' if idle_new <= idle_old else f'**{idle_new / max(idle_old, 1e-9):.2f}x today**'})",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, "results-ontime.md")
    parser.add_argument("--today", default=TODAY, help=f"today's revision, measured beside (default {TODAY})")
    parser.add_argument("--minutes", type=float, default=10.5, help="how long the loops run (default 10.5)")
    parser.add_argument("--keep-logs", action="store_true", help="keep each loop's output in ./<database>.log")
    args = parser.parse_args()
    started, load_before = dt.datetime.now(UTC), loadavg()
    tree, today = Tree.from_args(args), Tree(rev=args.today)
    jobs, idle = registry(task=False), idle_registry(dt.datetime.now(UTC))
    phases = [
        {  # the runner's lag and the idle loops: nothing else wakes at the slots
            "runner, this tree": Loop("runner new", tree, args, jobs),
            "idle, this tree": Loop("idle new", tree, args, idle),
            "idle, today": Loop("idle today", today, args, idle),
        },
        {  # the worker's, and today's runner (its ticks every 300 s coincide with slots)
            "worker, this tree": Loop("worker new", tree, args, registry(task=True), worker=True),
            "runner, today": Loop("runner today", today, args, jobs),
        },
    ]
    loops = {label: loop for phase in phases for label, loop in phase.items()}
    try:
        idle_cpu = {}
        for phase in phases:
            idle_cpu |= run_phase(phase, args.minutes)
        figures = measure(loops, jobs, idle_cpu)
    finally:
        for loop in loops.values():
            for process in loop.processes:
                if process.poll() is None:
                    process.kill()
            loop.db.drop()
    lines = results(args, figures, started, load_before, tree, today)
    print("\n".join(lines))
    write(args, lines)


def run_phase(loops: dict[str, Loop], minutes: float) -> dict[str, tuple[float, float]]:
    """The loops started together, run for ``minutes`` and stopped; the idle ones' CPU
    seconds from their first tick to the end, and the seconds measured."""
    begun = time.monotonic()
    for loop in loops.values():
        loop.start()
    while not all(loop.ticked() for loop in loops.values()):
        if time.monotonic() > begun + 120:
            raise Failed("a loop did not complete its first tick in 120 s")
        time.sleep(0.5)
    idle = {label: loop.processes[0].pid for label, loop in loops.items() if label.startswith("idle")}
    first = {label: (schedstat(pid, 0), time.monotonic()) for label, pid in idle.items()}
    print(f"{', '.join(loops)}: running for {minutes:g} minutes...", file=sys.stderr)
    time.sleep(max(minutes * 60 - (time.monotonic() - begun), 0))
    cpu = {
        label: (schedstat(idle[label], 0) - used, time.monotonic() - since) for label, (used, since) in first.items()
    }
    for loop in loops.values():
        loop.stop()
    return cpu


def measure(loops: dict[str, Loop], jobs: list[dict], idle_cpu: dict) -> dict:
    lags = {}
    for label in ("runner, this tree", "runner, today"):
        loop = loops[label]
        start = loop.started + dt.timedelta(seconds=SETTLE)
        values, uncovered = slot_lags(loop, jobs, start, loop.stopped - dt.timedelta(seconds=1))
        lags[label] = {**summary(values), "uncovered": uncovered}
    worker = loops["worker, this tree"]
    queued, began, never = worker_lags(worker, worker.started + dt.timedelta(seconds=SETTLE))
    lags["worker queueing, this tree"] = summary(queued)
    lags["worker start, this tree"] = {**summary(began), "uncovered": never}
    new = loops["runner, this tree"]
    recorded = [row[0] for row in new.db.execute(
        "SELECT start_lag FROM crontabber_log WHERE start_lag IS NOT NULL AND slot >= %s",
        new.started + dt.timedelta(seconds=SETTLE),
    )]  # fmt: skip
    return {"lags": lags, "recorded": summary(recorded), "idle": idle_cpu}


if __name__ == "__main__":
    main()
