"""The image of docker/Dockerfile, run for real with podman against PostgreSQL.

Run by `make test-container` (bin/container_test.sh), which builds the image and sets
CONTAINER_IMAGE; skipped everywhere else. Every container runs as the image's user, with a
read-only root filesystem, a tmpfs /tmp, no capabilities, tini-like init (--init) and the
host's network (PostgreSQL on 127.0.0.1). DATABASE_URL names a database of its own, made
afresh here.
"""

import json
import os
import subprocess
import time
import urllib.request
import uuid
from urllib.parse import urlsplit

import pytest

IMAGE = os.environ.get("CONTAINER_IMAGE")
if not IMAGE:
    pytest.skip("run by `make test-container`, which builds the image", allow_module_level=True)

import psycopg  # noqa: E402  (the postgres extra; the leg needs PostgreSQL)

from tests.helpers import free_port, wait_for  # noqa: E402

DATABASE_URL = os.environ["DATABASE_URL"]
HARDENED = [
    "--network=host",
    "--read-only",
    "--read-only-tmpfs=false",  # no tmpfs but /tmp below
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--init",
]
ENV = {"DATABASE_URL": DATABASE_URL, "SECRET_KEY": "test", "CRONTABBER_LOG_LEVEL": "INFO"}
STOP_SECONDS = 10  # "within seconds": the loop between ticks, gunicorn idle


def podman(*args, timeout=120, check=True):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
    return result


def env_args(**extra):
    return [f"--env={key}={value}" for key, value in {**ENV, **extra}.items()]


def run(*args, options=(), **env):
    """The image's entrypoint with these arguments, to the end: (status, stdout, stderr)."""
    result = podman("run", "--rm", *HARDENED, *env_args(**env), *options, IMAGE, *args, check=False)
    return result.returncode, result.stdout, result.stderr


class Container:
    """A detached container of the image; stopped and removed at the end of the test."""

    def __init__(self, *args, options=(), **env):
        self.name = f"crontabber-test-{uuid.uuid4().hex[:8]}"
        podman("run", "--detach", f"--name={self.name}", *HARDENED, *env_args(**env), *options, IMAGE, *args)

    def logs(self):
        result = podman("logs", self.name)
        return result.stdout + result.stderr

    def sigterm(self):
        """SIGTERM, then wait: (exit status, seconds it took)."""
        started = time.monotonic()
        podman("kill", "--signal=TERM", self.name)
        status = podman("wait", self.name, timeout=90).stdout.strip()
        return int(status), time.monotonic() - started

    def remove(self):
        podman("rm", "--force", "--time=0", self.name, check=False)


@pytest.fixture
def containers():
    started = []

    def start(*args, **kwargs):
        started.append(Container(*args, **kwargs))
        return started[-1]

    yield start
    for container in started:
        container.remove()


def query(sql, *params):
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module", autouse=True)
def fresh_database():
    url = urlsplit(DATABASE_URL)
    name = url.path.lstrip("/")
    with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def test_the_image_runs_as_its_user_read_only_without_pip():
    status, out, err = run(
        "manage",
        "shell",
        "--verbosity=0",
        "-c",
        "import importlib.util, os, pathlib; print(os.getuid(), os.getgid());"
        "print([m for m in ('pip', 'setuptools') if importlib.util.find_spec(m)]);"
        "pathlib.Path('/tmp/ok').touch();"
        "pathlib.Path('/app/var/x').touch()",
    )
    assert status != 0 and "Read-only file system: '/app/var/x'" in err, err
    assert out.splitlines() == ["10001 10001", "[]"]  # /tmp was writable


def test_migrate_then_cronlist():
    status, out, err = run("cronlist")
    assert status != 0, "cronlist succeeds before migrate"
    status, out, err = run("migrate", "--noinput")
    assert status == 0, err
    assert "Applying crontabber.0001_initial... OK" in out
    status, out, err = run("cronlist", "--format=json")
    assert status == 0, err
    assert [job["name"] for job in json.loads(out)] == ["demo-hourly-report", "demo-sync", "clearsessions"]
    status, _, err = run("nosuchcommand")
    assert status == 2 and "unknown command 'nosuchcommand'" in err and "usage:" in err


def test_the_loop_ticks_passes_its_healthcheck_and_stops_on_sigterm(containers):
    loop = containers("crontabber", CRONTABBER_INTERVAL="1")
    ticks = set()

    def three_ticks():
        ticks.update(row[0] for row in query("SELECT last_tick FROM crontabber_control") if row[0])
        return len(ticks) >= 3

    assert wait_for(three_ticks, seconds=60, every=0.5), loop.logs()
    assert query(
        "SELECT outcome FROM crontabber_log l JOIN crontabber_job j ON j.id = l.job_id WHERE name = %s", "demo-sync"
    ) == [("success",)]
    check = podman("healthcheck", "run", loop.name, check=False)  # the image's HEALTHCHECK
    assert check.returncode == 0, check.stdout + check.stderr

    status, seconds = loop.sigterm()
    assert status == 0 and seconds < STOP_SECONDS, (status, seconds, loop.logs())
    assert "run_crontabber: stopped" in loop.logs()


def test_web_serves_health_and_stops_on_sigterm(containers):
    port = free_port()
    web = containers("web", WEB_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    answer = {}

    def health():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/crontabber/health/", timeout=5) as response:
                answer.update(status=response.status, body=json.load(response))
                return True
        except OSError:
            return False

    assert wait_for(health, seconds=60, every=0.5), web.logs()
    assert answer["status"] == 200 and answer["body"]["status"] == "ok", answer
    assert {job["name"] for job in answer["body"]["jobs"]} >= {"demo-sync"}

    status, seconds = web.sigterm()
    assert status == 0 and seconds < STOP_SECONDS, (status, seconds, web.logs())
    assert '"GET /crontabber/health/' in web.logs()


SLOW_SETTINGS = """\
from webapp.settings import *  # noqa: F403

# One job of 20 s that falls due every minute.
CRONTABBER_JOBS = [
    {"name": "slow", "cmd": "shell", "cmd_args": ["-c", "import time; time.sleep(20)"], "frequency": "1m"},
]
"""


def test_two_loops_share_the_database_and_never_run_a_slot_twice(containers, tmp_path):
    settings = tmp_path / "slow_settings.py"
    settings.write_text(SLOW_SETTINGS)
    mount = [f"--volume={settings}:/app/webapp/slow_settings.py:ro"]
    env = {"DJANGO_SETTINGS_MODULE": "webapp.slow_settings", "CRONTABBER_INTERVAL": "2"}
    loops = [containers("crontabber", options=[*mount, f"--hostname=loop-{n}"], **env) for n in "ab"]

    ticks_while_running = set()

    def two_slots_done():
        [(running, done, last_tick)] = query(
            "SELECT count(*) FILTER (WHERE outcome = 'running'), count(*) FILTER (WHERE outcome = 'success'),"
            " (SELECT last_tick FROM crontabber_control) FROM crontabber_log l"
            " JOIN crontabber_job j ON j.id = l.job_id WHERE j.name = 'slow'"
        )
        if running:
            ticks_while_running.add(last_tick)
        return done >= 2

    # The first slot runs at once, the second a minute later.
    assert wait_for(two_slots_done, seconds=150, every=0.5), [loop.logs() for loop in loops]
    for loop in loops:
        status, _ = loop.sigterm()
        assert status == 0, loop.logs()

    rows = query(
        "SELECT l.slot, count(*), array_agg(l.outcome), array_agg(l.host) FROM crontabber_log l"
        " JOIN crontabber_job j ON j.id = l.job_id WHERE j.name = 'slow' GROUP BY l.slot ORDER BY l.slot"
    )
    assert len(rows) >= 2
    for slot, count, outcomes, hosts in rows:
        assert count == 1, f"slot {slot} ran {count} times: {outcomes} on {hosts}"
        assert set(hosts) <= {"loop-a", "loop-b"}
    first, second = rows[0][0], rows[1][0]
    assert (second - first).total_seconds() == 60
    # The other loop went on ticking while one ran the job, and no loop started a slot that
    # the other had.
    assert len(ticks_while_running) >= 4, ticks_while_running
    assert sum(loop.logs().count("slow: running shell") for loop in loops) == len(rows)
