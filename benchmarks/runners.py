#!/usr/bin/env python
"""Several runners sharing one tick's work on PostgreSQL: makespan and duplicates.

Issue 3: 1, 2 and 4 runners share 200 due jobs of 50 ms each (the test app's ``work``,
which records its own start and end in ``testjobs_execution``). Targets: no job runs
twice, and 4 runners finish in under 0.35x the time of one. ``--mode`` (a comma-separated
list; ``both`` is ``due,fresh``): ``due``, one-tick ``cronrun`` processes started together
on existing rows; ``fresh``, the same racing to create the rows; ``warm``, long-lived
``cronrun --loop --interval 1`` runners already running when the jobs fall due. The
method in detail: method() below, written into the results. Exit status 1 when a target
is missed or a run went wrong.

    .venv/bin/python benchmarks/runners.py --rev HEAD --reps 5 --mode due,warm
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import UTC, Failed, Tree, fmt, median, met, proc_cpu, run, schedstat

TARGET_RATIO = 0.35
QUIET_CORES = 0.6  # a run is "quiet" when everything else used less than this many CPUs on average
MODES = ("due", "fresh", "warm")
LOOP_INTERVAL = 1  # mode warm: `cronrun --loop --interval 1`, every process ticks at each whole second
STOP_WAIT = 30.0  # mode warm: longest wait for the loops to exit after SIGTERM (s)
WARM_LABEL = "long-lived `cronrun --loop` runners: start-up paid once per process, not per tick"


def registry(jobs: int, seconds: float) -> list[dict]:
    return [{"name": f"job-{i}", "cmd": "work", "cmd_args": ["--label", f"job-{i}", "--seconds", str(seconds)],
             "frequency": "1d"} for i in range(jobs)]  # fmt: skip


def clear_runs(db) -> None:
    db.execute("DELETE FROM crontabber_log")
    db.execute("DELETE FROM testjobs_execution")


def make_all_due(db) -> None:
    clear_runs(db)
    past = dt.datetime.now(UTC) - dt.timedelta(days=7)
    db.execute("UPDATE crontabber_job SET next_run = %s, next_slot = %s, claimed_by = '', claimed_at = NULL, "
               "claim_expires = NULL, taken_over_from = ''", past, past)  # fmt: skip


def make_fresh(db) -> None:
    clear_runs(db)
    db.execute("DELETE FROM crontabber_job")


def push_ahead(db) -> None:
    clear_runs(db)
    db.execute("UPDATE crontabber_job SET next_run = %s", dt.datetime.now(UTC) + dt.timedelta(days=1))


# --- the machine and the processes, from /proc ------------------------------------------


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def busy_cores(interval: float = 0.5) -> float:
    """How many CPUs were busy (any process) over the next ``interval`` seconds."""
    busy0 = machine_busy()
    time.sleep(interval)
    return (machine_busy() - busy0) / interval


class Children:
    """N processes started here back to back, their output in files; reaped one by one."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, n: int, tmp: str):
        self.outs = [open(os.path.join(tmp, f"runner-{i}.out"), "w+") for i in range(n)]
        self.wall0, self.t0 = time.time(), time.perf_counter()
        self.procs = [subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT) for out in self.outs]  # fmt: skip
        self.launch = time.perf_counter() - self.t0
        self.pids = [p.pid for p in self.procs]
        self.ended, self.cpu = [float("nan")] * n, [float("nan")] * n
        self.queued, self.status = [float("nan")] * n, [None] * n

    def reap(self, i: int) -> bool:
        """Whether runner i has exited; if so, its time, CPU, run-queue wait (read from /proc
        before reaping it) and exit status are recorded."""
        pid = self.pids[i]
        if self.status[i] is not None or os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return self.status[i] is not None
        self.ended[i], self.queued[i] = time.perf_counter() - self.t0, schedstat(pid, 1)
        _, wstatus, usage = os.wait4(pid, 0)
        self.cpu[i], self.status[i] = usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(wstatus)
        self.procs[i].returncode = self.status[i]
        return True

    def wait(self, timeout: float) -> None:
        while not all([self.reap(i) for i in range(len(self.procs))]):
            if time.perf_counter() - self.t0 > timeout:
                self.close()
                raise Failed(f"{len(self.procs)} runner(s): still running after {timeout:.0f} s")
            time.sleep(0.002)

    def output(self, i: int) -> str:
        self.outs[i].flush()
        self.outs[i].seek(0)
        return self.outs[i].read()

    def close(self) -> None:
        for p in self.procs:  # only the processes started here
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for f in self.outs:
            f.close()


# --- one measured run ----------------------------------------------------------------------


def duplicates(db, pids: list[int]) -> dict:
    """Executions per label and per runner, and the duplicates, from the database."""
    execs = db.execute("SELECT label, pid, started, finished FROM testjobs_execution")
    labels: dict[str, int] = {}
    by_pid = dict.fromkeys(pids, 0)
    for label, pid, _, _ in execs:
        labels[label] = labels.get(label, 0) + 1
        by_pid[pid] = by_pid.get(pid, 0) + 1
    log_per_job = db.execute("SELECT job_id, COUNT(*) FROM crontabber_log GROUP BY job_id")
    return {
        "execs": execs,
        "labels": len(labels),
        "started": [e[2] for e in execs],
        "finished": [e[3] for e in execs if e[3] is not None],
        "jobs_per_runner": [by_pid[pid] for pid in pids],
        "duplicates": sum(count - 1 for count in labels.values()),
        "log_duplicates": sum(count - 1 for _, count in log_per_job),
    }


def problems(db, jobs: int, seen: dict, status: list, outputs: list[str]) -> list[str]:
    """What went wrong in a run: jobs not run, unfinished executions, failed attempts, claims
    left, a wrong number of job rows, a non-zero exit status."""
    outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM crontabber_log GROUP BY outcome"))
    found = [
        (jobs - seen["labels"], f"{jobs - seen['labels']} job(s) did not run"),
        (len(seen["execs"]) - len(seen["finished"]), "execution(s) never finished"),
        (outcomes.get("success", 0) != len(seen["execs"]) or set(outcomes) - {"success"}, f"outcomes {outcomes}"),
        (db.scalar("SELECT COUNT(*) FROM crontabber_job WHERE claimed_by <> ''"), "claim(s) left behind"),
        (db.scalar("SELECT COUNT(*) FROM crontabber_job") != jobs, "job rows missing or extra"),
    ]
    found += [(code != 0, f"runner {i} exit status {code}: {outputs[i][-500:]}") for i, code in enumerate(status)]
    return [text for bad, text in found if bad]


def figures(mode: str, n: int, db, jobs: int, t0: float, end: float, children, status: list, outputs: list) -> dict:
    """A run's figures from T0 (the first Popen, or the tick T) to its end."""
    seen = duplicates(db, children.pids)
    started, finished = seen["started"], seen["finished"]
    return {
        "mode": mode, "n": n, "makespan": end - t0,
        "exec_span": max(finished) - min(started) if finished else float("nan"),
        "start_lag": min(started) - t0 if started else float("nan"),
        "tail": end - max(finished) if finished else float("nan"),
        "cpu": children.cpu, "queued": children.queued, "executions": len(seen["execs"]), "execs": seen["execs"],
        **{k: seen[k] for k in ("jobs_per_runner", "duplicates", "log_duplicates")},
        "problems": problems(db, jobs, seen, status, outputs),
    }  # fmt: skip


def due_run(tree: Tree, env: dict, db, mode: str, n: int, jobs: int, timeout: float) -> dict:
    """N one-tick ``cronrun`` processes started together on the jobs made due (or fresh)."""
    (make_all_due if mode == "due" else make_fresh)(db)
    busy_before, load_before, machine0 = busy_cores(), os.getloadavg()[0], machine_busy()
    with tempfile.TemporaryDirectory(prefix="crontabber-runners-") as tmp:
        children = Children(tree.manage_argv("cronrun"), env, tree.root, n, tmp)
        try:
            children.wait(timeout)
            outputs = [children.output(i) for i in range(n)]
        finally:
            children.close()
    end = children.wall0 + max(children.ended)
    got = figures(mode, n, db, jobs, children.wall0, end, children, children.status, outputs)
    got["own_tail"] = [  # each runner: from its own last `work` finish to its exit
        children.wall0 + children.ended[i] - max((e[3] for e in got["execs"] if e[1] == pid and e[3]), default=children.wall0)
        for i, pid in enumerate(children.pids)
    ]  # fmt: skip
    got.update(ended=children.ended, launch=children.launch, load_before=load_before, busy_before=busy_before,
               other_cpu=machine_busy() - machine0 - sum(children.cpu))  # fmt: skip
    return got


# --- mode warm: long-lived `cronrun --loop` processes ------------------------------------------

# One statement per poll: jobs with a terminal attempt, attempts still running, claims held.
PROGRESS = (
    "SELECT (SELECT COUNT(DISTINCT job_id) FROM crontabber_log WHERE outcome <> 'running'), "
    "(SELECT COUNT(*) FROM crontabber_log WHERE outcome = 'running'), "
    "(SELECT COUNT(*) FROM crontabber_job WHERE claimed_by <> '')"
)


def sleep_until(instant: float) -> None:
    """Sleep until the wall-clock time ``instant`` (time.time())."""
    delay = instant - time.time()
    if delay > 0:
        time.sleep(delay)


def sleep_to_fraction(fraction: float) -> float:
    """Sleep until the next wall-clock instant ``fraction`` s past a whole second; return it."""
    now = time.time()
    instant = math.floor(now) + fraction
    sleep_until(instant + 1 if instant < now else instant)
    return instant + 1 if instant < now else instant


class Loops(Children):
    """N ``cronrun --loop`` processes started here."""

    def alive(self, what: str) -> None:
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise Failed(f"{len(self.procs)} loop runner(s): runner {i} exited with status {p.returncode} "
                             f"{what}: {self.output(i)[-1500:]}")  # fmt: skip

    def now_cpu(self) -> list[float]:
        return [proc_cpu(pid) for pid in self.pids]

    def settle(self, deadline: float) -> None:
        """Wait until every process is between ticks: no CPU used from 0.15 s to 0.85 s past a whole second."""
        while True:
            self.alive("before the measurement")
            if time.monotonic() > deadline:
                raise Failed(f"{len(self.procs)} loop runner(s): still busy between ticks at the timeout")
            start = sleep_to_fraction(0.15)
            before = self.now_cpu()
            sleep_until(start + 0.7)
            if all(b - a < 0.02 for a, b in zip(before, self.now_cpu(), strict=True)):  # NaN (gone): not idle
                return

    def ticked(self, conn, count: int, deadline: float) -> None:
        """Wait until Control.last_tick has advanced into ``count`` new whole seconds (the loops' ticks)."""
        seen = set()
        while len(seen) <= count:
            self.alive("before the measurement")
            if time.monotonic() > deadline:
                raise Failed(f"{len(self.procs)} loop runner(s): Control.last_tick advanced into {len(seen) - 1} "
                             f"new second(s) by the timeout, {count} expected")  # fmt: skip
            row = conn.execute("SELECT last_tick FROM crontabber_control WHERE id = 1").fetchone()
            seen.add(math.floor(row[0].timestamp()) if row and row[0] else None)
            time.sleep(0.05)

    def stop(self) -> tuple[list, list[float]]:
        """SIGTERM to each, wait (at most STOP_WAIT s): exit statuses (None: killed) and seconds to exit."""
        t0 = time.perf_counter()
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        stopped, status = [float("nan")] * len(self.procs), [None] * len(self.procs)
        while time.perf_counter() - t0 < STOP_WAIT and None in status:
            for i, p in enumerate(self.procs):
                if status[i] is None and p.poll() is not None:
                    status[i], stopped[i] = p.returncode, time.perf_counter() - t0
            time.sleep(0.005)
        return status, stopped


def wait_done(conn, loops: Loops, jobs: int, tick: float, timeout: float) -> float:
    """Poll until every job has a terminal attempt and no claim is held; when that was seen."""
    while True:
        polled = time.time()
        terminal, running, claims = conn.execute(PROGRESS).fetchone()
        if terminal >= jobs and not running and not claims:
            return polled
        if polled > tick + timeout:
            raise Failed(f"{len(loops.procs)} loop runner(s): {terminal} of {jobs} jobs ended, {running} running, "
                         f"{claims} claims held {timeout:.0f} s after T")  # fmt: skip
        loops.alive("during the measurement")
        time.sleep(0.01)


def warm_run(tree: Tree, env: dict, db, mode: str, n: int, jobs: int, timeout: float) -> dict:
    """N long-lived loops, settled with nothing due; the jobs made due just after a whole second; the
    next whole second T picks them up. Makespan: T to every job with a terminal Log row and no claim."""
    import psycopg

    push_ahead(db)  # nothing due while the loops start
    argv = tree.manage_argv("cronrun", "--loop", "--interval", str(LOOP_INTERVAL))
    with tempfile.TemporaryDirectory(prefix="crontabber-runners-") as tmp, \
            psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:  # fmt: skip
        loops = Loops(argv, env, tree.root, n, tmp)
        try:
            deadline = time.monotonic() + timeout
            loops.settle(deadline)  # ready: idle between ticks, has ticked (two whole seconds), idle again
            loops.ticked(conn, 2, deadline)
            loops.settle(deadline)
            ready, busy_before, load_before = time.perf_counter() - loops.t0, busy_cores(), os.getloadavg()[0]
            made0 = sleep_to_fraction(0.3)  # that second's idle ticks are over: make the jobs due
            make_all_due(db)
            tick, late = math.floor(made0) + LOOP_INTERVAL, time.time()  # T: the tick that picks them up
            sleep_until(tick - 0.02)
            cpu0, machine0 = loops.now_cpu(), machine_busy()
            queued0 = [schedstat(pid, 1) for pid in loops.pids]
            sleep_until(tick)
            end = wait_done(conn, loops, jobs, tick, timeout)
            other = machine_busy() - machine0
            loops.cpu = [b - a for a, b in zip(cpu0, loops.now_cpu(), strict=True)]
            loops.queued = [schedstat(pid, 1) - q for pid, q in zip(loops.pids, queued0, strict=True)]
            status, stopped = loops.stop()
            outputs = [loops.output(i) for i in range(n)]
        finally:
            loops.close()
    got = figures(mode, n, db, jobs, tick, end, loops, [0 if code is None else code for code in status], outputs)
    got["problems"] += [f"runner {i} still running {STOP_WAIT:.0f} s after SIGTERM (killed): {outputs[i][-500:]}"
                        for i, code in enumerate(status) if code is None]  # fmt: skip
    if late > tick - 0.05:
        got["problems"].append(f"jobs made due only {tick - late:.3f} s before T")
    if got["start_lag"] < 0:
        got["problems"].append(f"a job started {-got['start_lag']:.3f} s before T")
    got.update(ready=ready, ended=stopped, own_tail=[float("nan")] * n, load_before=load_before,
               busy_before=busy_before, other_cpu=other - sum(loops.cpu))  # fmt: skip
    return got


def series(tree: Tree, env: dict, db, mode: str, args, say) -> list[dict]:
    counts = args.counts
    # warm: the rows another mode left are as good (every run makes them due the same way)
    if mode == "due" or (mode == "warm" and db.scalar("SELECT COUNT(*) FROM crontabber_job") != args.jobs):
        make_fresh(db)
        run(tree.manage_argv("cronrun"), env, args.timeout, cwd=tree.root)
        if db.scalar("SELECT COUNT(*) FROM crontabber_job") != args.jobs:
            raise Failed("the first tick did not create every job")
    measure = warm_run if mode == "warm" else due_run
    warm = measure(tree, env, db, mode, max(counts), args.jobs, args.timeout)
    say(f"[{mode}] warm-up, {max(counts)} runners: {warm['makespan']:.2f} s (not counted) {warm['problems'] or ''}")
    runs = []
    for rep in range(args.reps):
        for n in counts if rep % 2 == 0 else list(reversed(counts)):
            got = measure(tree, env, db, mode, n, args.jobs, args.timeout)
            got["rep"] = rep
            runs.append(got)
            say(f"[{mode}] rep {rep + 1}/{args.reps}, {n} runner(s): makespan {got['makespan']:.2f} s, exec span "
                f"{got['exec_span']:.2f} s, start lag {got['start_lag']:.2f} s, jobs/runner {got['jobs_per_runner']}, "
                f"CPU {sum(got['cpu']):.2f} s, duplicates {got['duplicates']}, other CPU {got['other_cpu']:.2f} s"
                + (f" PROBLEMS: {got['problems']}" if got["problems"] else ""))  # fmt: skip
    return runs


# --- reporting -----------------------------------------------------------------------------


def summary(n: int, mine: list[dict]) -> dict:
    """Runs of n runners: medians of their figures, totals of their duplicates and problems."""
    row = {"n": n, "runs": len(mine), "makespans": [r["makespan"] for r in mine]}
    for key in ("makespan", "exec_span", "start_lag", "tail", "other_cpu", "busy_before"):
        row[key] = median([r[key] for r in mine])
    row.update(cpu=median([sum(r["cpu"]) for r in mine]), queued=median([median(r["queued"]) for r in mine]))
    for key in ("duplicates", "log_duplicates"):
        row[key] = sum(r[key] for r in mine)
    row["problems"] = sum(len(r["problems"]) for r in mine)
    return row


def summarise(runs: list[dict], counts: list[int]) -> list[dict]:
    rows = [summary(n, [r for r in runs if r["n"] == n]) for n in counts if any(r["n"] == n for r in runs)]
    base = next((row for row in rows if row["n"] == 1), None)
    for row in rows:
        row["ratio"] = row["makespan"] / base["makespan"] if base else float("nan")
        row["span_ratio"] = row["exec_span"] / base["exec_span"] if base else float("nan")
    return rows


def table(rows: list[dict], jobs: int, seconds: float) -> str:
    lines = [
        "| runners | runs | makespan s (median) | makespans s | ratio to 1 | exec span s | span ratio | start lag s "
        "| tail s | CPU s (all runners) | run-queue wait s per runner | other CPU s | busy CPUs before | ideal sleep s "
        "| duplicates | problems |",
        "|" + "---|" * 16,
    ]
    for row in rows:
        lines.append(
            f"| {row['n']} | {row['runs']} | {row['makespan']:.2f} | {', '.join('%.2f' % m for m in row['makespans'])} "
            f"| {fmt(row['ratio'], 2)} | {row['exec_span']:.2f} | {fmt(row['span_ratio'], 2)} | {row['start_lag']:.2f} "
            f"| {row['tail']:.2f} | {row['cpu']:.2f} | {row['queued']:.2f} | {row['other_cpu']:.2f} | {row['busy_before']:.2f} "
            f"| {jobs * seconds / row['n']:.2f} | {row['duplicates']} (Log: {row['log_duplicates']}) | {row['problems']} |"
        )  # fmt: skip
    return "\n".join(lines)


def raw_line(mode: str, r: dict) -> str:
    return (f"| {mode} | {r['rep'] + 1} | {r['n']} | {r['makespan']:.2f} | {r['exec_span']:.2f} | {r['start_lag']:.2f} "
            f"| {sum(r['cpu']):.2f} | {median(r['queued']):.2f} | {r['other_cpu']:.2f} | "
            f"{r['other_cpu'] / r['makespan']:.2f} | {r['busy_before']:.2f} | {'/'.join(map(str, r['jobs_per_runner']))} "
            f"| {'/'.join(fmt(e, 2) for e in r['ended'])} | {'/'.join(fmt(t, 2) for t in r['own_tail'])} | {r['duplicates']} |")  # fmt: skip


def scaling(tag: str, rows: list[dict], quiet: list[dict], most: dict) -> list[str]:
    """The most runners against one: the target, the quiet runs alone, and 2 runners."""
    ok = most["ratio"] < TARGET_RATIO
    lines = [f"- {tag}: {most['n']} runners / 1 runner, median makespan: {most['ratio']:.2f}x (target < "
             f"{TARGET_RATIO}x) — {met(ok, no='missed')}; exec span only: {most['span_ratio']:.2f}x"]  # fmt: skip
    q1, qn = (next((row for row in quiet if row["n"] == k), None) for k in (1, most["n"]))
    if q1 and qn:
        lines.append(f"- {tag}, quiet runs only ({q1['runs']} with 1 runner, {qn['runs']} with {most['n']}): "
                     f"{qn['makespan'] / q1['makespan']:.2f}x")  # fmt: skip
    return lines + [f"- {tag}: 2 runners / 1 runner: makespan {row['ratio']:.2f}x, exec span {row['span_ratio']:.2f}x"
                    for row in rows if row["n"] == 2]  # fmt: skip


def mode_section(mode: str, runs: list[dict], args) -> tuple[list[str], list[str], bool]:
    """A mode's tables (all runs, quiet runs), its verdicts, and whether its targets are met."""
    rows = summarise(runs, args.counts)
    tag = f"`{mode}` ({WARM_LABEL})" if mode == "warm" else f"`{mode}`"
    about = (f"{WARM_LABEL[0].upper()}{WARM_LABEL[1:]}: makespan and start lag from the tick T that picks the jobs "
             "up, not from a process start; CPU from T to the end.\n\n" if mode == "warm" else "")  # fmt: skip
    quiet_runs = [r for r in runs if r["other_cpu"] / r["makespan"] < QUIET_CORES]
    quiet = summarise(quiet_runs, args.counts)
    out = [f"### Mode `{mode}`\n\n{about}{table(rows, args.jobs, args.seconds)}\n"] + [
        f"Quiet runs only (everything else on the machine, PostgreSQL included, used under {QUIET_CORES} CPU on "
        f"average during the run): {len(quiet_runs)} of {len(runs)}\n\n{table(quiet, args.jobs, args.seconds)}\n"
    ] * bool(quiet)
    dups = sum(row["duplicates"] + row["log_duplicates"] for row in rows)
    found = [p for r in runs for p in r["problems"]]
    verdicts = [f"- {tag}: duplicates {dups} over {len(runs)} runs (target 0) — {met(not dups, no='missed')}"]
    verdicts += [f"- {tag}: problems: {found}"] * bool(found)
    most = next((row for row in rows if row["n"] == max(args.counts) > 1), None)
    verdicts += scaling(tag, rows, quiet, most) if most else []
    return out, verdicts, not dups and not found and (not most or most["ratio"] < TARGET_RATIO)


def method(args) -> list[str]:
    jobs, seconds = args.jobs, args.seconds
    return [
        f'- {jobs} jobs `{{"name": "job-i", "cmd": "work", "cmd_args": ["--label", "job-i", "--seconds", "{seconds}"], '
        '"frequency": "1d"}`, settings `tests.settings`; each job runs in the runner\'s process (no `process` key) '
        "and records its own start and end in `testjobs_execution`",
        "- runners (modes `due`, `fresh`): `python webapp/manage.py cronrun` processes (one tick each), started back "
        "to back by `Popen` and waited for with `wait4` (polled every 2 ms)",
        "- mode `due`: job rows created by one untimed tick; before each run `next_run` = `next_slot` = a week ago, "
        "claims cleared, Log and Execution rows deleted (outside the measurement)",
        "- mode `fresh`: before each run job, Log and Execution rows deleted: the runners also race to create the rows",
        f"- mode `warm` ({WARM_LABEL}): N `python webapp/manage.py cronrun --loop --interval {LOOP_INTERVAL}` "
        "processes (each ticks at every whole second) started with nothing due and left to settle (no CPU used "
        "between ticks, Control.last_tick advanced into two new seconds, no CPU between ticks again); at ~0.3 s past "
        "a whole second the jobs are made due as in `due`; T = the next whole second. Makespan: T to every job "
        "with a terminal Log row and no claim left (one query every 10 ms); start lag: T to the first `work` start; "
        "tail: last `work` finish to the end; CPU, run-queue wait and other CPU over T to the end "
        "(/proc/PID/stat, /proc/PID/schedstat); then SIGTERM: not exiting with status 0 within "
        f'{STOP_WAIT:.0f} s is a problem; in the last table "exit s" is each runner\'s time from SIGTERM to exit',
        f"- per mode: one untimed warm-up run with {max(args.counts)} runners, then {args.reps} repetitions of "
        f"{', '.join(map(str, args.counts))} runners, alternating order (forward, then reversed); medians",
        "- makespan (`due`, `fresh`): first `Popen` to last exit; exec span: first `work` start to last `work` finish; "
        "start lag: first `Popen` to first `work` start; tail: last `work` finish to last exit; CPU: user + system of "
        f"all runners; ideal sleep: {jobs} x {seconds} s / N",
        "- duplicates: Execution rows beyond the first per label (Log: Log rows beyond the first per job); problems: "
        "jobs not run, unfinished executions, outcomes other than success, claims left, non-zero exit",
        "- run-queue wait: time each runner's main thread was ready to run but waiting for a CPU (/proc/PID/schedstat, "
        "read when it exits), median over runners; other CPU: CPU seconds the whole machine spent during the run "
        "(/proc/stat) minus the runners' own: PostgreSQL's backends plus any other tenant of the machine; busy CPUs "
        f"before: CPUs busy over 0.5 s just before the run; quiet runs: other CPU / makespan below {QUIET_CORES}",
    ]


def render(args, results: dict, tree: Tree, started, load_before: str, pg_version: str) -> tuple[list[str], str, bool]:
    out, verdicts, raw, ok = [], [], [], True
    for mode, runs in results.items():
        tables, lines, met = mode_section(mode, runs, args)
        out, verdicts, ok = out + tables, verdicts + lines, ok and met
        raw += [raw_line(mode, r) for r in runs]
    title = "Runners benchmark: N runners sharing one tick on PostgreSQL"
    markdown = [*common.header(title, started, load_before, tree, pg_version), "## Method", "", *method(args), "",
                "## Results", "", *out, "## Targets", "", *verdicts, "", "## Every measured run", "",
                "| mode | rep | runners | makespan s | exec span s | start lag s | CPU s | run-queue wait s | other CPU s "
                "| other CPUs busy (avg) | busy CPUs before | jobs per runner | exit s (each runner) "
                "| own last job to exit s (each) | duplicates |", "|" + "---|" * 15, *raw]  # fmt: skip
    return markdown, "\n".join(out + verdicts), ok


def parse_modes(text: str) -> list[str]:
    """``--mode``: one mode or a comma-separated list; ``both`` is due,fresh."""
    modes = []
    for name in text.replace("both", "due,fresh").split(","):
        if name.strip() not in MODES:
            raise argparse.ArgumentTypeError(f"unknown mode {name!r}: due, fresh, warm, both or a list of them")
        modes += [] if name.strip() in modes else [name.strip()]
    return modes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", default="1,2,4", help="runner counts, comma-separated (default 1,2,4)")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.05, help="each job's sleep (default 0.05)")
    parser.add_argument("--reps", type=int, default=3, help="measured runs of each runner count (default 3)")
    parser.add_argument("--mode", type=parse_modes, default="due",
                        help="due, fresh, warm, both (= due,fresh) or a comma-separated list, e.g. due,warm")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=180, help="seconds allowed to each run of processes")
    common.add_options(parser, "results-runners.md")
    args = parser.parse_args()
    args.counts = [int(c) for c in args.runners.split(",")]
    if not 1 <= args.reps <= 50 or not all(1 <= c <= 32 for c in args.counts) or not 1 <= args.jobs <= 10_000:
        parser.error("reps 1-50, runner counts 1-32, jobs 1-10000")
    started, clock, load_before, tree = dt.datetime.now(UTC), time.time(), common.loadavg(), Tree.from_args(args)

    def say(text):
        print(f"{time.time() - clock:7.1f}s {text}", flush=True)

    db = common.scratch_database("postgres", args.pg_url, "runners")
    try:
        env = tree.env(db.url, registry(args.jobs, args.seconds))
        run(tree.manage_argv("migrate", "-v0"), env, args.timeout, cwd=tree.root)
        tree.check_imports(env)
        say(f"measuring {tree.describe()}")
        results = {mode: series(tree, env, db, mode, args, say) for mode in args.mode}
        markdown, stdout, ok = render(args, results, tree, started, load_before, db.version())
    finally:
        db.drop()
    print(stdout)
    common.write(args, markdown)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
