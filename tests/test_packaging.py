"""The distribution, django-crontabber: a wheel of the reusable app and its migrations,
nothing of the host project or the tests, built from a source distribution that holds
what it needs; metadata the package index accepts (twine check, known classifiers); the
version written once; every `pip install` the docs and messages tell a user to type names
it; and enough for an existing Django project that adds "crontabber" to INSTALLED_APPS and
a CRONTABBER_JOBS list (installed into a fresh virtualenv, outside this checkout).

Builds and installs from PyPI through pip's cache: some seconds. It runs once per Django
version `make test` tests: in the SQLite suite (Django 5.2, Python 3.11; the PostgreSQL
and MariaDB runs would repeat it as is) and in the Django 6 leg (its Python, its pins).
"""

import json
import re
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

import crontabber
from tests.helpers import ROOT, database_independent_tests_run_here
from tests.packaging import DISTRIBUTION, PYPROJECT, outside_env, pin, run

if not database_independent_tests_run_here():
    pytest.skip("database-independent; runs in the SQLite suite (and the Django 6 leg) only", allow_module_level=True)

VERSION = crontabber.__version__


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


def metadata(wheel) -> str:
    return zipfile.ZipFile(wheel).read(f"django_crontabber-{VERSION}.dist-info/METADATA").decode()


def test_the_wheel_holds_the_app_with_its_migrations_and_nothing_else(built):
    wheel, _, source = built
    assert wheel.name == f"django_crontabber-{VERSION}-py3-none-any.whl"
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

    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata(wheel).splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    # Ranges, so that it installs into existing projects; the exact pins are extras.
    assert {Requirement(r) for r in requires} == {Requirement(r) for r in PYPROJECT["project"]["dependencies"]}


def test_the_sdist_holds_the_app_the_readme_and_the_changelog_and_no_tests(built):
    _, sdist, _ = built
    assert sdist.name == f"django_crontabber-{VERSION}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "PKG-INFO", "crontabber/__init__.py"} <= names
    assert {name.split("/")[0] for name in names} <= {
        "",
        "crontabber",
        "django_crontabber.egg-info",
        "pyproject.toml",
        "setup.cfg",
        "PKG-INFO",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "MANIFEST.in",
    }, sorted(names)


def test_twine_check_accepts_the_wheel_and_the_sdist(built):
    result = run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built.wheel), str(built.sdist)],
        env=outside_env(NO_COLOR="1"),
        timeout=120,
    )
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_version_is_written_once_and_the_changelog_has_it(built):
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert f"\nVersion: {VERSION}\n" in metadata(built.wheel)
    assert re.search(rf"^## {re.escape(VERSION)}\b", (ROOT / "CHANGELOG.md").read_text(), re.M)


def test_the_metadata_names_the_distribution_its_classifiers_and_its_addresses(built):
    text = metadata(built.wheel)
    assert f"\nName: {DISTRIBUTION}\n" in text and DISTRIBUTION == "django-crontabber"
    classifiers = set(re.findall(r"^Classifier: (.+)$", text, re.M))
    assert classifiers and classifiers <= KNOWN_CLASSIFIERS, classifiers - KNOWN_CLASSIFIERS
    # The Django and Python versions it says it supports are the ones the ranges admit.
    django = {c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Framework :: Django :: ")}
    python = {c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    [django_range] = [Requirement(r).specifier for r in PYPROJECT["project"]["dependencies"] if r.startswith("Django")]
    assert django == {"5.2", "6.0", "6.1"} and all(django_range.contains(f"{v}.1") for v in django)
    assert python == {"3.11", "3.12", "3.13"}
    assert all(SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(f"{v}.0") for v in python)
    urls = dict(line.split(": ", 1)[1].split(", ", 1) for line in text.splitlines() if line.startswith("Project-URL:"))
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)
    assert all(url.startswith(urls["Homepage"]) for url in urls.values())
    # The licence it names, and its text beside it in the wheel and the sdist.
    assert "\nLicense-Expression: MPL-2.0\n" in text and "\nLicense-File: LICENSE\n" in text
    assert (
        "Mozilla Public License Version 2.0"
        in zipfile.ZipFile(built.wheel).read(f"django_crontabber-{VERSION}.dist-info/licenses/LICENSE").decode()
    )


# Where users are told what to type: the README, the docs, the changelog, and the app's own
# messages (e.g. the metrics endpoint's 501).
TOLD = [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "crontabber").rglob("*.py")]
PIP_INSTALL = re.compile(r"pip install((?:[ \t]+[^\s`#]+)+)")  # its words, to a code span's end or a comment
# The deliberate `pip install crontabber`s: where a section warns about the name's other owner.
CLASH = "Mozilla"


def sections(path):
    """(first line number, text) of each section of a page (heading to heading); a module is one."""
    text = re.sub(r"pip install\n\s*", "pip install ", path.read_text())  # a code span wrapped after `install`
    if path.suffix != ".md":
        return [(1, text)]
    starts = [0] + [m.start() + 1 for m in re.finditer(r"\n(?=#{1,6} )", text)]
    return [(text.count("\n", 0, start) + 1, text[start:end]) for start, end in zip(starts, starts[1:] + [len(text)])]


def told_installs():
    """(file:line, its section, pip's arguments) of every `pip install` users are told."""
    for path in TOLD:
        for first, section in sections(path):
            for number, line in enumerate(section.splitlines(), first):
                for match in PIP_INSTALL.finditer(line):
                    yield f"{path.relative_to(ROOT)}:{number}", section, match.group(1).split()


def crontabber_requirements(words):
    """The requirements among pip's arguments that are this project, by any name."""
    for word in words:
        word = word.strip("'\".,;:()")
        if word.startswith("-") or "/" in word or word.endswith(".whl"):
            continue  # an option, a path, a file
        try:
            requirement = Requirement(word)
        except ValueError:
            continue
        if "crontabber" in requirement.name.lower():
            yield requirement


def test_every_pip_install_users_are_told_names_the_distribution():
    told = list(told_installs())
    wrong = [
        f"{where}: pip install {' '.join(words)}"
        for where, section, words in told
        for requirement in crontabber_requirements(words)
        if requirement.name != DISTRIBUTION and CLASH not in section
    ]
    assert not wrong, "name the distribution, django-crontabber:\n" + "\n".join(wrong)
    right = {where for where, _, words in told for r in crontabber_requirements(words) if r.name == DISTRIBUTION}
    assert len(right) >= 5, "the finder finds the docs' installs"


def test_the_name_clash_is_told_where_a_newcomer_looks():
    warned = {where.split(":")[0] for where, section, _ in told_installs() if CLASH in section}
    assert {"README.md", "docs/troubleshooting.md"} <= warned


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
            str(built.wheel),
            pin("Django"),
            pin("croniter"),
        ],
        timeout=600,
    )

    project = tmp_path / "project"
    make_project(project)
    env = outside_env(DJANGO_SETTINGS_MODULE="proj_settings")

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
