#!/usr/bin/env python3
"""crontabber against django-cron, side by side, in one throwaway Django project.

django-cron (PyPI ``django-cron``) is the closest Django peer: ``manage.py runcrons``
run from cron, a log row per run, locks. Its last release (0.6.0) does not import on
Django 5.1 and later (``Meta.index_together`` was removed), so both tools run here on
Django 5.0, in a virtual environment of this benchmark's own (django-cron is never a
dependency of crontabber).

For each database (SQLite, PostgreSQL) and each size N (10, 100, 1,000), on a fresh
database, the same N no-op jobs are registered in each tool:

* crontabber: ``CRONTABBER_JOBS`` entries ``{"name": "job-<i>", "cmd": "noop",
  "frequency": "1h"}``, ``noop`` a management command that does nothing (a crontabber
  job *is* a management command, run in-process with ``call_command``);
* django-cron: ``CRON_CLASSES`` listing N ``CronJobBase`` subclasses with
  ``schedule = Schedule(run_every_mins=60)`` and ``do()`` returning at once.

and each tool is measured in two scenarios:

* **none due**: every job ran recently (crontabber: ``next_run`` a day ahead;
  django-cron: its ``CronJobLog`` rows started just now);
* **all due**: before each measured tick (an UPDATE outside the measurement) every
  crontabber job's ``next_run``/``next_slot`` is set a week back, and every django-cron
  ``CronJobLog`` row's ``start_time``/``end_time`` too; both logs keep growing by N rows
  per all-due tick, alike;

and every measured tick is verified from the database: no new log row when nothing was
due; exactly one successful new row per job when all were, and no lock left held.

Figures, all from the same run, the tools alternating (the order rotates every round, so
both see the same machine load):

* **wall**: whole processes, ``python manage.py cronrun`` vs ``python manage.py
  runcrons``, with ``python manage.py version`` (nothing registered: settings and
  ``django.setup()``, no command) as Django's own start-up and ``python manage.py check``
  as the issue's reference; medians of --none-runs (11) rounds with nothing due, --runs
  (5) with all due. Also each child's CPU time (user + system)
  and its peak RSS (``ru_maxrss`` from ``wait4``);
* **tick**: in a fresh child with Django set up (and its database connection open),
  ``call_command('cronrun')`` vs ``call_command('runcrons')``, the first tick of the
  process as a real run pays it; medians; per job = the all-due tick / N;
* **queries**: ``CaptureQueriesContext`` around such a tick (a separate child: the debug
  cursor costs time);
* **memory**: peak RSS of the whole process (above), and ``tracemalloc``'s peak of the
  Python allocations made during the tick (a separate child: tracing is slow).

django-cron is measured twice, alternating with the others:

* ``dc``: with ``django_cron.backends.lock.database.DatabaseLock`` (a row per job in the
  same database), the same guarantee as crontabber's claims: one database shared by every
  runner, on any host, so two runners never run a job at once;
* ``dc-cache``: as shipped, ``CacheLock`` on the default cache, here Django's default
  ``LocMemCache``. That is what a project gets without configuring anything, and it is
  django-cron's floor: a per-process cache locks nothing across processes (two
  ``runcrons`` may run the same job together), and a cache shared by all runners
  (memcached, Redis) would add a round trip per lock operation.

Usage (any Python 3.11; the benchmark's venv is built under var/ on first use):

    python3.11 benchmarks/compare.py                       # 10,100,1000 x sqlite,postgres (~25 min)
    python3.11 benchmarks/compare.py --sizes 10 --db sqlite --runs 3 --no-write
    python3.11 benchmarks/compare.py --profile all-1000    # + pyinstrument of every tick

The crontabber measured is a copy of this checkout's ``crontabber/`` taken at start (so
concurrent edits do not change it mid-run). Results: a table on stdout and
benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.md"
DEFAULT_VENV = ROOT / "var" / "compare-venv"
REQUIREMENTS = [
    "Django>=5.0,<5.1",
    "django-cron==0.6.0",
    "croniter==7.0.0",
    "psycopg[binary]==3.3.9",
    "pyinstrument==5.1.3",
]
UTC = dt.UTC
DB_LOCK = "django_cron.backends.lock.database.DatabaseLock"
CACHE_LOCK = "django_cron.backends.lock.cache.CacheLock"
TARGET = 0.5  # crontabber / django-cron wall time at N = 1,000
REFERENCES = ("startup", "check")  # processes that tick nothing

# --- the benchmark's virtual environment -------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path) -> Path:
    """The venv with REQUIREMENTS, built (or rebuilt when they changed) on first use."""
    stamp = venv / ".compare-requirements"
    wanted = "\n".join(REQUIREMENTS)
    python = venv_python(venv)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    base = shutil.which("python3.11") or sys.executable
    print(f"building the benchmark venv {venv} ({', '.join(REQUIREMENTS)})", file=sys.stderr)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True, timeout=900)
    stamp.write_text(wanted)
    return python


def reexec_in_venv(venv: Path) -> None:
    """Run this script again with the venv's interpreter (it has psycopg and Django 5.0)."""
    python = ensure_venv(venv)
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    os.execv(str(python), [str(python), str(Path(sys.argv[0]).resolve()), *sys.argv[1:]])


# --- the throwaway project ---------------------------------------------------------------

MANAGE_PY = """\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cmpproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

SETTINGS_PY = '''\
"""Settings of the throwaway project; everything that varies comes from the environment."""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "compare-benchmark"
DEBUG = False
ALLOWED_HOSTS = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # django-cron's own tables use AutoField
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "crontabber",
    "django_cron",
    "cmpapp",
]

_db = os.environ.get("CMP_DB", "sqlite:///" + str(BASE_DIR / "db.sqlite3"))
if _db.startswith("sqlite:///"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db[len("sqlite:///"):]}}
else:
    _url = urlsplit(_db)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "postgres",
            "PASSWORD": _url.password or "",
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": str(_url.port or 5432),
        }
    }
# django-cron's default lock backend (CacheLock) uses the default cache.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CMP_N = int(os.environ.get("CMP_N", "0"))
_registry = os.environ.get("CMP_REGISTRY", "both")  # crontabber, django_cron, both, none
if "CMP_JOBS" in os.environ:
    CRONTABBER_JOBS = json.loads(os.environ["CMP_JOBS"])
elif _registry in ("crontabber", "both"):
    CRONTABBER_JOBS = [{"name": f"job-{i}", "cmd": "noop", "frequency": "1h"} for i in range(CMP_N)]
else:
    CRONTABBER_JOBS = []
CRON_CLASSES = [f"cmpapp.cronjobs.Job{i}" for i in range(CMP_N)] if _registry in ("django_cron", "both") else []
DJANGO_CRON_LOCK_BACKEND = os.environ.get("CMP_DC_LOCK", "django_cron.backends.lock.database.DatabaseLock")
'''

CRONJOBS_PY = '''\
"""CMP_N django-cron jobs that do nothing, every 60 minutes (CRON_CLASSES lists them)."""

from django.conf import settings
from django_cron import CronJobBase, Schedule


class NoopJob(CronJobBase):
    schedule = Schedule(run_every_mins=60)
    code = "noop"

    def do(self):
        return ""


for _i in range(settings.CMP_N):
    globals()[f"Job{_i}"] = type(f"Job{_i}", (NoopJob,), {"code": f"job-{_i}", "__module__": __name__})
'''

NOOP_PY = """\
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing (a crontabber job of the benchmark); accepts --run-time for backfill jobs."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--run-time")

    def handle(self, *args, **options):
        return None
"""

PROBE_PY = '''\
"""One tick in a process with Django set up: its time, queries or memory, as JSON."""

import collections
import io
import json
import os
import resource
import sys
import time
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cmpproj.settings")
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

mode, argv = sys.argv[1], sys.argv[2:]
connection.ensure_connection()  # the tick is measured, not the connection set-up
out = io.StringIO()


def tick():
    call_command(*argv, stdout=out, stderr=out)


def maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


result = {}
if mode == "tick":
    before = maxrss_kb()
    started = time.perf_counter()
    tick()
    result["tick"] = time.perf_counter() - started
    result["rss_growth_kb"] = maxrss_kb() - before
elif mode == "queries":
    # CaptureQueriesContext reads connection.queries_log, a deque of 9,000 at most.
    connection.queries_limit = 10**7
    connection.queries_log = collections.deque(maxlen=connection.queries_limit)
    with CaptureQueriesContext(connection) as queries:
        tick()
    kinds = collections.Counter(q["sql"].lstrip().split(None, 1)[0].upper() for q in queries.captured_queries)
    result["queries"] = len(queries)
    result["kinds"] = dict(kinds)
elif mode == "tracemalloc":
    tracemalloc.start()
    tick()
    result["traced_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(result))
'''


def make_project(dest: Path, source: Path | None = None) -> str:
    """Write the throwaway project into ``dest`` with a copy of ``source`` (this
    checkout's crontabber/); return a digest of the copied sources (the code measured)."""
    import hashlib

    files = {
        "manage.py": MANAGE_PY,
        "probe.py": PROBE_PY,
        "cmpproj/__init__.py": "",
        "cmpproj/settings.py": SETTINGS_PY,
        "cmpapp/__init__.py": "",
        "cmpapp/cronjobs.py": CRONJOBS_PY,
        "cmpapp/management/__init__.py": "",
        "cmpapp/management/commands/__init__.py": "",
        "cmpapp/management/commands/noop.py": NOOP_PY,
    }
    for name, text in files.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.copytree(
        source or ROOT / "crontabber", dest / "crontabber", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    digest = hashlib.sha256()
    for path in sorted((dest / "crontabber").rglob("*.py")):
        digest.update(str(path.relative_to(dest)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --- databases ---------------------------------------------------------------------------


from hostinfo import cpu_model  # noqa: E402
from scratchdb import Database, PostgresDatabase, SQLiteDatabase  # noqa: E402  re-exported to backfill.py

# --- the tools ---------------------------------------------------------------------------


class Failed(RuntimeError):
    pass


class Tool:
    """One thing measured: its manage.py command and the environment of its processes."""

    def __init__(self, key: str, label: str, argv: list[str], env: dict[str, str], cwd: Path | None = None):
        self.key, self.label, self.argv, self.env = key, label, argv, env
        self.cwd = cwd  # another project directory (another crontabber), or None

    # State changes and checks, in raw SQL outside the measured process.
    def make_due(self, db: Database, due: bool) -> None:
        pass

    def mark(self, db: Database) -> int:
        return 0

    def verify(self, db: Database, mark: int, n: int, due: bool, what: str) -> None:
        pass


class Crontabber(Tool):
    def make_due(self, db, due):
        now = dt.datetime.now(UTC)
        if due:
            db.execute("UPDATE crontabber_job SET next_run = %s, next_slot = %s", now - dt.timedelta(days=7),
                       now - dt.timedelta(days=7))  # fmt: skip
        else:
            db.execute("UPDATE crontabber_job SET next_run = %s", now + dt.timedelta(days=1))

    def mark(self, db):
        return db.scalar("SELECT COALESCE(MAX(id), 0) FROM crontabber_log")

    def verify(self, db, mark, n, due, what):
        rows, jobs, ok = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT job_id), COALESCE(SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END), 0)"
            " FROM crontabber_log WHERE id > %s", mark)[0]  # fmt: skip
        held = db.scalar("SELECT COUNT(*) FROM crontabber_job WHERE claimed_by <> ''")
        expected = n if due else 0
        if (rows, jobs, ok, held) != (expected, expected, expected, 0):
            raise Failed(f"{what}: {rows} attempt(s) of {jobs} job(s), {ok} successful, {held} claim(s) held; "
                         f"expected {expected} of {expected}, all successful, none held")  # fmt: skip


class DjangoCron(Tool):
    def make_due(self, db, due):
        when = dt.datetime.now(UTC) - (dt.timedelta(days=7) if due else dt.timedelta(0))
        db.execute("UPDATE django_cron_cronjoblog SET start_time = %s, end_time = %s", when, when)

    def mark(self, db):
        return db.scalar("SELECT COALESCE(MAX(id), 0) FROM django_cron_cronjoblog")

    def verify(self, db, mark, n, due, what):
        rows, jobs, ok = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT code), COALESCE(SUM(CASE WHEN is_success THEN 1 ELSE 0 END), 0)"
            " FROM django_cron_cronjoblog WHERE id > %s", mark)[0]  # fmt: skip
        held = db.scalar("SELECT COUNT(*) FROM django_cron_cronjoblock WHERE locked")
        expected = n if due else 0
        if (rows, jobs, ok, held) != (expected, expected, expected, 0):
            raise Failed(f"{what}: {rows} run(s) of {jobs} job(s), {ok} successful, {held} lock(s) held; "
                         f"expected {expected} of {expected}, all successful, none held")  # fmt: skip


def make_tools(dc_cache: bool, alt: Path | None = None) -> list[Tool]:
    tools = [
        Tool("startup", "manage.py version", ["version"], {"CMP_REGISTRY": "none"}),
        Tool("check", "check", ["check"], {"CMP_REGISTRY": "none"}),
        Crontabber("crontabber", "crontabber cronrun", ["cronrun"], {"CMP_REGISTRY": "crontabber"}),
        DjangoCron(
            "django-cron",
            "django-cron runcrons (DatabaseLock)",
            ["runcrons"],
            {"CMP_REGISTRY": "django_cron", "CMP_DC_LOCK": DB_LOCK},
        ),  # fmt: skip
    ]
    if alt is not None:  # a second crontabber (its own project directory), e.g. a patched copy
        tools.insert(3, Crontabber("crontabber-alt", "crontabber cronrun (alternative copy)", ["cronrun"],
                                   {"CMP_REGISTRY": "crontabber"}, cwd=alt))  # fmt: skip
    if dc_cache:
        tools.append(DjangoCron("django-cron-cache", "django-cron runcrons (CacheLock, LocMemCache)", ["runcrons"],
                                {"CMP_REGISTRY": "django_cron", "CMP_DC_LOCK": CACHE_LOCK}))  # fmt: skip
    return tools


# --- child processes ---------------------------------------------------------------------


class Project:
    def __init__(self, path: Path, python: Path):
        self.path, self.python = path, python

    def env(self, db: Database, n: int, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CMP_", "DJANGO_", "PYTHON"))}
        env.update(DJANGO_SETTINGS_MODULE="cmpproj.settings", CMP_DB=db.url, CMP_N=str(n), **extra)
        return env

    def run(self, argv: list[str], env: dict, timeout: float, capture: bool = False, cwd: Path | None = None) -> dict:
        """A child to completion: wall and CPU time (s), peak RSS (MB, ``ru_maxrss`` from
        ``wait4``), and its stdout if asked."""
        killed = []

        def kill():
            killed.append(True)
            child.kill()

        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            child = subprocess.Popen([str(self.python), *argv], cwd=cwd or self.path, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out if capture else subprocess.DEVNULL, stderr=err, text=True)  # fmt: skip
            timer = threading.Timer(timeout, kill)
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
        if killed:
            raise Failed(f"{' '.join(argv)}: still running after {timeout:.0f} s")
        if child.returncode != 0:
            raise Failed(f"{' '.join(argv)}: exit status {child.returncode}\n{stderr[-3000:]}")
        return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
                "stdout": stdout, "stderr": stderr}  # fmt: skip

    def manage(self, tool: Tool, db: Database, n: int, timeout: float, args=None) -> dict:
        return self.run(["manage.py", *(args or tool.argv)], self.env(db, n, tool.env), timeout, cwd=tool.cwd)

    def probe(self, tool: Tool, db: Database, n: int, mode: str, timeout: float) -> dict:
        done = self.run(["probe.py", mode, *tool.argv], self.env(db, n, tool.env), timeout, capture=True, cwd=tool.cwd)
        return json.loads(done["stdout"].strip().splitlines()[-1])


# --- one (database, N) -------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else float("nan")


def measure_size(project: Project, db: Database, n: int, tools: list[Tool], args, log) -> dict:
    """Every figure of one database and size: {scenario: {tool key: {figure: [values]}}}."""
    both = Tool("both", "both", [], {"CMP_REGISTRY": "both"})
    project.manage(both, db, n, args.timeout, ["migrate", "--noinput", "-v", "0"])
    jobs = [t for t in tools if t.key not in REFERENCES]
    # First ticks: every job exists and has run once (django-cron: its lock rows too).
    for tool in jobs:
        tool.make_due(db, True)
        mark = tool.mark(db)
        project.manage(tool, db, n, args.timeout)
        tool.verify(db, mark, n, True, f"{db.name} N={n} first tick of {tool.key}")
    figures: dict = {}
    for scenario in args.scenarios.split(","):
        due = scenario == "all due"
        data = {t.key: {"wall": [], "cpu": [], "rss_mb": [], "tick": [], "rss_growth_kb": [], "queries": [],
                        "kinds": {}, "traced_peak": []} for t in tools}  # fmt: skip
        figures[scenario] = data
        if scenario == args.scenarios.split(",")[0]:  # untimed warm-up of each, nothing due: page cache, .pyc
            for tool in tools:
                tool.make_due(db, False)
                project.manage(tool, db, n, args.timeout)
        series_started = time.perf_counter()

        def measured(tool: Tool, what: str, fn):
            tool.make_due(db, due)
            mark = tool.mark(db)
            result = fn()
            tool.verify(db, mark, n, due, f"{db.name} N={n} {scenario} {what} of {tool.key}")
            return result

        rounds = []
        runs = args.runs if due else max(args.none_runs, args.runs)
        for i in range(runs):
            spent = time.perf_counter() - series_started
            if i >= 3 and spent + spent / i > args.budget:
                data["cut"] = f"{i} of {runs} rounds (the series would pass its {args.budget:.0f} s budget)"
                break
            order = tools[i % len(tools) :] + tools[: i % len(tools)]
            for tool in order:
                done = measured(tool, "process", lambda t=tool: project.manage(t, db, n, args.timeout))
                for key in ("wall", "cpu", "rss_mb"):
                    data[tool.key][key].append(done[key])
            for tool in order:
                if tool.key in REFERENCES:
                    continue
                got = measured(tool, "in-process tick", lambda t=tool: project.probe(t, db, n, "tick", args.timeout))
                data[tool.key]["tick"].append(got["tick"])
                data[tool.key]["rss_growth_kb"].append(got["rss_growth_kb"])
            rounds.append(i)
        for i in range(args.mem_runs):
            order = jobs[i % len(jobs) :] + jobs[: i % len(jobs)]
            for tool in order:
                got = measured(tool, "queries", lambda t=tool: project.probe(t, db, n, "queries", args.timeout))
                data[tool.key]["queries"].append(got["queries"])
                data[tool.key]["kinds"] = got["kinds"]
                got = measured(tool, "tracemalloc", lambda t=tool: project.probe(t, db, n, "tracemalloc",
                                                                                 args.timeout))  # fmt: skip
                data[tool.key]["traced_peak"].append(got["traced_peak"])
        log(summary_line(db.name, n, scenario, data, tools))
    return figures


def summary_line(dbname, n, scenario, data, tools) -> str:
    parts = []
    for tool in tools:
        d = data[tool.key]
        text = f"{tool.key} {median(d['wall']):.3f} s"
        if d["queries"]:
            text += f" {d['queries'][0]} q"
        parts.append(text)
    return f"{dbname:8} N={n:<5} {scenario:8}: " + ", ".join(parts)


# --- profiles ----------------------------------------------------------------------------


def profile(project: Project, db: Database, n: int, scenario: str, tools: list[Tool], args) -> str:
    """pyinstrument of the whole cronrun and runcrons processes in one scenario."""
    out = []
    for tool in ticking(tools):
        tool.make_due(db, scenario == "all due")
        mark = tool.mark(db)
        report = project.path / f"profile-{tool.key}.txt"
        project.run(["-m", "pyinstrument", "--no-color", "--show", "*/django_cron/*", "-r", "text", "-o", str(report),
                     "manage.py", *tool.argv], project.env(db, n, tool.env), args.timeout, capture=True,
                    cwd=tool.cwd)  # fmt: skip
        tool.verify(db, mark, n, scenario == "all due", f"profile of {tool.key}")
        text = report.read_text().replace(str(project.path) + "/", "").replace(sys.prefix + "/", "<venv>/")
        rows = [r for r in text.splitlines() if r.strip() and not r.lstrip().startswith(("_", "/_/", "To view"))]
        out.append(f"### {tool.label}, {db.name}, N={n}, {scenario}\n\n```\n" + "\n".join(rows[:60]) + "\n```\n")
    return "\n".join(out)


# --- reporting ---------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(python: Path, pg_version: str | None) -> list[str]:
    cpu = cpu_model()
    versions = subprocess.run(
        [str(python), "-c", "import django, croniter, psycopg, sqlite3; from importlib.metadata import version; "
         "print(django.get_version(), version('django-cron'), version('croniter'), psycopg.__version__, "
         "sqlite3.sqlite_version)"], capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    lines = [
        f"- host: {platform.platform()}, {os.cpu_count()} CPUs, {cpu}",
        f"- Python {platform.python_version()}, Django {versions[0]}, django-cron {versions[1]}, "
        f"croniter {versions[2]}, psycopg {versions[3]}, SQLite {versions[4]}"
        + (f", PostgreSQL {pg_version}" if pg_version else ""),
    ]
    return lines


def code_version(digest: str, source: Path | None = None) -> str:
    if source is not None:
        return f"the crontabber package at {source} (sha256 of its .py files {digest})"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "crontabber"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "?", ""
    state = " with uncommitted changes to crontabber/" if dirty else ""
    return f"crontabber/ of {ROOT} at {commit}{state} (copied at start; sha256 of its .py files {digest})"


def f3(value) -> str:
    return "—" if value != value else f"{value:.3f}"  # NaN: not measured


def f1(value) -> str:
    return "—" if value != value else f"{value:.1f}"


def ratio(a, b) -> float:
    return a / b if b and a == a and b == b else float("nan")


def fq(values) -> str:
    if not values:
        return "—"
    return str(values[0]) if min(values) == max(values) else f"{min(values)}–{max(values)}"


SHORT = {"crontabber": "ct", "crontabber-alt": "ct-alt", "django-cron": "dc", "django-cron-cache": "dc-cache"}


def rows_of(results: dict, tools: list[Tool]) -> list[dict]:
    """One row per (db, N, scenario): medians per tool, and crontabber's ratios to each django-cron."""
    rows = []
    for (dbname, n), figures in results.items():
        for scenario, data in figures.items():
            row = {"db": dbname, "n": n, "scenario": scenario, "cut": data.get("cut", "")}
            for tool in tools:
                d = data[tool.key]
                row[tool.key] = {
                    "wall": median(d["wall"]), "cpu": median(d["cpu"]), "rss": median(d["rss_mb"]),
                    "tick": median(d["tick"]), "queries": d["queries"], "kinds": d["kinds"],
                    "traced": median(d["traced_peak"]) / 2**20 if d["traced_peak"] else float("nan"),
                    "growth": median(d["rss_growth_kb"]) / 1024 if d["rss_growth_kb"] else float("nan"),
                    "runs": len(d["wall"]),
                }  # fmt: skip
            for tool in tools:
                row[tool.key]["beyond"] = row[tool.key]["wall"] - row["startup"]["wall"]
            rows.append(row)
    return rows


def ticking(tools):
    return [t for t in tools if t.key not in REFERENCES]


def peers(tools):
    return [t for t in tools if t.key.startswith("django-cron")]


def cells(row, tools, key, fmt, scale=1.0) -> str:
    return " / ".join(fmt(row[t.key][key] * scale) for t in tools)


def tables(rows: list[dict], tools: list[Tool]) -> list[str]:
    tick, dcs = ticking(tools), peers(tools)
    names = " / ".join(SHORT[t.key] for t in tick)
    out = ["### Wall time of whole processes (s, medians)", ""]
    head = ["db", "N", "scenario", "start-up", "check", *[SHORT[t.key] for t in tick],
            *[f"ct / {SHORT[t.key]}" for t in dcs], f"beyond start-up: {names}",
            *[f"ct / {SHORT[t.key]} beyond start-up" for t in dcs], f"CPU: {names}"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ct = r["crontabber"]
        line = [r["db"], str(r["n"]), r["scenario"], f3(r["startup"]["wall"]), f3(r["check"]["wall"]),
                *[f3(r[t.key]["wall"]) for t in tick], *[f"{ratio(ct['wall'], r[t.key]['wall']):.2f}" for t in dcs],
                cells(r, tick, "beyond", f3), *[f"{ratio(ct['beyond'], r[t.key]['beyond']):.2f}" for t in dcs],
                cells(r, tick, "cpu", f3)]  # fmt: skip
        out.append("| " + " | ".join(line) + " |")
    out += ["", "### Queries and the tick in-process (first tick of a fresh process; medians)", ""]
    head = ["db", "N", "scenario", f"queries: {names}", f"tick ms: {names}",
            *[f"tick ct / {SHORT[t.key]}" for t in dcs], f"per job ms (all due): {names}"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ct = r["crontabber"]
        per_job = cells(r, tick, "tick", lambda v: f"{v:.2f}", 1000 / r["n"]) if r["scenario"] == "all due" else ""
        line = [r["db"], str(r["n"]), r["scenario"], " / ".join(fq(r[t.key]["queries"]) for t in tick),
                cells(r, tick, "tick", f1, 1000), *[f"{ratio(ct['tick'], r[t.key]['tick']):.2f}" for t in dcs],
                per_job]  # fmt: skip
        out.append("| " + " | ".join(line) + " |")
    out += ["", "### Memory (MB, medians)", ""]
    head = ["db", "N", "scenario", "peak RSS: start-up / check", f"peak RSS: {names}",
            f"tick RSS growth: {names}", f"tick tracemalloc peak: {names}"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        line = [r["db"], str(r["n"]), r["scenario"], f"{f1(r['startup']['rss'])} / {f1(r['check']['rss'])}",
                cells(r, tick, "rss", f1), cells(r, tick, "growth", f1), cells(r, tick, "traced", f1)]  # fmt: skip
        out.append("| " + " | ".join(line) + " |")
    out += ["", "Query kinds of one tick at the largest N:", ""]
    for r in rows:
        if r["n"] == max(x["n"] for x in rows if x["db"] == r["db"]):
            for t in tick:
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(r[t.key]["kinds"].items()))
                out.append(f"- {r['db']} N={r['n']} {r['scenario']}, {SHORT[t.key]}: {kinds}")
    return out


def plain(rows: list[dict], tools: list[Tool]) -> str:
    tick, dcs = ticking(tools), peers(tools)
    head = ("db", "N", "scenario", "start-up", "check", *[SHORT[t.key] + " s" for t in tick],
            *[f"ct/{SHORT[t.key]}" for t in dcs], *[SHORT[t.key] + " q" for t in tick],
            *[SHORT[t.key] + " MB" for t in tick])  # fmt: skip
    data = [(r["db"], str(r["n"]), r["scenario"], f3(r["startup"]["wall"]), f3(r["check"]["wall"]),
             *[f3(r[t.key]["wall"]) for t in tick], *[f"{ratio(r['crontabber']['wall'], r[t.key]['wall']):.2f}"
                                                     for t in dcs],
             *[fq(r[t.key]["queries"]) for t in tick], *[f1(r[t.key]["rss"]) for t in tick])
            for r in rows]  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *data)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(x.rjust(w) if i >= 3 else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths)))
              for row in data]  # fmt: skip
    return "\n".join(lines)


def verdicts(rows: list[dict], tools: list[Tool]) -> list[str]:
    lines = []
    for db in dict.fromkeys(r["db"] for r in rows):
        none = sorted((r for r in rows if r["db"] == db and r["scenario"] == "none due"), key=lambda r: r["n"])
        counts = {r["n"]: r["crontabber"]["queries"] for r in none}
        values = {c for cs in counts.values() for c in cs}
        if counts:
            lines.append(f"- {db}: crontabber's queries with nothing due: "
                         + ", ".join(f"N={n}: {fq(c)}" for n, c in counts.items())
                         + (" — constant: **met**" if len(values) == 1 else " — **not constant**"))  # fmt: skip
        for scenario in ("none due", "all due"):
            big = [r for r in rows if r["db"] == db and r["scenario"] == scenario and r["n"] == 1000]
            if not big:
                continue
            r = big[0]
            for mine in [t for t in tools if t.key.startswith("crontabber")]:
                parts = []
                for t in peers(tools):
                    value = ratio(r[mine.key]["wall"], r[t.key]["wall"])
                    parts.append(f"vs {SHORT[t.key]} {value:.2f}x — **{'met' if value <= TARGET else 'not met'}**")
                lines.append(f"- {db}: N=1,000, {scenario}, {mine.label} / django-cron wall time "
                             f"(target ≤ {TARGET}x): " + "; ".join(parts))  # fmt: skip
    return lines


def method(args, tools) -> list[str]:
    dc_cache = any(t.key == "django-cron-cache" for t in tools)
    return [
        "- one throwaway project (written by the script), both apps installed: `django.contrib.contenttypes`, "
        "`django.contrib.auth`, `crontabber`, `django_cron`, and an app with the no-op command `noop`; "
        "the registry of the tool not measured is left empty (`runcrons` runs Django's system checks, "
        "which would otherwise validate crontabber's registry too; `cronrun` checks only its own registry)",
        '- crontabber: N × `{"name": "job-<i>", "cmd": "noop", "frequency": "1h"}`, run in-process '
        "with `call_command`; django-cron: N `CronJobBase` subclasses, `Schedule(run_every_mins=60)`, "
        "`do()` returns at once; `dc`: django-cron with `DatabaseLock` (a lock row per job in the same "
        "database: the guarantee crontabber's claims give)"
        + (
            "; `dc-cache`: django-cron as shipped, `CacheLock` on Django's default `LocMemCache`, which locks "
            "nothing across processes (django-cron's floor)"
            if dc_cache
            else ""
        ),
        "- fresh database per (db, N) (SQLite: a file on disk; PostgreSQL: a scratch database, dropped after); "
        "`migrate`, then one tick of each tool so every job exists and has run",
        "- none due: crontabber's `next_run` a day ahead, django-cron's `CronJobLog` start/end times now; "
        "all due: before each measured tick, crontabber's `next_run`/`next_slot` and django-cron's "
        "`CronJobLog` times a week back (UPDATEs outside the measurement); every tick verified from the "
        "database (N successful new log rows or none, no claim or lock left)",
        "- wall: whole processes `python manage.py cronrun` / `runcrons`, and two references with nothing "
        "registered: `manage.py version` (`start-up`: interpreter, settings, `django.setup()`, no command) and "
        f"`manage.py check` (the issue's reference); after one untimed warm-up each; {max(args.none_runs, args.runs)} "
        f"rounds with nothing due, {args.runs} with all due, the order rotating each round; medians; `beyond start-up` = a median minus start-up's median; CPU = the "
        "child's user + system time (from `wait4`)",
        "- tick: `call_command(...)` in a fresh child with Django set up and its connection open, the first "
        "tick of that process (as a real run); per job = all-due tick / N",
        f"- queries: `CaptureQueriesContext` around that first tick, in {args.mem_runs} separate child(ren)",
        "- memory: peak RSS of the whole process (`ru_maxrss` from `wait4`); tick RSS growth = `ru_maxrss` "
        "after the in-process tick minus before; tracemalloc peak = the Python allocations during the "
        f"tick, in {args.mem_runs} separate child(ren) (tracing slows the tick)",
        "- logging: Django's default (crontabber's INFO lines and django-cron's DEBUG lines are dropped "
        "alike); stdout of the processes to /dev/null",
    ]


def write_results(args, tools, rows, raw, profiles, python, pg_version, digest, started, elapsed,
                  load_before, load_after, notes) -> None:  # fmt: skip
    lines = [
        "# crontabber vs django-cron",
        "",
        f"Written by `benchmarks/compare.py` ({' '.join(sys.argv[1:]) or 'defaults'}); do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; whole run {elapsed / 60:.0f} min",
        *machine(python, pg_version),
        f"- load average (1, 5, 15 min) before / after: {load_before} / {load_after} "
        "(2 cores shared with other work: the tools alternate so both see the same load)",
        f"- code measured: {code_version(digest, args.crontabber)}",
        "",
        "## Method",
        "",
        *method(args, tools),
        "",
        "## Results",
        "",
        "`ct` = crontabber, `dc` = django-cron (DatabaseLock)"
        + (
            ", `dc-cache` = django-cron as shipped (CacheLock on LocMemCache)"
            if any(t.key == "django-cron-cache" for t in tools)
            else ""
        )
        + ".",
        "",
        *tables(rows, tools),
        "",
        "## Targets",
        "",
        *verdicts(rows, tools),
        "",
    ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    if profiles:
        lines += ["## Profiles (pyinstrument, whole process)", "", profiles, ""]
    lines += ["## Raw figures", "", "Per database and N, scenario and tool: every value measured (s, MB, bytes).", "",
              "```", *raw_lines(raw), "```", ""]  # fmt: skip
    args.output.write_text("\n".join(lines))


def raw_lines(raw: dict) -> list[str]:
    def rounded(value):
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, list):
            return [rounded(v) for v in value]
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items() if v not in ([], {})}
        return value

    out = []
    for size, figures in raw.items():
        for scenario, data in figures.items():
            for key, value in data.items():
                out.append(f"{size} {scenario} {key}: {json.dumps(rounded(value))}")
    return out


# --- main --------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=5, help="rounds of wall-time and tick measurements, all due")
    parser.add_argument(
        "--none-runs",
        type=int,
        default=11,
        help="rounds with nothing due (cheap, and their ~0.3 s are the most sensitive to noise)",
    )
    parser.add_argument("--mem-runs", type=int, default=1, help="children for queries and tracemalloc")
    parser.add_argument("--budget", type=float, default=1500, help="s per series; past 3 rounds it may stop early")
    parser.add_argument("--timeout", type=float, default=900, help="s per child process")
    parser.add_argument(
        "--no-dc-cache",
        dest="dc_cache",
        action="store_false",
        help="leave out django-cron with CacheLock on LocMemCache",
    )
    parser.add_argument("--profile", action="append", default=[], metavar="SCENARIO-N",
                        help="pyinstrument both tools, e.g. none-1000, all-1000 (first database)")  # fmt: skip
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument(
        "--pg-url", default=os.environ.get("CRONTABBER_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the throwaway project goes (a temp dir)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results.md")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where to write the results (default benchmarks/results.md)"
    )
    parser.add_argument(
        "--alt-crontabber",
        type=Path,
        default=None,
        help="also measure this crontabber package directory (`ct-alt`), alternating with the others",
    )
    parser.add_argument("--scenarios", default="none due,all due")
    parser.add_argument(
        "--crontabber",
        type=Path,
        default=None,
        help="measure this crontabber package directory instead of the checkout's (a patched copy)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the throwaway project")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    reexec_in_venv(args.venv)
    python = venv_python(args.venv)
    sizes = [int(s) for s in args.sizes.split(",")]
    dbs = [d.strip() for d in args.db.split(",")]
    started = dt.datetime.now(UTC)
    clock = time.perf_counter()
    load_before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="crontabber-compare-", dir=args.workdir))
    project = Project(workdir, python)
    digest = make_project(workdir, args.crontabber)
    print(f"project: {workdir}; crontabber copied ({digest})", file=sys.stderr)
    alt = None
    if args.alt_crontabber:
        alt = workdir / "alt"
        alt_digest = make_project(alt, args.alt_crontabber)
        print(f"alternative crontabber: {args.alt_crontabber} ({alt_digest})", file=sys.stderr)
    tools = make_tools(args.dc_cache, alt)

    def log(text):
        print(f"[{time.perf_counter() - clock:6.0f} s, load {loadavg()}] {text}", file=sys.stderr, flush=True)

    results, notes, profiles, pg_version = {}, [], [], None
    wanted_profiles = {tuple(p.split("-", 1)) for p in args.profile}
    try:
        for dbname in dbs:
            for n in sizes:
                if dbname == "sqlite":
                    db = SQLiteDatabase(workdir)
                else:
                    db = PostgresDatabase(args.pg_url, f"crontabber_compare_{os.getpid()}")
                    pg_version = db.version()
                try:
                    log(f"{dbname} N={n}")
                    results[(dbname, n)] = measure_size(project, db, n, tools, args, log)
                    for scenario in ("none", "all"):
                        if (scenario, str(n)) in wanted_profiles and dbname == dbs[0]:
                            name = "none due" if scenario == "none" else "all due"
                            profiles.append(profile(project, db, n, name, tools, args))
                except Failed as error:  # reported, and the other sizes go on
                    log(f"FAILED: {error}")
                    notes.append(f"{dbname} N={n}: not measured: {str(error).splitlines()[0]}")
                finally:
                    db.drop()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = rows_of(results, tools)
    for r in rows:
        if r["cut"]:
            notes.append(f"{r['db']} N={r['n']} {r['scenario']}: {r['cut']}")
    raw = {f"{db} N={n}": figures for (db, n), figures in results.items()}
    print(plain(rows, tools))
    print("\n".join(verdicts(rows, tools)))
    if not args.no_write:
        write_results(args, tools, rows, raw, "\n".join(profiles), python, pg_version, digest, started,
                      time.perf_counter() - clock, load_before, loadavg(), notes)  # fmt: skip
        print(f"written: {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
