"""How far a reader must follow one tick: the modules of crontabber/ that a tick running
exactly one due slot of one backfill command job calls into, and how often it moves
between them.

    .venv/bin/python benchmarks/trace_tick.py [--show]

A scratch SQLite database, one hourly backfill job (the test app's `noop`), one tick
untimed (the process is warm), then the job's state set so that exactly one slot is due
and `call_command("cronrun")` profiled with sys.setprofile: each call of a function
defined under crontabber/ counts, by its module. Prints the modules, the calls, the
module changes and the returns to a module already left, then the same by room (a
subpackage such as crontabber.engine, or a top-level module); --show lists the sequence.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = str(ROOT / "crontabber") + os.sep


def setup_django(database: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"sqlite:///{database}",
        TEST_CRONTABBER_JOBS='[{"name": "hourly", "cmd": "noop", "cron": "0 * * * *", "backfill": true}]',
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def one_slot_due() -> None:
    from crontabber.models import Job

    now = datetime.now(UTC)
    slot = now.replace(minute=0, second=0, microsecond=0)
    Job.objects.filter(name="hourly").update(
        next_slot=slot, next_run=slot, last_success=slot - timedelta(hours=1), error_count=0
    )


def trace(command) -> list[str]:
    """The module (dotted, under crontabber/) of each call the command makes into crontabber/."""
    calls: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            path = frame.f_code.co_filename
            if path.startswith(PACKAGE):
                calls.append(path[len(str(ROOT)) + 1 : -3].replace(os.sep, ".").removesuffix(".__init__"))

    sys.setprofile(profile)
    try:
        command()
    finally:
        sys.setprofile(None)
    return calls


def summary(calls: list[str]) -> dict[str, int]:
    changes = returns = 0
    left: set[str] = set()
    for before, after in zip(calls, calls[1:]):
        if after != before:
            changes += 1
            left.add(before)
            returns += after in left
    return {"modules": len(set(calls)), "calls": len(calls), "module changes": changes, "returns": returns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="print the sequence of modules, one line per change")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        setup_django(Path(scratch) / "trace.sqlite3")
        from io import StringIO

        from django.core.management import call_command

        from crontabber.models import Log

        run = lambda: call_command("cronrun", stdout=StringIO())  # noqa: E731
        run()  # warm: the job's row, the imports, the caches
        one_slot_due()
        before = Log.objects.count()
        calls = trace(run)
        assert Log.objects.count() == before + 1, "exactly one slot should have run"
    if args.show:
        for index, module in enumerate(calls):
            if not index or module != calls[index - 1]:
                print(module)
    rooms = [".".join(module.split(".")[:2]) for module in calls]  # crontabber.engine, crontabber.conf...
    for label, sequence in (("modules", calls), ("rooms", rooms)):
        figures = summary(sequence)
        print(f"by {label}:", ", ".join(f"{name}: {value}" for name, value in figures.items()))
        print(f"{label}:", ", ".join(sorted(set(sequence))))


if __name__ == "__main__":
    main()
