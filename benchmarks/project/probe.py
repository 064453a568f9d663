"""One management command in a process with Django set up: its time and RSS growth
(``tick``) or tracemalloc's peak during it (``tracemalloc``), printed as JSON.

    python probe.py tick|tracemalloc COMMAND [ARGS...]    (from the project's folder)
"""

import io
import json
import os
import resource
import sys
import time
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

mode, argv = sys.argv[1], sys.argv[2:]
connection.ensure_connection()  # the command is measured, not the connection set-up
out = io.StringIO()
result = {}
if mode == "tick":
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    call_command(*argv, stdout=out, stderr=out)
    result["tick"] = time.perf_counter() - started
    result["rss_growth_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
elif mode == "tracemalloc":
    tracemalloc.start()
    call_command(*argv, stdout=out, stderr=out)
    result["traced_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(result))
