"""Test helpers: ticks at frozen instants, and child processes on the test database."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection
from freezegun import freeze_time

from crontabber.models import Job, Log
from crontabber.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
UTC = UTC


def at(text: str) -> datetime:
    """'2026-03-29 01:00' -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tick(when, **options):
    """One in-process tick with the clock frozen at ``when``."""
    with freeze_time(when):
        return Runner().tick(**options)


def job(name):
    return Job.objects.get(name=name)


def outcomes(name):
    return [(log.slot, log.outcome) for log in Log.objects.filter(job__name=name).order_by("started_at", "id")]


def child_env(registry_json="[]", **extra):
    """Environment for a manage.py child process that uses this test's database."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{settings_dict['NAME']}"
    else:
        url = (
            f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
            f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
        )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_CRONTABBER_JOBS": registry_json,
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def manage(*args, env, timeout=60):
    """Run webapp/manage.py in a child process; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(ROOT / "webapp" / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
