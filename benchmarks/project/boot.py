"""Runs the script named by argv[1] (with the rest of argv) without the venv's
editable-install finder: a child measuring another tree than this checkout (--root,
--rev) would otherwise get any crontabber module missing from that tree from this
checkout (the finder is consulted after sys.path, for submodules too)."""

import os
import runpy
import sys

sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as when the script runs itself
runpy.run_path(sys.argv[0], run_name="__main__")
