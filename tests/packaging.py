"""What the packaging tests share: the distribution built as a user's `pip install` gets it
(a source distribution, and the wheel built from it), the pins this suite is tested with,
and the environment of a process outside this checkout."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import NamedTuple

import django

from tests.helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DISTRIBUTION = PYPROJECT["project"]["name"]  # on the package index; the import name is crontabber

# What a build from a fresh clone sees: the tree without local state (and without the
# build/ and *.egg-info/ an in-tree build would reuse, stale files included).
LOCAL_STATE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-dj6",
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


class Built(NamedTuple):
    wheel: Path
    sdist: Path
    source: Path  # the copy of the tree they were built from


def build(tmp: Path) -> Built:
    """`python -m build` on a copy of the tree as a clone has it: the source distribution
    first, then the wheel built from it (so a file missing from the sdist is missing from
    the wheel too). Build isolation gets setuptools through pip (its cache): some seconds."""
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=LOCAL_STATE)
    run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(source)], timeout=300)
    [wheel] = (tmp / "dist").glob("*.whl")
    [sdist] = (tmp / "dist").glob("*.tar.gz")
    return Built(wheel, sdist, source)


def outside_env(**extra):
    """This process's environment less what points into this checkout or its virtualenv
    (PYTHONPATH, the settings, the database, an activated virtualenv on PATH)."""
    ours = (str(ROOT), sys.prefix)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "VIRTUAL_ENV")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(ours))
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env
