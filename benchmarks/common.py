"""What the benchmark scripts share: the project measured and its child processes, scratch
databases, the registry handed to a child, medians, and the machine, versions and load
that every results file records. Not a benchmark; importable from any script of this
folder (a script's own folder is first on sys.path).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
PROJECT = HERE / "project"  # real files the children run: boot.py, probe.py, the backfill project
UTC = dt.UTC
PG_URL = os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


class Failed(RuntimeError):
    """A run that does not hold (a child failed, a tick did the wrong thing): an error, not a figure."""


try:
    import psycopg

    DB_ERRORS: tuple[type[Exception], ...] = (OSError, sqlite3.Error, psycopg.Error)
except ImportError:  # no PostgreSQL driver: the postgres cases say so
    DB_ERRORS = (OSError, sqlite3.Error, ImportError)


def median(values) -> float:
    values = [v for v in values if v == v]  # NaN: not measured
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value != value else f"{value:.{digits}f}"  # NaN: not measured


def met(ok: bool, yes: str = "met", no: str = "not met") -> str:
    return f"**{yes if ok else no}**"


def schedstat(pid: int | str | None, field: int) -> float:
    """Seconds a process has run on a CPU (field 0) or waited, runnable, for one (field 1):
    /proc/PID/schedstat; 0 without a process (SQLite has no server), NaN where unreadable."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[field]) / 1e9 if pid else 0.0
    except (OSError, IndexError, ValueError):
        return float("nan")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (/proc/PID/stat; NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or '' where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine(pg_version: str | None = None) -> list[str]:
    """The host and the versions of what the children run (this interpreter's)."""
    import django

    versions = f"Python {platform.python_version()}, Django {django.get_version()}, SQLite {sqlite3.sqlite_version}"
    try:
        import psycopg

        versions += f", psycopg {psycopg.__version__}"
    except ImportError:
        pass
    return [
        f"- host: {platform.platform()}, nproc {len(os.sched_getaffinity(0))}, {cpu_model() or 'unknown CPU'}",
        f"- {versions}" + (f", PostgreSQL {pg_version}" if pg_version else ""),
    ]


def header(title: str, started: dt.datetime, load_before: str, tree: Tree, pg_version: str | None = None) -> list[str]:
    """A results file's title and its Machine section: date, host, versions, load, code."""
    return [
        f"# {title}",
        "",
        f"Written by `benchmarks/{Path(sys.argv[0]).name}` ({' '.join(sys.argv[1:]) or 'defaults'}); "
        "do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; whole run {(dt.datetime.now(UTC) - started).total_seconds():.0f} s",
        *machine(pg_version),
        f"- load average (1, 5, 15 min) before / after: {load_before} / {loadavg()} (the machine is shared with other work)",
        f"- code measured: {tree.describe()}",
        "",
    ]


def write(args, lines: list[str]) -> None:
    if not args.no_write:
        args.output.write_text("\n".join(lines) + "\n")
        print(f"written: {args.output}", file=sys.stderr)


def add_options(parser: argparse.ArgumentParser, results: str, trees: bool = True) -> None:
    """The options every script takes: the project measured, the server, where the results go."""
    if trees:
        parser.add_argument("--root", type=Path, default=CHECKOUT, help="measure the project in this directory")
        parser.add_argument("--rev", help="measure this git revision (exported to a temporary directory)")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (no database name) for scratch databases")
    parser.add_argument("--output", type=Path, default=HERE / results, help=f"default benchmarks/{results}")
    parser.add_argument("--no-write", action="store_true", help="print the figures, write no results file")


# --- the project measured and its children ------------------------------------------------


class Tree:
    """The project whose crontabber is measured: this checkout, another directory (--root)
    or a revision exported with git archive (--rev). Children of another tree start through
    project/boot.py, which drops the venv's editable-install finder (it would fill any module
    missing from that tree with this checkout's)."""

    def __init__(self, root: Path = CHECKOUT, rev: str | None = None):
        self.rev = rev
        if rev:
            self.rev = git("rev-parse", "--verify", f"{rev}^{{commit}}")
            root = Path(tempfile.mkdtemp(prefix="crontabber-rev-"))
            atexit.register(shutil.rmtree, root, True)
            archive = subprocess.run(["git", "archive", self.rev], cwd=CHECKOUT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
        self.root = Path(root).resolve()
        self.manage = self.root / "webapp" / "manage.py"
        self.prefix = [sys.executable] if self.root == CHECKOUT else [sys.executable, str(PROJECT / "boot.py")]

    @classmethod
    def from_args(cls, args) -> Tree:
        return cls(getattr(args, "root", CHECKOUT), getattr(args, "rev", None))

    def argv(self, script: str | Path, *args: str) -> list[str]:
        return [*self.prefix, str(script), *args]

    def manage_argv(self, *args: str) -> list[str]:
        return self.argv(self.manage, *args)

    def env(self, url: str, jobs: list | None = None, **extra: str) -> dict[str, str]:
        """A child's environment on tests.settings: the database, the registry, .pyc files
        used (as in a deployed loop), no extra settings unless given."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TEST_", "DJANGO_"))}
        env.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=url, **registry_env(jobs or []))
        return env | extra

    def check_imports(self, env: dict, cwd: Path | None = None) -> None:
        """Failed if a child with ``env`` imports crontabber modules from outside the tree."""
        done = run(self.argv(PROJECT / "strays.py", str(self.root)), env, 120, cwd=cwd or self.root, capture=True)
        if not done["stdout"].startswith("OK"):
            raise Failed(f"the children import crontabber from outside {self.root}: {done['stdout'].strip()}")

    def describe(self) -> str:
        if self.rev:
            return f"`git archive {self.rev[:12]}` exported to a temporary directory"
        if not (self.root / ".git").exists():
            return f"{self.root} (not a git checkout)"
        commit = git("rev-parse", "--short", "HEAD", cwd=self.root)
        dirty = git("status", "--porcelain", "--", "crontabber", "webapp", "tests", cwd=self.root)
        return f"{self.root} at {commit}" + (
            " with uncommitted changes to crontabber/, webapp/ or tests/" if dirty else ""
        )


def git(*args: str, cwd: Path = CHECKOUT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60).stdout.strip()


def run(argv: list[str], env: dict, timeout: float, cwd: Path = CHECKOUT, capture: bool = False) -> dict:
    """A child to completion: its wall and CPU time (user + system, s), its peak RSS (MB,
    ``ru_maxrss`` from ``wait4``) and its stdout if asked. Failed on a non-zero exit or the timeout."""
    killed = []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                 stdout=out if capture else subprocess.DEVNULL, stderr=err, text=True)  # fmt: skip
        timer = threading.Timer(timeout, lambda: killed.append(child.kill()))
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    what = " ".join(str(a) for a in argv[1:])
    if killed:
        raise Failed(f"{what}: still running after {timeout:.0f} s")
    if child.returncode != 0:
        raise Failed(f"{what}: exit status {child.returncode}\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def registry_env(jobs: list) -> dict[str, str]:
    """The environment that hands ``jobs`` to a child on tests.settings: TEST_CRONTABBER_JOBS
    while it fits in one variable (as older commits read it), else a JSON file (removed
    when this process exits) named by TEST_CRONTABBER_JOBS_FILE."""
    text = json.dumps(jobs)
    if len(text) < 100_000:  # the kernel takes 128 KiB at most
        return {"TEST_CRONTABBER_JOBS": text}
    fd, path = tempfile.mkstemp(prefix="crontabber-registry-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    atexit.register(lambda: Path(path).unlink(missing_ok=True))
    return {"TEST_CRONTABBER_JOBS": "[]", "TEST_CRONTABBER_JOBS_FILE": path}


# --- scratch databases --------------------------------------------------------------------


class Database:
    """A scratch database: its DATABASE_URL, and raw SQL for the set-up UPDATEs and the
    checks (outside the measurement), so the measured processes are the only Django in play."""

    name = url = ""
    placeholder = "?"

    def connect(self):
        raise NotImplementedError

    def param(self, instant: dt.datetime):
        return instant

    def execute(self, sql: str, *params):
        """Run one statement in its own connection and commit; its rows, if it has any."""
        conn = self.connect()
        try:
            cur = conn.cursor()
            values = [self.param(p) if isinstance(p, dt.datetime) else p for p in params]
            cur.execute(sql.replace("%s", self.placeholder), values)
            rows = cur.fetchall() if cur.description else None
            conn.commit()
            return rows
        finally:
            conn.close()

    def scalar(self, sql: str, *params):
        return self.execute(sql, *params)[0][0]

    def version(self) -> str | None:
        return None


class SQLiteDatabase(Database):
    """A file in a new temporary folder: on disk, as in production, so each commit is a real fsync."""

    name = "sqlite"

    def __init__(self, parent: str | Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="crontabber-bench-", dir=parent))
        self.path = self.dir / "bench.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def connect(self):
        return sqlite3.connect(self.path, timeout=30)

    def param(self, instant):
        # As Django stores an aware datetime in SQLite: naive UTC text.
        return instant.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")

    def drop(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresDatabase(Database):
    """A database created afresh (dropped first if a crashed run left it) on the server of
    ``server_url``, dropped again by drop()."""

    name = "postgres"
    placeholder = "%s"

    def __init__(self, server_url: str, dbname: str):
        import psycopg

        self.psycopg = psycopg
        self.server_url = server_url.rstrip("/")
        self.dbname = dbname
        self.url = f"{self.server_url}/{dbname}"
        self._admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)', f'CREATE DATABASE "{dbname}"')

    def _admin(self, *statements: str) -> None:
        with self.psycopg.connect(f"{self.server_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            for statement in statements:
                conn.execute(statement)

    def connect(self):
        return self.psycopg.connect(self.url, connect_timeout=10)

    def version(self) -> str:
        return self.scalar("SHOW server_version")

    def drop(self):
        self._admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def scratch_database(kind: str, pg_url: str, name: str) -> Database:
    """``sqlite`` or ``postgres``: the PostgreSQL one named ``crontabber_<name>_<pid>``."""
    if kind == "sqlite":
        return SQLiteDatabase()
    if kind == "postgres":
        return PostgresDatabase(pg_url, f"crontabber_{name}_{os.getpid()}")
    raise Failed(f"unknown database {kind!r}: sqlite or postgres")
