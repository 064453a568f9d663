"""docker/docker-compose.yml run for real, with docker compose and with podman-compose.

Run by `make test-container` (bin/container_test.sh), which builds the image, makes a
stand-in for the postgres image, installs the two compose tools (pyproject.toml's
`container-test` extra) and starts a Docker engine of its own; skipped everywhere else.
Where the leg could not set a tool up, that tool's test is skipped with the leg's reason
(COMPOSE_SKIP, DOCKER_SKIP).

The compose file runs as it is, copied into a temporary directory beside a webapp.env
made from docker/webapp.env.example (the real docker/webapp.env holds an operator's
secrets, and is not touched). Both images are already there under the names the file
gives them, so `up` builds and pulls nothing: the image is the leg's build of
docker/Dockerfile. Each test brings up a project of its own, checks that PostgreSQL
became ready before anything used it, that migrate finished, that the two crontabber
replicas run, that web answers /crontabber/health/ on its published port, and that every
service stops with status 0; then it takes the project down with its volume.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.helpers import free_port, wait_for

if not os.environ.get("CONTAINER_IMAGE"):
    pytest.skip("run by `make test-container`, which builds the image", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "docker" / "webapp.env.example"
TIMES = ROOT / "var" / "container" / "compose-times.txt"
# The stand-in's temporary server (the Unix socket alone, as the official image's while it
# makes the database) stays up this long: longer than the first health check's interval,
# so that a check that took it for the real server would let migrate start too early.
INIT_SECONDS = 6


def webapp_env(path, **changes):
    """docker/webapp.env.example with its change-me values set, and `changes`."""
    password = secrets.token_hex(12)
    values = {
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgres://crontabber:{password}@postgres:5432/crontabber",
        "SECRET_KEY": secrets.token_urlsafe(50),
        **changes,
    }
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.partition("=")[0]
        if not line.startswith("#") and key in values:
            line = f"{key}={values.pop(key)}"
        lines.append(line)
    lines += [f"{key}={value}" for key, value in values.items()]
    assert not [line for line in lines if "change-me" in line and not line.startswith("#")]
    path.write_text("\n".join(lines) + "\n")


class Project:
    """The compose file, copied with its webapp.env into a directory, as project `name`."""

    def __init__(self, tool, engine, directory):
        self.tool, self.engine = tool, engine
        self.name = f"crontabber-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        (directory / "docker").mkdir()
        self.file = directory / "docker" / "docker-compose.yml"
        shutil.copyfile(COMPOSE, self.file)
        webapp_env(
            directory / "docker" / "webapp.env",
            CRONTABBER_INTERVAL="1",
            WEB_CONCURRENCY="1",
            STANDIN_INIT_SECONDS=str(INIT_SECONDS),
        )
        self.env = {**os.environ, "WEB_PORT": str(self.port)}
        self.times = {}

    def compose(self, *args, timeout=180, check=True):
        command = [*self.tool, "-p", self.name, "-f", str(self.file), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check:
            assert result.returncode == 0, f"{' '.join(command)}: {result.stdout}{result.stderr}"
        return result

    def run(self, *args, timeout=60, check=True):
        result = subprocess.run([self.engine, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"{self.engine} {' '.join(args)}: {result.stderr}"
        return result

    def containers(self):
        """{service: [inspect dicts]} of the project's containers."""
        ids = self.run("ps", "-a", "-q", f"--filter=label=com.docker.compose.project={self.name}").stdout.split()
        found = {}
        for info in json.loads(self.run("inspect", *ids).stdout) if ids else []:
            found.setdefault(info["Config"]["Labels"]["com.docker.compose.service"], []).append(info)
        return found

    def container(self, service):
        [info] = self.containers()[service]
        return info["Name"].lstrip("/")

    def logs(self, service):
        logs = [self.run("logs", info["Id"], check=False) for info in self.containers().get(service, [])]
        return "\n".join(result.stdout + result.stderr for result in logs)

    def all_logs(self):
        return "\n".join(f"--- {service}\n{self.logs(service)}" for service in self.containers())

    def sql(self, query):
        """Rows of `query`, run by psql in the postgres service as the compose file's user."""
        result = self.run(
            "exec", self.container("postgres"), "psql", "-U", "crontabber", "-d", "crontabber", "-AtF|", "-c", query
        )
        return [line.split("|") for line in result.stdout.splitlines()]

    def health(self):
        url = f"http://127.0.0.1:{self.port}/crontabber/health/"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.load(response)
        except OSError:
            return None

    def down(self):
        self.compose("down", "--volumes", "--timeout=10", timeout=120, check=False)


@pytest.fixture
def project(request, tmp_path):
    tool, engine = request.param
    project = Project(tool, engine, tmp_path)
    yield project
    project.down()
    label = f"--filter=label=com.docker.compose.project={project.name}"
    left = project.run("ps", "-a", "-q", label).stdout.split() + project.run("volume", "ls", "-q", label).stdout.split()
    assert not left, f"{project.name} left containers or volumes behind: {left}"
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    with TIMES.open("a") as times:
        print(request.node.callspec.id, *(f"{key} {value:.1f} s" for key, value in project.times.items()), file=times)


def docker_compose():
    for reason in (os.environ.get("COMPOSE_SKIP"), os.environ.get("DOCKER_SKIP")):
        if reason:
            return pytest.param(None, marks=pytest.mark.skip(reason=reason), id="docker compose")
    return pytest.param((["docker", "compose"], "docker"), id="docker compose")


def podman_compose():
    if reason := os.environ.get("COMPOSE_SKIP"):
        return pytest.param(None, marks=pytest.mark.skip(reason=reason), id="podman-compose")
    return pytest.param(([sys.executable, "-m", "podman_compose"], "podman"), id="podman-compose")


def instant(text):
    """An engine's timestamp ('2026-11-29T20:44:15.123456789Z', nanoseconds or fewer digits)."""
    seconds, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(seconds).timestamp() + float(f"0.{fraction or 0}")


def bring_up(project):
    """`up -d`; with podman-compose, the three steps of docs/deploy.md instead. Returns
    what migrate printed.

    Debian 12's podman (4.3.1) cannot run `up -d` alone: podman-compose waits for a service
    to be healthy only with podman 4.6 and later (it says so and goes on), and podman refuses
    to start a container whose dependency (migrate) has a running dependency of its own
    (postgres): "depends on container ... not found in input list" (podman-compose #921).
    """
    if project.engine == "docker":
        project.compose("up", "-d", "--no-build")
        containers = project.containers()
        [migrate] = containers["migrate"]
        assert (migrate["State"]["Status"], migrate["State"]["ExitCode"]) == ("exited", 0), project.logs("migrate")
        for service in ("web", "crontabber"):
            for info in containers[service]:
                assert instant(migrate["State"]["FinishedAt"]) <= instant(info["State"]["StartedAt"]), service
        return project.logs("migrate")
    project.compose("up", "-d", "--no-build", "postgres")
    postgres = project.container("postgres")

    # What systemd's timer runs for podman every `interval`; this machine has no systemd.
    def healthy():
        return project.run("healthcheck", "run", postgres, check=False).returncode == 0

    assert wait_for(healthy, seconds=60, every=1), project.logs("postgres")
    migrate = project.compose("run", "--rm", "-T", "migrate")
    project.compose("up", "-d", "--no-build", "--no-deps", "web", "crontabber")
    return migrate.stdout + migrate.stderr


@pytest.mark.parametrize("project", [docker_compose(), podman_compose()], indirect=True)
def test_up_migrates_runs_two_loops_and_web_then_down(project):
    spec = yaml.safe_load(COMPOSE.read_text())
    replicas = spec["services"]["crontabber"]["deploy"]["replicas"]

    started = time.monotonic()
    try:
        migrated = bring_up(project)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{project.all_logs()}") from None
    project.times["up"] = time.monotonic() - started
    answer = {}

    def web_answers():
        answer["health"] = project.health()
        return answer["health"] is not None

    assert wait_for(web_answers, seconds=90, every=0.5), project.all_logs()
    project.times["up and web answering"] = time.monotonic() - started
    status, body = answer["health"]
    assert status == 200 and body["status"] == "ok", answer

    # PostgreSQL was made afresh, and nothing used it before its real server was up.
    postgres = project.logs("postgres")
    assert "init process complete" in postgres, postgres
    assert "connection refused" not in (project.all_logs() + migrated).lower(), project.all_logs() + migrated
    # migrate ran, to the end, before the others started.
    assert "Applying crontabber.0001_initial... OK" in migrated, migrated

    # The two loops run, and share the jobs: each tick is theirs, each slot runs once.
    loops = project.containers()["crontabber"]
    assert len(loops) == replicas == 2
    assert all(loop["State"]["Status"] == "running" for loop in loops), project.logs("crontabber")
    hosts = {loop["Config"]["Hostname"] for loop in loops}
    ticks = set()

    def three_ticks_and_demo_sync():
        ticks.update(row[0] for row in project.sql("SELECT last_tick FROM crontabber_control"))
        ran = project.sql(
            "SELECT l.outcome, l.host FROM crontabber_log l JOIN crontabber_job j ON j.id = l.job_id"
            " WHERE j.name = 'demo-sync'"
        )
        return len(ticks) >= 3 and ran and ran[0][0] == "success"

    assert wait_for(three_ticks_and_demo_sync, seconds=60, every=1), project.logs("crontabber")
    project.times["three ticks"] = time.monotonic() - started
    rows = project.sql(
        "SELECT j.name, l.slot, count(*), string_agg(l.host, ',') FROM crontabber_log l"
        " JOIN crontabber_job j ON j.id = l.job_id GROUP BY j.name, l.slot"
    )
    for name, slot, count, ran_on in rows:
        assert count == "1", f"{name} {slot} ran {count} times, on {ran_on}"
        assert set(ran_on.split(",")) <= hosts, (ran_on, hosts)
    logs = project.logs("crontabber")
    assert logs.count("run_crontabber: started") == 2, logs
    assert "cronrun exited with status" not in logs, logs

    # The documented one-off command.
    started = time.monotonic()
    listed = project.compose("run", "--rm", "-T", "--no-deps", "crontabber", "cronlist", "--format=json", timeout=120)
    assert {job["name"] for job in json.loads(listed.stdout)} >= {"demo-sync"}, listed.stderr
    project.times["run cronlist"] = time.monotonic() - started

    # Every service stops on its stop signal, with status 0.
    started = time.monotonic()
    project.compose("stop", timeout=150)
    project.times["stop"] = time.monotonic() - started
    for service, infos in project.containers().items():
        for info in infos:
            state = info["State"]
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), (service, state, project.logs(service))
