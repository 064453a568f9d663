"""The wheel: the reusable app and its migrations, nothing of the host project or the tests,
and enough for an existing Django project that adds "crontabber" to INSTALLED_APPS and a
CRONTABBER_JOBS list (installed into a fresh virtualenv, outside this checkout).

Builds and installs from PyPI through pip's cache: some seconds. It runs once per Django
version `make test` tests: in the SQLite suite (Django 5.2, Python 3.11; the PostgreSQL
and MariaDB runs would repeat it as is) and in the Django 6 leg (its Python, its pins).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import django
import pytest
from packaging.requirements import Requirement

from tests.helpers import ROOT, database_independent_tests_run_here

if not database_independent_tests_run_here():
    pytest.skip("database-independent; runs in the SQLite suite (and the Django 6 leg) only", allow_module_level=True)

# What a build from a fresh clone sees: the tree without local state (and without the
# build/ and *.egg-info/ an in-tree build would reuse, stale files included).
LOCAL_STATE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def pinned_extra():
    """The `pinned*` extra of pyproject.toml this suite runs with: the one that pins the
    Django installed here (`pinned` for 5.2, `pinned-django6` for 6.x)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    running = f"django=={django.get_version()}"
    matching = [name for name in extras if name.startswith("pinned") and running in map(str.lower, extras[name])]
    assert len(matching) == 1, f"Django {django.get_version()} is pinned by {matching or 'no'} `pinned*` extra"
    return matching[0]


def pin(name):
    """`name==version` from the pinned extra of this suite: the versions it is tested with."""
    for requirement in PYPROJECT["project"]["optional-dependencies"][pinned_extra()]:
        if requirement.lower().startswith(name.lower() + "=="):
            return requirement
    raise AssertionError(f"{name} is not pinned in pyproject.toml's `{pinned_extra()}` extra")


def test_the_pinned_extras_differ_only_in_django_and_each_pin_is_in_the_ranges():
    extras = PYPROJECT["project"]["optional-dependencies"]
    pinned = {name: [Requirement(r) for r in extras[name]] for name in extras if name.startswith("pinned")}
    assert set(pinned) == {"pinned", "pinned-django6"}
    others = {name: {str(r) for r in requirements if r.name != "Django"} for name, requirements in pinned.items()}
    assert others["pinned"] == others["pinned-django6"], "one version of everything but Django"
    ranges = {Requirement(r).name: Requirement(r).specifier for r in PYPROJECT["project"]["dependencies"]}
    for requirements in pinned.values():
        for requirement in requirements:
            if requirement.name in ranges:
                [version] = [spec.version for spec in requirement.specifier]
                assert ranges[requirement.name].contains(version), f"{requirement} is outside the range"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel path, the source tree it was built from)."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=LOCAL_STATE)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp / "dist"),
            str(source),
        ],
        timeout=300,
    )
    wheels = list((tmp / "dist").glob("crontabber-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], source


def test_the_wheel_holds_the_app_with_its_migrations_and_nothing_else(built):
    wheel, source = built
    names = zipfile.ZipFile(wheel).namelist()
    files = {n for n in names if ".dist-info/" not in n}

    assert "crontabber/migrations/0001_initial.py" in files
    assert "crontabber/management/commands/cronrun.py" in files
    # Every module, migration, template and static file of the app, and nothing outside it.
    app_files = {
        path.relative_to(source).as_posix()
        for path in (source / "crontabber").rglob("*")
        if path.is_file() and (path.suffix == ".py" or {"templates", "static"} & set(path.parts))
    }
    assert app_files - files == set(), "missing from the wheel"
    assert {n.split("/")[0] for n in files} == {"crontabber"}, sorted(files)
    assert not [n for n in names if n.startswith(("webapp/", "tests/", "benchmarks/", "docker/", "bin/", "docs/"))]

    metadata = zipfile.ZipFile(wheel).read(f"crontabber-{PYPROJECT['project']['version']}.dist-info/METADATA")
    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    # Ranges, so that it installs into existing projects; the exact pins are extras.
    assert {Requirement(r) for r in requires} == {Requirement(r) for r in PYPROJECT["project"]["dependencies"]}


HELLO = """
from pathlib import Path

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Says hello into a file."

    def add_arguments(self, parser):
        parser.add_argument("--greeting", default="hello")

    def handle(self, *args, greeting, **options):
        with open(Path(__file__).resolve().parents[3] / "hello.txt", "a") as out:
            out.write(greeting + "\\n")
        self.stdout.write("said " + greeting)
"""

SETTINGS = """
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "throwaway"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}}

# All that crontabber needs from an existing project:
INSTALLED_APPS = ["tinyjobs", "crontabber"]
CRONTABBER_JOBS = [{"name": "hello", "cmd": "hello", "cmd_args": ["--greeting=hi"], "frequency": "5m"}]
"""


def make_project(root: Path):
    """A throwaway Django project: settings, and an app with one management command."""
    commands = root / "tinyjobs" / "management" / "commands"
    commands.mkdir(parents=True)
    for package in (root / "tinyjobs", commands.parent, commands):
        (package / "__init__.py").write_text("")
    (commands / "hello.py").write_text(textwrap.dedent(HELLO))
    (root / "proj_settings.py").write_text(textwrap.dedent(SETTINGS))


@pytest.mark.slow
def test_an_existing_project_needs_only_installed_apps_and_the_registry(built, tmp_path):
    wheel, _ = built
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    # This pip installs into the new environment; pip's cache is reused.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            str(wheel),
            pin("Django"),
            pin("croniter"),
        ],
        timeout=600,
    )

    project = tmp_path / "project"
    make_project(project)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "VIRTUAL_ENV")
    }
    env.update(DJANGO_SETTINGS_MODULE="proj_settings", PYTHONNOUSERSITE="1")

    def django(*args):
        return run([str(python), "-m", "django", *args], cwd=project, env=env, timeout=120)

    # The app comes from the new environment, and the host project and the tests do not.
    where = run(
        [
            str(python),
            "-c",
            "import crontabber, importlib.util as u; print(crontabber.__file__);"
            "print(u.find_spec('webapp'), u.find_spec('tests'))",
        ],
        cwd=project,
        env=env,
    )
    location, others = where.stdout.splitlines()
    assert Path(location).is_relative_to(venv), location
    assert others == "None None"

    django("check", "--fail-level", "WARNING")
    django("migrate", "--noinput")
    tick = django("cronrun")
    assert "hello" in tick.stdout and "success" in tick.stdout, tick.stdout
    assert (project / "hello.txt").read_text() == "hi\n"

    [entry] = json.loads(django("cronlist", "--format=json").stdout)
    assert entry["name"] == "hello"
    assert entry["last_success"] is not None and entry["error_count"] == 0
    assert entry["last_run"] is not None and entry["next_run"] > entry["last_run"]
