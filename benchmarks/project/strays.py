"""Prints the crontabber modules that ``cronrun`` imports from outside the tree given as
argv[1], on one line, ``OK`` first when there are none: the children of a benchmark
measuring another tree (--root, --rev) must run that tree's crontabber, not this checkout's.
Run with the children's environment (their settings, PYTHONPATH) and project/boot.py."""

import sys

root = sys.argv[1].rstrip("/") + "/"
sys.path.insert(0, root)
import django  # noqa: E402

django.setup()
from django.core.management import load_command_class  # noqa: E402

load_command_class("crontabber", "cronrun")
strays = sorted(
    f"{name}: {module.__file__}"
    for name, module in list(sys.modules.items())
    if name.split(".")[0] == "crontabber" and getattr(module, "__file__", None) and not module.__file__.startswith(root)
)
print("STRAY" if strays else "OK", strays)
