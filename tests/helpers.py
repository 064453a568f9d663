"""Test helpers: ticks at frozen instants, and child processes on the test database."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from django.db import connection
from freezegun import freeze_time

from crontabber.engine.runner import Runner
from crontabber.models import Job, Log

ROOT = Path(__file__).resolve().parent.parent
UTC = UTC
# The health and metrics endpoints' token in tests (the `health_token` fixture sets it).
HEALTH_TOKEN = "health-token-for-tests"
BEARER = {"Authorization": f"Bearer {HEALTH_TOKEN}"}


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
        scheme, user, port = {"postgresql": ("postgres", "postgres", 5432), "mysql": ("mysql", "root", 3306)}[
            connection.vendor
        ]
        password = f":{quote(settings_dict['PASSWORD'], safe='')}" if settings_dict["PASSWORD"] else ""
        url = (
            f"{scheme}://{quote(settings_dict['USER'] or user, safe='')}{password}@"
            f"{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or port}/{settings_dict['NAME']}"
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


def start_runner(registry, settings=None, *args):
    """A `manage.py cronrun` child process (with ``args``) on this test's database, with
    ``registry`` and ``settings`` (dicts); stdout and stderr piped, as text."""
    env = child_env(json.dumps(registry), TEST_SETTINGS=json.dumps(settings or {}))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "webapp" / "manage.py"), "cronrun", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_independent_tests_run_here() -> bool:
    """Tests of what no database changes (the wheel, the deploy files) run once per Django:
    in the SQLite suite, and in a suite that says it is the only one of its Django version
    (`make test-django6` sets CRONTABBER_TEST_DB_INDEPENDENT=1)."""
    return connection.vendor == "sqlite" or os.environ.get("CRONTABBER_TEST_DB_INDEPENDENT") == "1"


def wait_for(predicate, seconds=20.0, every=0.02):
    """True once ``predicate()`` is, polling every ``every`` s; False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


# What differs from one run of a command to the next: instants (ISO 8601, cronlist's minutes,
# a claim's expiry of the day), the seconds an attempt took, how soon the next slot is (it
# depends on the second a command ran) and whose it is, a runner's host:pid:run id.
VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?\+00:00"), "<instant>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?Z"), "<minute>"),
    (re.compile(r"\b\d\d:\d\d:\d\dZ"), "<time>"),
    (re.compile(r"\(\d+\.\d+ s\)"), "(<seconds> s)"),
    (re.compile(r"\(in \d+ (s|min)\)"), "(in <minutes>)"),  # from the clock's second to the next slot
    (re.compile(r"next: [\w.-]+ at "), "next: <job> at "),  # which job is due first depends on the hour
    (re.compile(r"[\w.-]+:\d+:[0-9a-f]{8}\b"), "<runner>"),
]


def varying_aside(text: str) -> list[str]:
    """The lines of a command's output (or of a doc showing one), right-stripped, with what
    differs from run to run replaced by placeholders: what the docs show is compared so."""
    text = "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return text.splitlines()
