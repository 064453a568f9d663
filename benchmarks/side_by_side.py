#!/usr/bin/env python
"""crontabber beside django-periodic-tasks and django-crontask (issue 25): one Django 6.1
project (project/sidebyside/), one every-minute no-op task on django-tasks-db's database
backend, each scheduler on a PostgreSQL database and a `db_worker` of its own, all three at
once. For each: the lag from slot to the task starting on the worker (p50/p99), the CPU of
an idle scheduler, the slots run after 3 minutes down, the slots run twice by two
instances. The peers and Django 6.1 live in a venv of their own under var/ (made on the
first run, the versions pinned here); the script runs itself again in it. The method in
detail: report().

    .venv/bin/python benchmarks/side_by_side.py [--root DIR] [--no-write]   # ~15-20 min
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    CHECKOUT,
    PROJECT,
    UTC,
    Failed,
    PostgresDatabase,
    Tree,
    add_options,
    fmt,
    header,
    loadavg,
    proc_cpu,
    write,
)

VENV = CHECKOUT / "var" / "side-by-side-venv"
PYTHON = "3.13"  # django-crontask 2.2.0 declares 3.14, which these machines lack; it needs nothing past 3.13
PINS = [  # Django 6.1 and the database backend as `make test-django6` pins them; the peers
    "Django==6.1.3",
    "croniter==7.0.0",
    "dj-database-url==3.1.2",
    "psycopg[binary]==3.3.9",
    "django-tasks-db==0.13.0",
    "redis==8.2.0",
    "django-periodic-tasks==0.2.1",
]
CRONTASK_PIN = "django-crontask==2.2.0"  # installed with --ignore-requires-python
REPORTED = ["Django", "django-tasks-db", "django-periodic-tasks", "django-crontask", "APScheduler", "redis"]

# How each is run: its recommended scheduler command at its defaults.
SCHEDULERS = {
    "crontabber": ["cronrun", "--loop"],  # CRONTABBER_INTERVAL: 300 s
    "django-periodic-tasks": ["run_scheduler"],  # --interval 15
    "django-crontask": ["crontask", "--no-heartbeat"],  # its Redis lock (settings.CRONTASK)
}
WORKER = ["db_worker"]  # --interval 1 (its poll while the queue is empty)
TASK = "sidebyside.tasks.tick"
EVERY_MINUTE, NEVER_NOW = "* * * * *", "0 0 1 1 *"  # the idle schedulers' task: on 1 January
LAG_SLOTS = 5  # minutes of every-minute slots whose lag is measured
DOWN = 180  # seconds a scheduler is stopped
TWO_SLOTS = 3  # minutes of slots with two instances running
SETTLE = 30  # seconds from a start to the first slot counted
PATIENCE = 330  # seconds to wait past a window for its slots to start (a 300 s loop's next tick)
SECOND_AFTER = 30  # seconds from the restart to a second instance's start
MINUTE = dt.timedelta(minutes=1)


# --- the venv of the peers ------------------------------------------------------------------


def peer_python() -> Path:
    """The venv's interpreter, the venv made (or remade, when the pins changed) first."""
    python, stamp = VENV / "bin" / "python", VENV / ".pins"
    wanted = "\n".join([*PINS, CRONTASK_PIN])
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    found = subprocess.run([CHECKOUT / "bin" / "find_python.sh", PYTHON], capture_output=True, text=True)
    if found.returncode:
        raise Failed(f"no Python {PYTHON}+ on this machine (bin/find_python.sh): the peers need one")
    subprocess.run([found.stdout.strip(), "-m", "venv", "--clear", VENV], check=True)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run([*pip, "--ignore-requires-python", CRONTASK_PIN], check=True)
    stamp.write_text(wanted)
    return python


def in_peer_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in REPORTED)


# --- one scheduler beside its worker --------------------------------------------------------


def claim_redis_databases(count: int, server: str = "redis://127.0.0.1:6379") -> list[str]:
    """Redis databases of this run's own for django-crontask's locks (its lock has one fixed
    key), claimed in database 0 as tests/settings.py claims the test runs' own."""
    import redis

    claims, owner, found = redis.Redis.from_url(f"{server}/0"), f"side_by_side:{os.getpid()}", []
    for number in range(15, 0, -1):
        key = f"crontabber-tests:redis-db:{number}"
        if len(found) < count and claims.set(key, owner, nx=True, ex=3600):
            atexit.register(claims.delete, key)
            found.append(f"{server}/{number}")
    if len(found) < count:
        raise Failed("no free Redis database for django-crontask's lock (1-15 all claimed)")
    return found


class Side:
    """One scheduler's deployment: its database, its worker, its scheduler instances, and
    a second database where another instance of it has nothing due (its idle CPU)."""

    def __init__(self, name: str, tree: Tree, args, logs: Path, redis: list[str]):
        self.name, self.tree, self.logs = name, tree, logs
        key = name.replace("-", "_")
        self.db = PostgresDatabase(args.pg_url, f"crontabber_side_{key}_{os.getpid()}")
        self.idle_db = PostgresDatabase(args.pg_url, f"crontabber_side_{key}_idle_{os.getpid()}")
        self.redis = redis
        self.schedulers: list[subprocess.Popen] = []
        self.second = ""  # the second instance at the end: running, or exited (status)
        self.started_count = 0  # scheduler instances started so far (their logs' names)
        self.others: list[subprocess.Popen] = []  # the worker and the idle scheduler
        self.marks: dict[str, float] = {}  # CPU seconds of a process at a moment, by label

    def env(self, db: PostgresDatabase, cron: str, redis: str) -> dict:
        return self.tree.env(db.url, DJANGO_SETTINGS_MODULE="sidebyside.settings", PYTHONPATH=str(self.tree.root),
                             SIDE_SCHEDULER=self.name, SIDE_DB=db.url, SIDE_CRON=cron, SIDE_REDIS=redis)  # fmt: skip

    def start(self, argv: list[str], env: dict, log: str) -> subprocess.Popen:
        out = open(self.logs / f"{self.name}-{log}.log", "a")
        return subprocess.Popen(self.tree.argv(PROJECT / "manage.py", *argv), cwd=PROJECT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip

    def migrate(self) -> list[subprocess.Popen]:
        return [self.start(["migrate", "-v0"], self.env(db, EVERY_MINUTE, self.redis[0]), "migrate")
                for db in (self.db, self.idle_db)]  # fmt: skip

    def start_all(self) -> None:
        self.others.append(self.start(WORKER, self.env(self.db, EVERY_MINUTE, self.redis[0]), "worker"))
        self.idle = self.start(SCHEDULERS[self.name], self.env(self.idle_db, NEVER_NOW, self.redis[1]), "idle")
        self.others.append(self.idle)
        self.start_scheduler()

    def start_scheduler(self) -> None:
        self.started_count += 1
        env = self.env(self.db, EVERY_MINUTE, self.redis[0])
        self.schedulers.append(self.start(SCHEDULERS[self.name], env, f"scheduler-{self.started_count}"))

    def stop_schedulers(self) -> None:
        stop(self.schedulers)
        self.schedulers = []

    def mark(self, label: str) -> None:
        """The CPU time so far of the running scheduler (first instance) and of the idle one."""
        if self.schedulers:
            self.marks[label] = proc_cpu(self.schedulers[0].pid)
        self.marks[f"idle {label}"] = proc_cpu(self.idle.pid)

    def runs(self) -> dict[dt.datetime, list[tuple[dt.datetime, dt.datetime | None]]]:
        """When each slot's task was queued and started on the worker (None: not yet), by slot."""
        rows = self.db.execute(
            "SELECT args_kwargs, enqueued_at, started_at FROM django_tasks_database_dbtaskresult WHERE task_path = %s",
            TASK,
        )
        slots: dict[dt.datetime, list] = {}
        for args_kwargs, enqueued, started in rows:
            slot = slot_of(self.name, args_kwargs, enqueued)
            slots.setdefault(slot, []).append((enqueued, started))
        return slots

    def started(self, slots: list[dt.datetime]) -> bool:
        runs = self.runs()
        return all(any(started for _, started in runs.get(slot, [])) for slot in slots)


def slot_of(scheduler: str, args_kwargs: dict, enqueued: dt.datetime) -> dt.datetime:
    """The slot a task belongs to: crontabber tells a backfill job's task (run_time); the
    peers enqueue within their tick after the slot (15 s at most), so its minute."""
    if scheduler == "crontabber":
        return dt.datetime.fromisoformat(args_kwargs["kwargs"]["run_time"]).astimezone(UTC)
    return enqueued.astimezone(UTC).replace(second=0, microsecond=0)


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM, as a service manager stops them; SIGKILL after 70 s (cronrun lets a job finish, 60 s)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(70)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the run ---------------------------------------------------------------------------------


def minutes_from(start: dt.datetime, count: int) -> list[dt.datetime]:
    """``count`` minute boundaries, the first at or after ``start``."""
    first = start.replace(second=0, microsecond=0) + (MINUTE if start.second or start.microsecond else dt.timedelta())
    return [first + i * MINUTE for i in range(count)]


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def sleep_until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - now()).total_seconds()))


def wait_started(sides: list[Side], slots: list[dt.datetime], after: dt.datetime) -> dt.datetime:
    """Until every side's ``slots`` have started on its worker or PATIENCE has passed since ``after``."""
    sleep_until(after)
    deadline = after + dt.timedelta(seconds=PATIENCE)
    while now() < deadline and not all(side.started(slots) for side in sides):
        time.sleep(2)
    return now()


def run(sides: list[Side]) -> dict:
    """The phases, all sides at once; what was when, for report()."""
    migrations = [process for side in sides for process in side.migrate()]
    for process in migrations:
        if process.wait(600):
            raise Failed(f"{' '.join(map(str, process.args))}: exit status {process.returncode}")
    for side in sides:
        side.start_all()
    began = now()
    print(f"{began:%H:%M:%S} started", flush=True)
    lag = minutes_from(began + dt.timedelta(seconds=SETTLE), LAG_SLOTS)
    sleep_until(lag[0])
    for side in sides:
        side.mark("lag start")
    lag_end = lag[-1] + MINUTE
    down_at = wait_started(sides, lag, lag_end)
    for side in sides:
        side.mark("lag end")
        side.stop_schedulers()
    print(f"{now():%H:%M:%S} lag slots done; down for {DOWN} s", flush=True)
    sleep_until(down_at + dt.timedelta(seconds=DOWN))
    up_at = now()
    for side in sides:
        side.start_scheduler()
    second_at = up_at + dt.timedelta(seconds=SECOND_AFTER)
    sleep_until(second_at)
    for side in sides:
        side.start_scheduler()
    print(f"{now():%H:%M:%S} up again; two instances", flush=True)
    two = minutes_from(second_at, TWO_SLOTS)
    wait_started(sides, two, two[-1] + dt.timedelta(seconds=5))
    for side in sides:
        side.mark("end")
        exited = side.schedulers[-1].poll()
        side.second = "running" if exited is None else f"exited ({exited})"
    for side in sides:
        side.stop_schedulers()
        stop(side.others)
    return {"began": began, "lag": lag, "lag_end": lag_end, "down_at": down_at, "up_at": up_at, "two": two}


def figures(side: Side, phases: dict) -> dict:
    """One side's figures from its worker's rows and its CPU marks."""
    runs = side.runs()
    queued = {slot: min(queued for queued, _ in rows) for slot, rows in runs.items()}
    started = {slot: sorted(started for _, started in rows if started) for slot, rows in runs.items()}
    lags = sorted((started[slot][0] - slot).total_seconds() for slot in phases["lag"] if started.get(slot))
    down = [slot for slot in minutes_from(phases["down_at"], 4) if slot < phases["up_at"]]
    idle_minutes = (phases["end_at"] - phases["lag"][0]).total_seconds() / 60
    lag_minutes = (phases["lag_end_at"] - phases["lag"][0]).total_seconds() / 60
    return {
        "queue_lags": [(queued[slot] - slot).total_seconds() for slot in phases["lag"] if slot in queued],
        "lags": lags,
        "lag_slots": len(phases["lag"]),
        "down": len(down),
        "down_run": sum(1 for slot in down if started.get(slot)),
        "two": len(phases["two"]),
        "two_once": sum(1 for slot in phases["two"] if len(started.get(slot, [])) == 1),
        "two_twice": sum(1 for slot in phases["two"] if len(started.get(slot, [])) > 1),
        "idle_cpu_ms_min": (side.marks["idle end"] - side.marks["idle lag start"]) * 1000 / idle_minutes,
        "busy_cpu_ms_min": (side.marks["lag end"] - side.marks["lag start"]) * 1000 / lag_minutes,
        "second": side.second,
    }


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (of a handful of values: p99 is the largest)."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[max(0, min(len(ranked) - 1, -(-len(ranked) * q // 100) - 1))]


# --- the report ------------------------------------------------------------------------------


def report(results: dict[str, dict], head: list[str], peer_versions: str) -> list[str]:
    rows = []
    for name, r in results.items():
        lags, queued = r["lags"], r["queue_lags"]
        rows.append(
            f"| {name} | {fmt(percentile(queued, 50), 2)} / {fmt(percentile(queued, 99), 2)} | "
            f"{fmt(percentile(lags, 50), 2)} / {fmt(percentile(lags, 99), 2)} | {len(lags)} of "
            f"{r['lag_slots']} | {fmt(r['idle_cpu_ms_min'], 1)} | {fmt(r['busy_cpu_ms_min'], 1)} | "
            f"{r['down_run']} of {r['down']} | {r['two_twice']} of {r['two']} ({r['two_once']} once, "
            f"{r['two'] - r['two_once'] - r['two_twice']} not run) | {r['second']} |"
        )
    return [
        *head,
        f"- the children's packages (venv `var/side-by-side-venv`): {peer_versions}",
        "",
        "## Method",
        "",
        "- one Django 6.1 project (`benchmarks/project/sidebyside/`), its task `sidebyside.tasks.tick` (a no-op) "
        "registered with the scheduler of each deployment; each deployment has its own PostgreSQL database and one "
        "`manage.py db_worker` (django-tasks-db's `DatabaseBackend`, its default 1 s poll); the three deployments "
        "run at the same time, through the same phases",
        "- how each scheduler runs (its recommended command, its defaults): crontabber `manage.py cronrun --loop` "
        '(`CRONTABBER_INTERVAL` 300 s), the task as a job with `backfill: true` and `backend: "default"` (on the '
        "worker); django-periodic-tasks `manage.py run_scheduler` (a tick every 15 s), `@scheduled_task(cron=...)`; "
        "django-crontask `manage.py crontask --no-heartbeat` (its every-minute heartbeat task left out: the "
        'worker runs the same work for all three) with its Redis lock (`CRONTASK = {"REDIS_URL": ...}`, the '
        "README's setup where several instances may run), `@cron(...)`",
        f"- lag: the {LAG_SLOTS} every-minute slots from the first minute {SETTLE} s or more after the start; a "
        "slot's lag is its task's `started_at` on the worker minus the slot (and, the scheduler's own part, "
        "its first `enqueued_at` minus the slot) (crontabber passes the slot as "
        "`run_time`; the peers' slot is the minute their tick enqueued it); nearest-rank p50 and p99 (of "
        f"{LAG_SLOTS} slots p99 is the largest); the phase waits up to {PATIENCE} s past the window for late slots",
        "- idle CPU: a second instance of each scheduler on a database of its own with the same task due only on "
        "1 January (nothing due during the run), user + system CPU (/proc) from the first lag slot to the end, "
        "ms per minute; busy CPU: the measured scheduler's over the lag window (one every-minute task)",
        f"- down: the scheduler stopped (SIGTERM) once the lag slots ran, started again {DOWN} s later; the slots "
        "that fell due meanwhile that ever ran by the end of the run",
        f"- two instances: {SECOND_AFTER} s after the restart a second instance of the scheduler starts on the same database; "
        f"the {TWO_SLOTS} slots from then on, how many ran twice (and once), and whether the second instance was still "
        f"running at the end (one that exits is no standby); the phase waits up to {PATIENCE} s "
        "past the window; then everything is stopped and the rows read",
        "",
        "## Figures",
        "",
        "| scheduler | slot to queued, p50 / p99 (s) | slot to started, p50 / p99 (s) | lag slots run | "
        f"idle CPU (ms/min) | busy CPU (ms/min) | slots run after {DOWN // 60} min down | "
        "slots run twice by 2 instances | the second instance at the end |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_options(parser, "results-side-by-side.md")
    return parser.parse_args(argv)


def main() -> int:
    args = parse()
    if not in_peer_venv():  # run again in the venv of Django 6.1 and the peers
        python = str(peer_python())
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop: the children are stopped too
    started, load_before = now(), loadavg()
    tree = Tree.from_args(args)
    logs = Path(tempfile.mkdtemp(prefix="side-by-side-"))
    redis = claim_redis_databases(2)
    sides = [Side(name, tree, args, logs, redis) for name in SCHEDULERS]
    try:
        tree.check_imports(sides[0].env(sides[0].db, EVERY_MINUTE, redis[0]), cwd=PROJECT)
        phases = run(sides)
        phases |= {"lag_end_at": phases["down_at"], "end_at": now()}
        results = {side.name: figures(side, phases) for side in sides}
        pg = sides[0].db.version()
    finally:
        for side in sides:
            stop(side.schedulers + side.others)
            side.db.drop()
            side.idle_db.drop()
    lines = report(results, header("crontabber beside django-periodic-tasks and django-crontask", started,
                                   load_before, tree, pg), versions())  # fmt: skip
    print("\n".join(lines))
    print(f"children's logs: {logs}", file=sys.stderr)
    write(args, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
