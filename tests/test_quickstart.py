"""docs/quickstart.md, followed as written: its commands run one after another as in one
shell (the directory and the exported variables carry over), its files written where it
says, in a temporary directory, outside this checkout; what a command prints is compared
with what the page shows after it, times aside. Two things differ from a reader's run:
`pip install django-crontabber` installs the wheel built from this checkout (with the
versions this suite pins, through PIP_CONSTRAINT), and the development server listens on
a free port rather than 8000.

Every fenced block of the page is one of:
  ```console              commands (`$ ...`), each followed by what it prints (or nothing: not compared)
  ```console background   one command started and left running (the development server)
  ```console norun        shown, not run (an interactive prompt, a loop that runs forever)
  ```python file=PATH     a file's whole content; append=PATH: added to the end of a file

Runs once per Django version, as the other packaging tests do; prints the time from the
new virtualenv to the first successful job.
"""

import http.client
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, database_independent_tests_run_here, free_port, varying_aside, wait_for
from tests.packaging import DISTRIBUTION, PYPROJECT, outside_env, pinned_extra

if not database_independent_tests_run_here():
    pytest.skip("database-independent; runs in the SQLite suite (and the Django 6 leg) only", allow_module_level=True)

PAGE = ROOT / "docs" / "quickstart.md"
README = ROOT / "README.md"
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)


@dataclass
class Block:
    kind: str  # console, background, norun, file, append
    body: str
    path: str = ""

    def commands(self):
        """(command, the lines shown after it) of a console block."""
        steps = []
        for line in self.body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                assert steps, f"output before any command in {self.body!r}"
                steps[-1][1].append(line)
        return steps


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        language, *tags = match["info"].split()
        if language == "console":
            [kind] = tags or ["console"]
            assert kind in ("console", "background", "norun"), f"unknown console block: {match['info']}"
            found.append(Block(kind, body))
        else:
            [tag] = tags
            kind, _, path = tag.partition("=")
            assert language == "python" and kind in ("file", "append") and path, f"unknown block: {match['info']}"
            found.append(Block(kind, body, path))
    return found


class Shell:
    """A page's commands run one by one as one interactive shell would run them: each in
    bash, starting where the last one left (its directory, its exported variables)."""

    def __init__(self, cwd: Path, env: dict, state: Path):
        self.cwd, self.env, self.state = cwd, env, state

    def run(self, command: str, timeout=600) -> str:
        script = f'{command}\nstatus=$?\npwd > "{self.state}/cwd"\nenv -0 > "{self.state}/env"\nexit $status\n'
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"$ {command}\nexited {result.returncode}:\n{result.stdout}"
        self.cwd = Path((self.state / "cwd").read_text().strip())
        self.env = dict(item.split("=", 1) for item in (self.state / "env").read_text().split("\0") if "=" in item)
        return result.stdout

    def start(self, command: str, log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def write(self, path: str, text: str, append=False):
        target = self.cwd / path
        assert target.parent.is_dir(), f"{path}: the page has not made its directory yet"
        with open(target, "a" if append else "w") as out:
            out.write(("\n" if append else "") + text)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture
def reader(tmp_path, built):
    """A shell in an empty directory, with the same Python as this suite as `python3` and
    the wheel as what `pip install django-crontabber` installs."""
    interpreter = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "python3").symlink_to(interpreter)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(PYPROJECT["project"]["optional-dependencies"][pinned_extra()]) + "\n")
    env = outside_env(PIP_CONSTRAINT=str(constraints), PYTHONUNBUFFERED="1")
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    (tmp_path / "home").mkdir()
    (tmp_path / "state").mkdir()
    return Shell(tmp_path / "home", env, tmp_path / "state")


@pytest.mark.slow
def test_the_quickstart_as_written_reaches_a_first_successful_job(reader, built, tmp_path):
    port = free_port()
    install = f"pip install {DISTRIBUTION}"
    server = None
    timings = {}
    outputs = []
    try:
        for block in blocks(PAGE.read_text()):
            if block.kind in ("file", "append"):
                reader.write(block.path, block.body, append=block.kind == "append")
            elif block.kind == "background":
                [(command, _)] = block.commands()
                assert command == "python manage.py runserver", command
                server = reader.start(f"{command} 127.0.0.1:{port}", tmp_path / "server.log")
                assert wait_for(lambda: answers(f"http://127.0.0.1:{port}/crontabber/health/"), 60), (
                    tmp_path / "server.log"
                ).read_text()
            elif block.kind == "console":
                for command, shown in block.commands():
                    if "venv" in command:
                        timings.setdefault("venv", time.monotonic())
                    ran = command.replace(install, f"pip install {built.wheel}").replace(
                        "127.0.0.1:8000", f"127.0.0.1:{port}"
                    )
                    printed = reader.run(ran)
                    outputs.append((command, printed))
                    if command == "python manage.py cronrun":
                        timings.setdefault("first success", time.monotonic())
                    if shown:
                        assert varying_aside(printed) == varying_aside("\n".join(shown)), f"$ {command}\n{printed}"
        commands = [command for command, _ in outputs]
        assert install in commands and "django-admin startproject mysite" in commands
        [tick] = [printed for command, printed in outputs if command == "python manage.py cronrun"]
        assert re.fullmatch(r"signups \S+: success \(\S+ s\)\nran 1 slot of 1 job: 1 success; next: .*\n", tick), tick
        # The admin is there (its login first).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/admin/crontabber/job/")
        response = connection.getresponse()
        assert (response.status, response.getheader("Location")) == (302, "/admin/login/?next=/admin/crontabber/job/")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    seconds = timings["first success"] - timings["venv"]
    print(f"quickstart: {seconds:.1f} s from `python3 -m venv` to the first successful job")


def test_every_block_of_the_quickstart_is_run_or_says_why_not():
    found = blocks(PAGE.read_text())
    assert len(FENCE.findall(PAGE.read_text())) == len(found)
    assert {block.kind for block in found} == {"console", "background", "norun", "file", "append"}
    norun = [command for block in found if block.kind == "norun" for command, _ in block.commands()]
    assert norun == [
        "python manage.py createsuperuser",
        "python manage.py cronrun --loop",
        "while true; do python manage.py cronrun; sleep 300; done",
    ]


@pytest.mark.slow
def test_the_readmes_command_lines_run_as_written_in_a_checkout(tmp_path):
    """After `make run` (its virtualenv, `migrate`), each `$ ` line of the README, from the
    checkout's root, exits as its output shows (1 for a CommandError, else 0). The database
    is a file of its own, not the var/ one `make run` uses."""
    if Path(sys.prefix) != ROOT / ".venv":
        pytest.skip("the README's commands name the checkout's .venv; this suite runs in another")
    env = outside_env(DATABASE_URL=f"sqlite:///{tmp_path}/readme.sqlite3")
    env.pop("DEBUG", None), env.pop("SECRET_KEY", None)

    def shell(command):
        return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert shell("DEBUG=1 .venv/bin/python webapp/manage.py migrate --noinput").returncode == 0
    steps = Block("console", "\n".join(re.findall(r"^\$ .*(?:\n(?!\$ |```).*)*", README.read_text(), re.M))).commands()
    assert len(steps) >= 5
    for command, shown in steps:
        result = shell(command)
        failed = any(line.startswith("CommandError") for line in shown)
        assert result.returncode == (1 if failed else 0), f"$ {command}\n{result.stdout}{result.stderr}"
