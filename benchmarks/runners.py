#!/usr/bin/env python
"""Several runners sharing one tick's work on PostgreSQL: makespan and duplicates.

Issue 3: 1, 2 and 4 runner processes (``python webapp/manage.py cronrun``, one tick
each) start together against one PostgreSQL database in which 200 jobs are due, each
running the test app's ``work`` command for 50 ms (``work --label job-17 --seconds
0.05``, which records its start and end in ``testjobs_execution`` itself, not through
crontabber). Targets: no job runs twice, and 4 runners finish in under 0.35x the time
of one.

Making the jobs due (``--mode``):

* ``due`` (the default, the steady state of a deployment): one untimed tick creates
  every job row and runs it; before each measured run every job's ``next_run`` and
  ``next_slot`` are set a week back and its claim cleared (an UPDATE outside the
  measurement), and the Log and Execution rows are deleted. Each job then has one due
  slot (the missed daily slots coalesce) and the runners race for existing rows, as
  they do when a batch of jobs falls due at once.
* ``fresh``: before each run the job, Log and Execution rows are deleted, so the N
  runners also race to create the 200 job rows (``bulk_create(ignore_conflicts)``),
  each job running at once on its first tick.
* ``warm`` (long-lived runners: start-up paid once per process, not per tick): N
  ``cronrun --loop --interval 1`` processes, which tick at every whole second of
  wall-clock time, are started with nothing due and left to settle (each has ticked at
  least twice and uses no CPU between ticks); then, just after a whole second, the jobs
  are made due exactly as in ``due``, and the next whole second T is the tick that
  picks them up. Makespan is from T until every job has a terminal Log row and no job
  a claim (one query every 10 ms); start lag is from T to the first ``work`` start; CPU
  is the runners' user + system time over that interval (/proc/PID/stat). Then the N
  processes get SIGTERM: one that does not exit with status 0 (within 30 s) is a
  failure of the run. ``--mode`` takes a comma-separated list (``due,warm``);
  ``both`` is ``due,fresh``.

For each measured run of ``due`` and ``fresh`` the N processes are started back to back
(``Popen`` in a loop) and waited for (``wait4``, polled every 2 ms, for each child's CPU
time):

* **makespan**: from just before the first ``Popen`` to the exit of the last process:
  interpreter and Django start-up included, as an operator pays them;
* **exec span**: from the first ``work`` start to the last ``work`` finish (the
  ``testjobs_execution`` rows, ``time.time()`` of this host);
* **start lag**: from the first ``Popen`` to the first ``work`` start (start-up);
* **duplicates**: Execution rows beyond the first per label, and Log rows beyond the
  first per job; a job that did not run, an attempt that did not succeed, a claim left
  behind or a non-zero exit status is reported as a failure of the run.

N alternates (1, 2, 4 then 4, 2, 1, ...) over ``--reps`` repetitions after one untimed
warm-up run; medians are reported, and the ratio of the median makespans to that of 1
runner.

``--diagnose`` adds the evidence for where the time goes:

* start-up alone: N runners started together with nothing due (makespan, CPU);
* per-job cost inside a runner: one in-process tick of all jobs (a child process with
  Django set up, ``call_command('cronrun')``), its wall and CPU time beyond the jobs'
  own sleep, and its SQL statements per job (``CaptureQueriesContext`` on the main
  thread's connection), split into crontabber's and the job's own;
* a cProfile of one whole runner process doing the 200 jobs;
* a simple model, start-up(N) + jobs x (seconds + per-job overhead) / N, against the
  measured makespans.

Usage (from the checkout, with the project's venv):

    .venv/bin/python benchmarks/runners.py                    # 1,2,4 runners, 3 reps, mode due
    .venv/bin/python benchmarks/runners.py --reps 5 --mode both --diagnose
    .venv/bin/python benchmarks/runners.py --mode due,warm    # one-tick processes, then long-lived loops
    .venv/bin/python benchmarks/runners.py --rev HEAD         # measure a commit, not the working tree

``--rev REV`` measures ``git archive REV`` exported to a temporary directory (a stable
copy while the working tree is being edited); otherwise the checkout this file is in
(or ``--root``). PostgreSQL: a scratch database (``--dbname``, default
``crontabber_runners_bench``) on the server of ``--pg-url`` (default
$CRONTABBER_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432), dropped at the end.

On a shared machine other processes' CPU use changes the figures a lot: every run
records how much CPU everything else used while it ran ("other CPU"), and the runs in
which that stayed under 0.6 CPU are summarised apart ("quiet runs"); ``--max-busy``
makes each run wait (at most ``--patience`` s) for a quiet moment first.

Results: a table on stdout and benchmarks/results-runners.md (``--no-write`` to skip,
``--output`` elsewhere). Exit status 1 when a target is missed or a run went wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import platform
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
RESULTS = HERE / "results-runners.md"
TARGET_RATIO = 0.35
QUIET_CORES = 0.6  # a run is "quiet" when everything else used less than this many CPUs on average
MODES = ("due", "fresh", "warm")
LOOP_INTERVAL = 1  # mode warm: `cronrun --loop --interval 1`, every process ticks at each whole second
STOP_WAIT = 30.0  # mode warm: longest wait for the loops to exit after SIGTERM (s)
WARM_LABEL = "long-lived `cronrun --loop` runners: start-up paid once per process, not per tick"
UTC = dt.UTC


class Failed(RuntimeError):
    pass


# --- the registry ------------------------------------------------------------------------


def registry(jobs: int, seconds: float) -> list[dict]:
    return [
        {"name": f"job-{i}", "cmd": "work", "cmd_args": ["--label", f"job-{i}", "--seconds", str(seconds)],
         "frequency": "1d"}
        for i in range(jobs)
    ]  # fmt: skip


# --- the scratch database ----------------------------------------------------------------


from hostinfo import cpu_model  # noqa: E402
from scratchdb import PostgresDatabase, registry_env  # noqa: E402  the benchmarks' folder


def clear_runs(db: PostgresDatabase) -> None:
    db.execute("DELETE FROM crontabber_log")
    db.execute("DELETE FROM testjobs_execution")


def make_all_due(db: PostgresDatabase) -> None:
    clear_runs(db)
    past = dt.datetime.now(UTC) - dt.timedelta(days=7)
    db.execute("UPDATE crontabber_job SET next_run = %s, next_slot = %s, claimed_by = '', claimed_at = NULL, "
           "claim_expires = NULL, taken_over_from = ''", past, past)  # fmt: skip


def make_fresh(db: PostgresDatabase) -> None:
    clear_runs(db)
    db.execute("DELETE FROM crontabber_job")


def push_ahead(db: PostgresDatabase) -> None:
    clear_runs(db)
    db.execute("UPDATE crontabber_job SET next_run = %s", dt.datetime.now(UTC) + dt.timedelta(days=1))


def run_queue_wait(pid: int | str = "self") -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU
    (/proc/PID/schedstat, second field; NaN where the kernel does not keep it)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (/proc/PID/stat; NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_ticks() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / hz, sum(fields) / hz


def busy_cores(interval: float = 0.5) -> float:
    """How many CPUs were busy (any process) over the last ``interval`` seconds."""
    busy0, _ = cpu_ticks()
    time.sleep(interval)
    busy1, _ = cpu_ticks()
    return (busy1 - busy0) / interval


def wait_for_quiet(max_busy: float, patience: float, say) -> float:
    """Wait (at most ``patience`` s) until other processes keep fewer than ``max_busy``
    CPUs busy; the last reading."""
    deadline = time.monotonic() + patience
    busy = busy_cores()
    while busy > max_busy and time.monotonic() < deadline:
        busy = busy_cores(1.0)
    if busy > max_busy:
        say(f"machine still busy ({busy:.2f} CPUs) after {patience:.0f} s: measuring anyway")
    return busy


# --- processes ---------------------------------------------------------------------------


# The venv holds an editable install of the checkout (setuptools' __editable__ finder on
# sys.meta_path): it resolves any crontabber.X missing from another tree to the checkout's
# file, so a --rev copy would silently run modules of the working tree. Processes of a
# copy start through this bootstrap, which removes that finder first.
BOOTSTRAP = """import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

CHECK_IMPORTS = """import sys
import crontabber.models, crontabber.engine.runner
stray = sorted(f"{n}: {m.__file__}" for n, m in list(sys.modules.items())
               if n.split(".")[0] == "crontabber" and getattr(m, "__file__", None) and not m.__file__.startswith(ROOT))
print(sorted(n for n in sys.modules if n.split(".")[0] == "crontabber"))
print("STRAY" if stray else "OK", stray)
"""


class Project:
    def __init__(self, root: Path, db: PostgresDatabase, jobs: list[dict]):
        self.root = root
        self.manage = root / "webapp" / "manage.py"
        self.prefix = [sys.executable]
        if root.resolve() != CHECKOUT:
            bootstrap = root / ".runners_bootstrap.py"
            bootstrap.write_text(BOOTSTRAP)
            self.prefix = [sys.executable, str(bootstrap)]
        self.env = dict(os.environ)
        for name in ("PYTHONDONTWRITEBYTECODE", "TEST_SETTINGS", "PYTHONPROFILEIMPORTTIME", "PYTHONPATH"):
            self.env.pop(name, None)  # .pyc files used, as in a deployed loop; no extra settings
        self.env.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=db.url, **registry_env(jobs))

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, str(self.manage), *args]

    def run(self, argv: list[str], timeout: float, env: dict | None = None) -> str:
        try:
            done = subprocess.run(argv, env=env or self.env, cwd=self.root, capture_output=True, text=True,
                                  timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise Failed(f"{' '.join(argv[1:])}: still running after {timeout:.0f} s") from None
        if done.returncode != 0:
            raise Failed(f"{' '.join(argv[1:])}: exit status {done.returncode}\n{done.stderr[-3000:]}")
        return done.stdout

    def launch(self, n: int, timeout: float, argv: list[str] | None = None) -> dict:
        """Start n processes back to back and wait for all; their timings."""
        argv = argv or self.argv("cronrun")
        with tempfile.TemporaryDirectory(prefix="crontabber-runners-") as tmp:
            outs = [open(os.path.join(tmp, f"runner-{i}.out"), "w+") for i in range(n)]
            try:
                procs = []
                wall0 = time.time()
                t0 = time.perf_counter()
                for i in range(n):
                    procs.append(subprocess.Popen(argv, env=self.env, cwd=self.root, stdin=subprocess.DEVNULL,
                                                  stdout=outs[i], stderr=subprocess.STDOUT))  # fmt: skip
                launched = time.perf_counter() - t0
                pending = {p.pid: i for i, p in enumerate(procs)}
                ended = [None] * n
                cpu = [None] * n
                queued = [float("nan")] * n
                status = [None] * n
                deadline = t0 + timeout
                while pending:
                    for pid, i in list(pending.items()):
                        # Exited? (not reaped yet: its /proc entry still holds its scheduler statistics)
                        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                            ended[i] = time.perf_counter() - t0
                            queued[i] = run_queue_wait(pid)
                            got, wstatus, usage = os.wait4(pid, 0)
                            cpu[i] = usage.ru_utime + usage.ru_stime
                            status[i] = os.waitstatus_to_exitcode(wstatus)
                            procs[i].returncode = status[i]
                            del pending[pid]
                    if pending and time.perf_counter() > deadline:
                        for pid in pending:  # only the processes started here, by their pid
                            os.kill(pid, signal.SIGKILL)
                        for p in procs:
                            p.wait(timeout=10)
                        raise Failed(f"{n} runner(s): {len(pending)} still running after {timeout:.0f} s")
                    time.sleep(0.002)
                output = []
                for f in outs:
                    f.seek(0)
                    output.append(f.read())
            finally:
                for f in outs:
                    f.close()
        return {"wall0": wall0, "launch": launched, "ended": ended, "cpu": cpu, "queued": queued, "status": status,
                "pids": [p.pid for p in procs], "output": output}  # fmt: skip


# --- one measured run ----------------------------------------------------------------------


def examine(db: PostgresDatabase, jobs: int, pids: list[int], status: list, output: list[str]) -> dict:
    """What the runners did, from the database: executions per label and per runner, duplicates, problems."""
    execs = db.execute("SELECT label, pid, started, finished FROM testjobs_execution")
    per_label: dict[str, list] = {}
    for label, pid, started, finished in execs:
        per_label.setdefault(label, []).append((started, finished, pid))
    overlapping = sum(
        1 for v in per_label.values() for a in v for b in v
        if a is not b and a[0] < b[0] and (a[1] is None or b[0] < a[1])
    )  # fmt: skip
    log_per_job = db.execute("SELECT job_id, COUNT(*) FROM crontabber_log GROUP BY job_id")
    outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM crontabber_log GROUP BY outcome"))
    claims_left = db.scalar("SELECT COUNT(*) FROM crontabber_job WHERE claimed_by <> ''")
    job_rows = db.scalar("SELECT COUNT(*) FROM crontabber_job")
    problems = []
    missing = jobs - len(per_label)
    if missing:
        problems.append(f"{missing} job(s) did not run")
    unfinished = sum(1 for _, _, _, finished in execs if finished is None)
    if unfinished:
        problems.append(f"{unfinished} execution(s) never finished")
    if outcomes.get("success", 0) != len(execs) or set(outcomes) - {"success"}:
        problems.append(f"attempt outcomes {outcomes}")
    if claims_left:
        problems.append(f"{claims_left} claim(s) left behind")
    if job_rows != jobs:
        problems.append(f"{job_rows} job rows, expected {jobs}")
    for i, code in enumerate(status):
        if code != 0:
            problems.append(f"runner {i} exit status {code}: {output[i][-500:]}")
    by_pid = {pid: 0 for pid in pids}
    for _, pid, _, _ in execs:
        by_pid[pid] = by_pid.get(pid, 0) + 1
    return {
        "execs": execs,
        "started": [e[2] for e in execs],
        "finished": [e[3] for e in execs if e[3] is not None],
        "jobs_per_runner": [by_pid[pid] for pid in pids],
        "duplicates": sum(len(v) - 1 for v in per_label.values()),
        "overlapping_duplicates": overlapping,
        "log_duplicates": sum(count - 1 for _, count in log_per_job),
        "problems": problems,
    }


def measured_run(
    project: Project, db: PostgresDatabase, mode: str, n: int, jobs: int, timeout: float, quiet=None
) -> dict:
    (make_all_due if mode == "due" else make_fresh)(db)
    busy_before = quiet() if quiet else busy_cores()
    load_before = os.getloadavg()[0]
    machine0 = cpu_ticks()[0]
    got = project.launch(n, timeout)
    machine_cpu = cpu_ticks()[0] - machine0
    makespan = max(got["ended"])
    seen = examine(db, jobs, got["pids"], got["status"], got["output"])
    execs, started, finished = seen["execs"], seen["started"], seen["finished"]
    return {
        "mode": mode,
        "n": n,
        "makespan": makespan,
        "exec_span": (max(finished) - min(started)) if execs and finished else float("nan"),
        "start_lag": (min(started) - got["wall0"]) if execs else float("nan"),
        "tail": (got["wall0"] + makespan - max(finished)) if finished else float("nan"),
        "launch": got["launch"],
        "ended": got["ended"],
        # each runner: from its own last `work` finish to its exit
        "own_tail": [
            got["wall0"] + got["ended"][i] - max((e[3] for e in execs if e[1] == pid and e[3]), default=got["wall0"])
            for i, pid in enumerate(got["pids"])
        ],
        "cpu": got["cpu"],
        "queued": got["queued"],
        "jobs_per_runner": seen["jobs_per_runner"],
        "executions": len(execs),
        "duplicates": seen["duplicates"],
        "overlapping_duplicates": seen["overlapping_duplicates"],
        "log_duplicates": seen["log_duplicates"],
        "problems": seen["problems"],
        "load_before": load_before,
        "busy_before": busy_before,
        # CPU seconds of everything else during the run: PostgreSQL and other tenants of the machine
        "other_cpu": machine_cpu - sum(got["cpu"]),
    }


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
    if instant < now:
        instant += 1
    sleep_until(instant)
    return instant


class Loops:
    """N ``cronrun --loop`` processes started here, their output in files."""

    def __init__(self, project: Project, n: int, tmp: str):
        self.outs = [open(os.path.join(tmp, f"loop-{i}.out"), "w+") for i in range(n)]
        argv = project.argv("cronrun", "--loop", "--interval", str(LOOP_INTERVAL))
        self.procs = []
        for i in range(n):
            self.procs.append(subprocess.Popen(argv, env=project.env, cwd=project.root, stdin=subprocess.DEVNULL,
                                               stdout=self.outs[i], stderr=subprocess.STDOUT))  # fmt: skip
        self.pids = [p.pid for p in self.procs]

    def output(self, i: int) -> str:
        self.outs[i].flush()
        self.outs[i].seek(0)
        return self.outs[i].read()

    def check_alive(self, what: str) -> None:
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise Failed(f"{len(self.procs)} loop runner(s): runner {i} exited with status {p.returncode} "
                             f"{what}: {self.output(i)[-1500:]}")  # fmt: skip

    def cpu(self) -> list[float]:
        return [proc_cpu(pid) for pid in self.pids]

    def settle(self, deadline: float) -> None:
        """Wait until every process is between ticks: no CPU used from 0.15 s to 0.85 s past a whole second."""
        while True:
            self.check_alive("before the measurement")
            if time.monotonic() > deadline:
                raise Failed(f"{len(self.procs)} loop runner(s): still busy between ticks at the timeout")
            start = sleep_to_fraction(0.15)
            before = self.cpu()
            sleep_until(start + 0.7)
            if all(b - a < 0.02 for a, b in zip(before, self.cpu(), strict=True)):  # NaN (gone): not idle
                return

    def stop(self) -> tuple[list, list[float]]:
        """SIGTERM to each, wait (at most STOP_WAIT s): exit statuses (None: killed) and seconds to exit."""
        t0 = time.perf_counter()
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        stopped = [float("nan")] * len(self.procs)
        status = [None] * len(self.procs)
        while time.perf_counter() - t0 < STOP_WAIT:
            for i, p in enumerate(self.procs):
                if status[i] is None and p.poll() is not None:
                    status[i], stopped[i] = p.returncode, time.perf_counter() - t0
            if all(code is not None for code in status):
                break
            time.sleep(0.005)
        return status, stopped

    def close(self) -> None:
        for p in self.procs:  # only the processes started here
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for f in self.outs:
            f.close()


def last_tick_seconds(conn, count: int, loops: Loops, deadline: float) -> None:
    """Wait until Control.last_tick has advanced into ``count`` new whole seconds (the loops' ticks)."""

    def last():
        row = conn.execute("SELECT last_tick FROM crontabber_control WHERE id = 1").fetchone()
        return math.floor(row[0].timestamp()) if row and row[0] else None

    seen = {last()}
    while len(seen) <= count:
        loops.check_alive("before the measurement")
        if time.monotonic() > deadline:
            raise Failed(f"{len(loops.procs)} loop runner(s): Control.last_tick advanced into {len(seen) - 1} new "
                         f"second(s) by the timeout, {count} expected")  # fmt: skip
        time.sleep(0.05)
        seen.add(last())


def warm_run(project: Project, db: PostgresDatabase, mode: str, n: int, jobs: int, timeout: float, quiet=None) -> dict:
    """N long-lived loops, settled with nothing due; the jobs made due just after a whole second; the
    next whole second T picks them up. Makespan: T to every job with a terminal Log row and no claim."""
    import psycopg

    push_ahead(db)  # nothing due while the loops start
    problems = []
    with tempfile.TemporaryDirectory(prefix="crontabber-runners-") as tmp, \
            psycopg.connect(db.url, autocommit=True, connect_timeout=10) as conn:  # fmt: skip
        t0 = time.monotonic()
        loops = Loops(project, n, tmp)
        try:
            deadline = t0 + timeout
            # Ready: each process idles between ticks, has ticked (two whole seconds), and idles again.
            loops.settle(deadline)
            last_tick_seconds(conn, 2, loops, deadline)
            loops.settle(deadline)
            ready = time.monotonic() - t0
            busy_before = quiet() if quiet else busy_cores()
            load_before = os.getloadavg()[0]
            loops.check_alive("before the measurement")
            # Just after a whole second (that second's idle ticks are over): make the jobs due.
            sleep_to_fraction(0.3)
            made0 = time.time()
            make_all_due(db)
            made = time.time()
            tick = math.floor(made0) + LOOP_INTERVAL  # T: the tick that picks them up
            if made > tick - 0.05:
                problems.append(f"jobs made due only {tick - made:.3f} s before T")
            sleep_until(tick - 0.02)
            cpu0, queued0, machine0 = loops.cpu(), [run_queue_wait(pid) for pid in loops.pids], cpu_ticks()[0]
            sleep_until(tick)
            while True:
                polled = time.time()
                terminal, running, claims = conn.execute(PROGRESS).fetchone()
                if terminal >= jobs and not running and not claims:
                    break
                if polled > tick + timeout:
                    raise Failed(f"{n} loop runner(s): {terminal} of {jobs} jobs ended, {running} running, {claims} "
                                 f"claims held {timeout:.0f} s after T")  # fmt: skip
                loops.check_alive("during the measurement")
                time.sleep(0.01)
            makespan = polled - tick
            machine_cpu = cpu_ticks()[0] - machine0
            cpu = [b - a for a, b in zip(cpu0, loops.cpu(), strict=True)]
            queued = [run_queue_wait(pid) - q for pid, q in zip(loops.pids, queued0, strict=True)]
            status, stopped = loops.stop()
            output = [loops.output(i) for i in range(n)]
        finally:
            loops.close()
    for i, code in enumerate(status):
        if code is None:
            problems.append(f"runner {i} still running {STOP_WAIT:.0f} s after SIGTERM (killed): {output[i][-500:]}")
    seen = examine(db, jobs, loops.pids, [0 if code is None else code for code in status], output)
    execs, started, finished = seen["execs"], seen["started"], seen["finished"]
    if started and min(started) < tick:
        problems.append(f"a job started {tick - min(started):.3f} s before T")
    return {
        "mode": mode,
        "n": n,
        "makespan": makespan,
        "exec_span": (max(finished) - min(started)) if execs and finished else float("nan"),
        "start_lag": (min(started) - tick) if execs else float("nan"),
        "tail": (tick + makespan - max(finished)) if finished else float("nan"),
        "ready": ready,
        "ended": stopped,  # each runner: from SIGTERM to its exit
        "own_tail": [float("nan")] * n,
        "cpu": cpu,
        "queued": queued,
        "jobs_per_runner": seen["jobs_per_runner"],
        "executions": len(execs),
        "duplicates": seen["duplicates"],
        "overlapping_duplicates": seen["overlapping_duplicates"],
        "log_duplicates": seen["log_duplicates"],
        "problems": problems + seen["problems"],
        "load_before": load_before,
        "busy_before": busy_before,
        # CPU seconds of everything else from T to the end: PostgreSQL (the poll's backend included) and others
        "other_cpu": machine_cpu - sum(cpu),
    }


def series(project, db, mode, counts, reps, jobs, timeout, say, quiet=None) -> list[dict]:
    # warm: the rows another mode left are as good (every run makes them due the same way)
    if mode == "due" or (mode == "warm" and db.scalar("SELECT COUNT(*) FROM crontabber_job") != jobs):
        make_fresh(db)
        project.run(project.argv("cronrun"), timeout)  # creates every job row (and runs each once)
        if db.scalar("SELECT COUNT(*) FROM crontabber_job") != jobs:
            raise Failed("the first tick did not create every job")
    measure = warm_run if mode == "warm" else measured_run
    warm = measure(project, db, mode, max(counts), jobs, timeout)
    say(f"[{mode}] warm-up, {max(counts)} runners: {warm['makespan']:.2f} s (not counted)"
        + (f" PROBLEMS: {warm['problems']}" if warm["problems"] else ""))  # fmt: skip
    runs = []
    for rep in range(reps):
        for n in counts if rep % 2 == 0 else list(reversed(counts)):
            run = measure(project, db, mode, n, jobs, timeout, quiet)
            run["rep"] = rep
            runs.append(run)
            say(f"[{mode}] rep {rep + 1}/{reps}, {n} runner(s): makespan {run['makespan']:.2f} s, exec span "
                f"{run['exec_span']:.2f} s, start lag {run['start_lag']:.2f} s, jobs/runner {run['jobs_per_runner']}, "
                f"CPU {['%.2f' % c for c in run['cpu']]}, run-queue wait {['%.2f' % q for q in run['queued']]}, duplicates {run['duplicates']}, busy CPUs before {run['busy_before']:.2f}, "
                f"other CPU during {run['other_cpu']:.2f} s"
                + (f", ready after {run['ready']:.2f} s, exit after SIGTERM {['%.2f' % e for e in run['ended']]}"
                   if mode == "warm" else "")
                + (f" PROBLEMS: {run['problems']}" if run["problems"] else ""))  # fmt: skip
    return runs


# --- diagnostics ---------------------------------------------------------------------------


def startup_series(project, db, counts, reps, timeout, say, quiet=None) -> dict:
    """N runners started together with nothing due: the fixed cost of N processes."""
    push_ahead(db)
    out = {n: {"makespan": [], "cpu": []} for n in counts}
    project.launch(1, timeout)  # warm-up
    for rep in range(reps):
        for n in counts if rep % 2 == 0 else list(reversed(counts)):
            if quiet:
                quiet()
            got = project.launch(n, timeout)
            if any(got["status"]) or db.scalar("SELECT COUNT(*) FROM crontabber_log"):
                raise Failed(f"nothing-due tick with {n} runners: exit {got['status']} or something ran")
            out[n]["makespan"].append(max(got["ended"]))
            out[n]["cpu"].append(statistics.mean(got["cpu"]))
            say(f"[start-up] {n} runner(s), nothing due: {max(got['ended']):.2f} s, CPU/runner "
                f"{statistics.mean(got['cpu']):.2f} s")  # fmt: skip
    return out


def in_process(project, db, timeout) -> dict:
    """One in-process tick of all jobs, in a child process with Django set up."""
    make_all_due(db)
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--root", str(project.root)]
    done = subprocess.run(argv, env=project.env, cwd=project.root, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise Failed(f"in-process worker: exit status {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker(root: Path) -> None:
    """In a child: two all-due ticks, one counted (queries), one timed (wall, CPU)."""
    sys.path.insert(0, str(root))
    if root.resolve() != CHECKOUT:
        sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    import collections

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from crontabber.models import Job, Log
    from tests.jobs.models import Execution

    connection.queries_limit = 10**7
    connection.queries_log = collections.deque(maxlen=connection.queries_limit)

    def all_due():
        Log.objects.all().delete()
        Execution.objects.all().delete()
        past = timezone.now() - dt.timedelta(days=7)
        Job.objects.update(next_run=past, next_slot=past)

    def tick():
        call_command("cronrun", stdout=io.StringIO(), stderr=io.StringIO())

    result = {}
    Job.objects.update(claimed_by="", claimed_at=None, claim_expires=None)
    # A nothing-due tick first: the process's one-off costs (command scan, imports).
    Job.objects.update(next_run=timezone.now() + dt.timedelta(days=1))
    tick()
    all_due()
    with CaptureQueriesContext(connection) as queries:
        tick()
    kinds: dict[str, int] = {}
    own = 0
    for query in queries.captured_queries:
        sql = query["sql"]
        if "testjobs_execution" in sql:
            own += 1
            continue
        kind = sql.split(None, 1)[0].upper()
        table = re.search(r'(?:FROM|UPDATE|INTO)\s+"?(\w+)"?', sql, re.IGNORECASE)
        key = f"{kind} {table.group(1) if table else ''}".strip()
        kinds[key] = kinds.get(key, 0) + 1
    result["queries"] = len(queries)
    result["job_queries"] = own
    result["kinds"] = kinds
    result["ran"] = Execution.objects.count()
    all_due()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def backend_cpu():  # the PostgreSQL backend serving this runner (same host): on-CPU seconds
        try:
            return int(Path(f"/proc/{backend}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, IndexError, ValueError):
            return float("nan")

    queued0, backend0, backend_queued0 = run_queue_wait(), backend_cpu(), run_queue_wait(backend)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tick()
    result["wall"], result["cpu"] = time.perf_counter() - wall0, time.process_time() - cpu0
    result["queued"] = run_queue_wait() - queued0
    result["backend_cpu"] = backend_cpu() - backend0
    result["backend_queued"] = run_queue_wait(backend) - backend_queued0
    result["ran_timed"] = Execution.objects.count()
    spans = list(Execution.objects.values_list("started", "finished"))
    result["job_time"] = sum(f - s for s, f in spans)
    # Losing the race: every job due, but held by a live claim of another runner.
    all_due()
    Job.objects.update(claimed_by="someone-else:1:x", claimed_at=timezone.now(),
                       claim_expires=timezone.now() + dt.timedelta(hours=1))  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        tick()
    result["lost_queries"] = len(queries)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tick()
    result["lost_wall"], result["lost_cpu"] = time.perf_counter() - wall0, time.process_time() - cpu0
    result["lost_ran"] = Execution.objects.count()
    Job.objects.update(claimed_by="", claimed_at=None, claim_expires=None)
    print(json.dumps(result))


def profile_runner(project, db, timeout, root) -> str:
    make_all_due(db)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cronrun.prof")
        project.run([sys.executable, "-m", "cProfile", "-o", path, *project.argv("cronrun")[1:]], timeout)
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        out.write(f"Whole runner process, 1 runner, all jobs due: {stats.total_tt:.3f} s under cProfile\n\n")
        out.write("Top by own time:\n")
        stats.sort_stats("tottime").print_stats(15)
        out.write("crontabber/ and Django's call_command, cumulative:\n")
        stats.sort_stats("cumulative").print_stats(r"crontabber/|management/__init__|sleep|tests/jobs", 25)
    text = out.getvalue()
    text = "\n".join(
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("   Ordered", "   List reduced"))
    )
    return (
        text.replace(str(root) + "/", "")
        .replace(sys.prefix + "/", "<venv>/")
        .replace(sys.base_prefix + "/", "<python>/")
    )


# --- reporting -----------------------------------------------------------------------------


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[dict], counts: list[int]) -> list[dict]:
    rows = []
    for n in counts:
        mine = [r for r in runs if r["n"] == n]
        if not mine:
            continue
        rows.append({
            "n": n,
            "runs": len(mine),
            "makespan": median([r["makespan"] for r in mine]),
            "makespans": [r["makespan"] for r in mine],
            "exec_span": median([r["exec_span"] for r in mine]),
            "start_lag": median([r["start_lag"] for r in mine]),
            "tail": median([r["tail"] for r in mine]),
            "cpu": median([sum(r["cpu"]) for r in mine]),
            "other_cpu": median([r["other_cpu"] for r in mine]),
            "busy_before": median([r["busy_before"] for r in mine]),
            "queued": median([median(r["queued"]) for r in mine]),
            "duplicates": sum(r["duplicates"] for r in mine),
            "log_duplicates": sum(r["log_duplicates"] for r in mine),
            "problems": sum(len(r["problems"]) for r in mine),
            "jobs_per_runner": [sorted(r["jobs_per_runner"]) for r in mine],
        })  # fmt: skip
    base = next((row for row in rows if row["n"] == 1), None)
    for row in rows:
        row["ratio"] = row["makespan"] / base["makespan"] if base else float("nan")
        row["span_ratio"] = row["exec_span"] / base["exec_span"] if base else float("nan")
    return rows


def num(value: float) -> str:
    return "—" if value != value else f"{value:.2f}"


def table(rows: list[dict], jobs: int, seconds: float) -> str:
    lines = [
        "| runners | runs | makespan s (median) | makespans s | ratio to 1 | exec span s | span ratio | start lag s "
        "| tail s | CPU s (all runners) | run-queue wait s per runner | other CPU s | busy CPUs before | ideal sleep s "
        "| duplicates | problems |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['n']} | {row['runs']} | {row['makespan']:.2f} | {', '.join('%.2f' % m for m in row['makespans'])} "
            f"| {num(row['ratio'])} | {row['exec_span']:.2f} | {num(row['span_ratio'])} | {row['start_lag']:.2f} "
            f"| {row['tail']:.2f} | {row['cpu']:.2f} | {row['queued']:.2f} | {row['other_cpu']:.2f} | {row['busy_before']:.2f} "
            f"| {jobs * seconds / row['n']:.2f} "
            f"| {row['duplicates']} (Log: {row['log_duplicates']}) | {row['problems']} |"
        )  # fmt: skip
    return "\n".join(lines)


def machine(db: PostgresDatabase) -> list[str]:
    import django

    cpu = cpu_model()
    import psycopg

    return [
        f"- date: {dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- host: {platform.platform()}, nproc {len(os.sched_getaffinity(0))}{', ' + cpu if cpu else ''}",
        f"- Python {platform.python_version()}, Django {django.get_version()}, PostgreSQL {db.version()} "
        f"(local, TCP 127.0.0.1), psycopg {psycopg.__version__}",
    ]


def code_version(root: Path, rev: str | None) -> str:
    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    if rev:
        return f"`git archive {rev[:12]}` (commit {rev}) exported to a temporary directory"
    dirty = git("status", "--porcelain", "--", "crontabber", "webapp", "tests") if root == CHECKOUT else ""
    return f"{root} at {git('rev-parse', '--short', 'HEAD')}" + (" with uncommitted changes" if dirty else "")


# --- main ------------------------------------------------------------------------------------


def parse_modes(text: str) -> list[str]:
    """``--mode``: one mode or a comma-separated list; ``both`` is due,fresh."""
    modes = []
    for name in text.split(","):
        name = name.strip()
        for mode in ("due", "fresh") if name == "both" else (name,):
            if mode not in MODES:
                raise argparse.ArgumentTypeError(f"unknown mode {name!r}: due, fresh, warm, both or a list of them")
            if mode not in modes:
                modes.append(mode)
    return modes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", default="1,2,4", help="runner counts, comma-separated (default 1,2,4)")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.05, help="each job's sleep (default 0.05)")
    parser.add_argument("--reps", type=int, default=3, help="measured runs of each runner count (default 3)")
    parser.add_argument(
        "--mode",
        type=parse_modes,
        default="due",
        help="due, fresh, warm, both (= due,fresh) or a comma-separated list, e.g. due,warm (default due)",
    )
    parser.add_argument("--diagnose", action="store_true", help="start-up, per-job queries and cost, cProfile")
    parser.add_argument(
        "--pg-url", default=os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--dbname", default="crontabber_runners_bench")
    parser.add_argument("--root", type=Path, default=CHECKOUT, help="the project measured (default: this checkout)")
    parser.add_argument(
        "--rev", help="measure this git revision of the checkout (git archive to a temporary directory)"
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds allowed to each run of processes")
    parser.add_argument(
        "--max-busy",
        type=float,
        default=None,
        help="before each run wait until fewer than this many CPUs are busy (default: do not wait)",
    )
    parser.add_argument("--patience", type=float, default=120, help="longest wait for --max-busy, per run (s)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"where to write the results (default {RESULTS.name})"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.root)
        return 0
    counts = [int(c) for c in args.runners.split(",")]
    if not 1 <= args.reps <= 50 or not all(1 <= c <= 32 for c in counts) or not 1 <= args.jobs <= 10_000:
        parser.error("reps 1-50, runner counts 1-32, jobs 1-10000")
    modes = args.mode
    started = time.time()

    def say(text):
        print(f"{time.time() - started:7.1f}s {text}", flush=True)

    export = None
    root = args.root.resolve()
    if args.rev:
        args.rev = subprocess.run(["git", "rev-parse", "--verify", f"{args.rev}^{{commit}}"], cwd=CHECKOUT,
                                  capture_output=True, text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        export = tempfile.mkdtemp(prefix="crontabber-rev-")
        archive = subprocess.run(
            ["git", "archive", args.rev], cwd=CHECKOUT, capture_output=True, timeout=60, check=True
        )
        subprocess.run(["tar", "-x", "-C", export], input=archive.stdout, check=True, timeout=60)
        root = Path(export)
    jobs = registry(args.jobs, args.seconds)
    db = PostgresDatabase(args.pg_url, args.dbname)
    load_start = os.getloadavg()
    try:
        project = Project(root, db, jobs)
        project.run(project.argv("migrate", "-v0"), args.timeout)
        check = CHECK_IMPORTS.replace("ROOT", repr(str(root) + "/"))
        imported = project.run(project.argv("shell", "-c", check), 60).strip().splitlines()[-2:]
        if not imported[-1].startswith("OK"):
            raise Failed(f"the runners import crontabber modules from outside {root}: {imported[-1]}")
        say(f"measuring {code_version(root, args.rev)}; crontabber modules after set-up, all from there: {imported[0]}")
        results = {}
        for mode in modes:
            quiet = (lambda: wait_for_quiet(args.max_busy, args.patience, say)) if args.max_busy is not None else None
            results[mode] = series(project, db, mode, counts, args.reps, args.jobs, args.timeout, say, quiet)
        diagnosis = {}
        if args.diagnose:
            diagnosis["startup"] = startup_series(project, db, counts, args.reps, args.timeout, say, quiet)
            if quiet:
                quiet()
            diagnosis["inproc"] = in_process(project, db, args.timeout)
            say(f"[in-process tick] {json.dumps(diagnosis['inproc'])}")
            diagnosis["profile"] = profile_runner(project, db, args.timeout, root)
        load_end = os.getloadavg()
        report = render(args, counts, modes, results, diagnosis, db, root, load_start, load_end, time.time() - started)
        print(report["stdout"])
        if not args.no_write:
            args.output.write_text(report["markdown"])
            say(f"wrote {args.output}")
        return 0 if report["ok"] else 1
    finally:
        db.drop()
        if export:
            shutil.rmtree(export, ignore_errors=True)


def render(args, counts, modes, results, diagnosis, db, root, load_start, load_end, elapsed) -> dict:
    jobs, seconds = args.jobs, args.seconds
    out, verdicts, ok, raw = [], [], True, []
    for mode in modes:
        rows = summarise(results[mode], counts)
        tag = f"`{mode}` ({WARM_LABEL})" if mode == "warm" else f"`{mode}`"
        about = (f"{WARM_LABEL[0].upper()}{WARM_LABEL[1:]}: makespan and start lag from the tick T that picks the "
                 "jobs up, not from a process start; CPU from T to the end.\n\n" if mode == "warm" else "")  # fmt: skip
        out.append(f"### Mode `{mode}`\n\n{about}{table(rows, jobs, seconds)}\n")
        quiet_runs = [r for r in results[mode] if r["other_cpu"] / r["makespan"] < QUIET_CORES]
        quiet = summarise(quiet_runs, counts)
        if quiet:
            out.append(f"Quiet runs only (everything else on the machine, PostgreSQL included, used under {QUIET_CORES} "
                       f"CPU on average during the run): {len(quiet_runs)} of {len(results[mode])}\n\n"
                       f"{table(quiet, jobs, seconds)}\n")  # fmt: skip
        for r in results[mode]:
            raw.append(f"| {mode} | {r['rep'] + 1} | {r['n']} | {r['makespan']:.2f} | {r['exec_span']:.2f} | "
                       f"{r['start_lag']:.2f} | {sum(r['cpu']):.2f} | {median(r['queued']):.2f} | {r['other_cpu']:.2f} | "
                       f"{r['other_cpu'] / r['makespan']:.2f} | {r['busy_before']:.2f} | "
                       f"{'/'.join(map(str, r['jobs_per_runner']))} | {'/'.join(num(e) for e in r['ended'])} "
                       f"| {'/'.join(num(t) for t in r['own_tail'])} | {r['duplicates']} |")  # fmt: skip
        dups = sum(row["duplicates"] + row["log_duplicates"] for row in rows)
        problems = [p for r in results[mode] for p in r["problems"]]
        four = next((row for row in rows if row["n"] == max(counts)), None)
        verdicts.append(f"- {tag}: duplicates {dups} over {sum(row['runs'] for row in rows)} runs (target 0) — "
                        + ("**met**" if dups == 0 else "**missed**"))  # fmt: skip
        if problems:
            verdicts.append(f"- {tag}: problems: {problems}")
            ok = False
        if four and four["n"] != 1:
            met = four["ratio"] < TARGET_RATIO
            ok = ok and met and dups == 0
            verdicts.append(
                f"- {tag}: {four['n']} runners / 1 runner, median makespan: {four['ratio']:.2f}x "
                f"(target < {TARGET_RATIO}x) — " + ("**met**" if met else "**missed**")
                + f"; exec span only: {four['span_ratio']:.2f}x"
            )  # fmt: skip
            q1 = next((row for row in quiet if row["n"] == 1), None)
            q4 = next((row for row in quiet if row["n"] == four["n"]), None)
            if q1 and q4:
                verdicts.append(f"- {tag}, quiet runs only ({q1['runs']} with 1 runner, {q4['runs']} with {four['n']}): "
                                f"{q4['makespan'] / q1['makespan']:.2f}x")  # fmt: skip
            two = next((row for row in rows if row["n"] == 2), None)
            if two:
                verdicts.append(f"- {tag}: 2 runners / 1 runner: makespan {two['ratio']:.2f}x, exec span "
                                f"{two['span_ratio']:.2f}x")  # fmt: skip
    diag = []
    if diagnosis:
        st = diagnosis["startup"]
        diag.append("### Start-up alone: N runners started together, nothing due\n")
        diag.append("| runners | makespan s (median) | makespans s | CPU s per runner (median) |\n|---|---|---|---|")
        for n in counts:
            diag.append(f"| {n} | {median(st[n]['makespan']):.2f} | {', '.join('%.2f' % m for m in st[n]['makespan'])} "
                        f"| {median(st[n]['cpu']):.2f} |")  # fmt: skip
        ip = diagnosis["inproc"]
        overhead_wall = (ip["wall"] - jobs * seconds) / jobs
        overhead_cpu = ip["cpu"] / jobs
        per_job = (ip["queries"] - 1) / jobs
        diag.append("\n### Per-job cost inside one runner (in-process tick of all jobs, Django already set up)\n")
        diag.append(
            f"- ran {ip['ran_timed']} jobs in {ip['wall']:.2f} s wall, {ip['cpu']:.2f} s CPU; the jobs' own "
            f"`work` spans add up to {ip['job_time']:.2f} s (nominal {jobs * seconds:.2f} s)\n"
            f"- overhead beyond the nominal sleep: **{overhead_wall * 1000:.1f} ms wall per job**, of which "
            f"{overhead_cpu * 1000:.1f} ms the runner's CPU (crontabber + `call_command` + the job's ORM calls), "
            f"{ip['backend_cpu'] / jobs * 1000:.1f} ms its PostgreSQL backend's CPU, "
            f"{ip['queued'] / jobs * 1000:.1f} ms the runner and {ip['backend_queued'] / jobs * 1000:.1f} ms its "
            f"backend waiting for a CPU (run queue, /proc/PID/schedstat)\n"
            f"- SQL statements of the tick: {ip['queries']} (main thread's connection): {ip['job_queries']} are the "
            f"`work` command's own (2 per job), the rest crontabber's: "
            f"{(ip['queries'] - ip['job_queries'] - 1) / jobs:.1f} per job + 1 ({per_job:.1f} per job in all)\n"
            f"- crontabber's statements by kind and table: `{json.dumps(ip['kinds'])}`\n"
            f"- losing the race (all {jobs} jobs due but held by another runner's live claim): a tick costs "
            f"{ip['lost_wall']:.2f} s wall, {ip['lost_cpu']:.2f} s CPU, {ip['lost_queries']} statements "
            f"({ip['lost_wall'] / jobs * 1000:.2f} ms wall per job lost; {ip['lost_ran']} ran); with N runners "
            f"walking the same list each job is lost by N - 1 of them"
        )  # fmt: skip
        model = []
        base_mode = next((m for m in modes if m != "warm"), modes[0])  # the model adds start-up: one-tick runners
        base_rows = {row["n"]: row for row in summarise(results[base_mode], counts)}
        for n in counts:
            predicted = median(st[n]["makespan"]) + jobs * (seconds + overhead_wall) / n
            model.append(f"| {n} | {median(st[n]['makespan']):.2f} | {jobs * (seconds + overhead_wall) / n:.2f} "
                         f"| {predicted:.2f} | {base_rows[n]['makespan']:.2f} |")  # fmt: skip
        diag.append(f"\n### Model (mode `{base_mode}`): start-up(N) + jobs x (sleep + per-job overhead) / N\n")
        diag.append("| runners | start-up s | work / N s | predicted s | measured s |\n|---|---|---|---|---|")
        diag.extend(model)
        diag.append("\n### cProfile of one runner process\n\n```\n" + diagnosis["profile"] + "\n```")
    method = [
        f'- {jobs} jobs `{{"name": "job-i", "cmd": "work", "cmd_args": ["--label", "job-i", "--seconds", '
        f'"{seconds}"], "frequency": "1d"}}`, settings `tests.settings`; each job runs in the runner\'s process '
        f"(no `process` key) and records its own start and end in `testjobs_execution`",
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
        f"- per mode: one untimed warm-up run with {max(counts)} runners, then {args.reps} repetitions of "
        f"{', '.join(map(str, counts))} runners, alternating order (forward, then reversed); medians",
        "- makespan (`due`, `fresh`): first `Popen` to last exit; exec span: first `work` start to last `work` finish; start lag: first "
        "`Popen` to first `work` start; tail: last `work` finish to last exit; CPU: user + system of all runners; "
        f"ideal sleep: {jobs} x {seconds} s / N",
        "- duplicates: Execution rows beyond the first per label (Log: Log rows beyond the first per job); problems: "
        "jobs not run, unfinished executions, outcomes other than success, claims left, non-zero exit",
        "- run-queue wait: time each runner's main thread was ready to run but waiting for a CPU (/proc/PID/schedstat, "
        "read when it exits), median over runners; other CPU: CPU seconds the whole machine spent during the run "
        "(/proc/stat) minus the runners' own: PostgreSQL's backends plus any other tenant of the machine; busy CPUs "
        "before: CPUs busy over 0.5 s just before the run; quiet runs: other CPU / makespan below "
        f"{QUIET_CORES}"
        + (
            f" (each run waited, at most {args.patience:.0f} s, until fewer than {args.max_busy} were busy)"
            if args.max_busy is not None
            else ""
        ),
    ]
    markdown = "\n".join([
        "# Runners benchmark: N runners sharing one tick on PostgreSQL\n",
        f"Written by `benchmarks/runners.py` ({' '.join(sys.argv[1:]) or 'no options'}); do not edit by hand.\n",
        "## Machine\n",
        *machine(db),
        f"- load average (1, 5, 15 min) at start / end: {' '.join('%.2f' % x for x in load_start)} / "
        f"{' '.join('%.2f' % x for x in load_end)} (other processes share the machine)",
        f"- code measured: {code_version(root, args.rev)}",
        f"- whole benchmark: {elapsed:.0f} s\n",
        "## Method\n",
        *method,
        "\n## Results\n",
        *out,
        "## Targets\n",
        *verdicts,
        *(["\n## Diagnosis\n", *diag] if diag else []),
        "\n## Every measured run\n",
        "| mode | rep | runners | makespan s | exec span s | start lag s | CPU s | run-queue wait s | other CPU s "
        "| other CPUs busy (avg) | busy CPUs before | jobs per runner | exit s (each runner) "
        "| own last job to exit s (each) | duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *raw,
        "",
    ])  # fmt: skip
    stdout = "\n".join(out + verdicts + (diag[:-1] if diag else []))
    return {"markdown": markdown, "stdout": stdout, "ok": ok}


if __name__ == "__main__":
    sys.exit(main())
