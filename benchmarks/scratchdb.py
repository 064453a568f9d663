"""Scratch databases for the benchmark scripts: each one's DATABASE_URL, and raw SQL for
the set-up UPDATEs and the checks, so the measured processes are the only Django in play.

Shared by tick.py, runners.py and compare.py (and backfill.py through it); importable
from any of them because a script's own folder is first on sys.path. Also the registry
handed to a child by file (registry_env): 10,000 jobs pass the kernel's limit on one
environment variable.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

UTC = dt.UTC


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


class Database:
    name = ""
    url = ""
    placeholder = "?"

    def connect(self):
        raise NotImplementedError

    def param(self, instant: dt.datetime):
        raise NotImplementedError

    def execute(self, sql: str, *params):
        """Run one statement in its own connection and commit; its rows, if it has any."""
        sql = sql.replace("%s", self.placeholder)
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, [self.param(p) if isinstance(p, dt.datetime) else p for p in params])
            rows = cur.fetchall() if cur.description else None
            conn.commit()
            return rows
        finally:
            conn.close()

    def scalar(self, sql: str, *params):
        return self.execute(sql, *params)[0][0]

    def drop(self) -> None:
        pass


class SQLiteDatabase(Database):
    """A file in a new temporary folder (under ``parent``, default the system's): on disk,
    as in production, so each commit is a real fsync."""

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

    def version(self) -> str:
        return sqlite3.sqlite_version

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
        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{dbname}"')

    def connect(self):
        return self.psycopg.connect(self.url, connect_timeout=10)

    def param(self, instant):
        return instant

    def version(self) -> str:
        return self.scalar("SHOW server_version")

    def drop(self):
        with self.psycopg.connect(f"{self.server_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
