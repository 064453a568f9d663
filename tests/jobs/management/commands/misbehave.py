import json
import os
import sys
import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from tests.jobs.models import Execution

LONG_SECRET = "long-line-secret-0042"


class Weird(BaseException):
    """What no `except Exception` catches."""


class Command(BaseCommand):
    help = "Test job: misbehaves in the way --how says (the fuzz test's and the edge tests' adversary)."

    def add_arguments(self, parser):
        parser.add_argument("--run-time", default="")
        parser.add_argument("--last-success", default="")
        parser.add_argument(
            "--how",
            default="",
            choices=[
                "",
                "raise",
                "exit",
                "base-exception",
                "autocommit-off",
                "begin",
                "swallow-timeout",
                "nul",
                "flood",
                "os-exit",
                "fork-exit",
                "long-secret",
            ],
        )
        parser.add_argument("--seconds", type=float, default=0.0)

    def handle(self, *args, how="", seconds=0.0, run_time="", **options):
        if how == "raise":
            raise RuntimeError("misbehaving on purpose")
        if how == "exit":
            sys.exit(3)
        if how == "base-exception":
            raise Weird("not an Exception at all")
        if how == "autocommit-off":
            transaction.set_autocommit(False)
            Execution.objects.create(label="uncommitted", slot=run_time, pid=0, started=time.time())
        if how == "begin":
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
            Execution.objects.create(label="uncommitted", slot=run_time, pid=0, started=time.time())
        if how == "swallow-timeout":
            for _ in range(int(seconds / 0.05)):  # counted: tests freeze the clock
                try:
                    time.sleep(0.05)
                except BaseException:  # noqa: S110 - the point: a job that swallows everything
                    pass
        if how == "os-exit":  # as a segfault or the OOM killer would: the process is gone at once
            os._exit(17)
        if how == "fork-exit":  # a child that leaves with sys.exit, as a forking job's child may
            child = os.fork()
            if child == 0:
                sys.exit(0)
            os.waitpid(child, 0)
        if how == "long-secret":  # a JSON line longer than a piece the output is kept in, a secret near the cut
            filler = 65536 - 40 + int(seconds * 100) % 60
            self.stdout.write(json.dumps({"data": "x" * filler, "password": LONG_SECRET, "more": "y" * 70000}))
        if how == "nul":
            self.stdout.write("a NUL \x00 in the output")
        if how == "flood":
            for _ in range(200):
                self.stdout.write("x" * 10_000, ending="")
        self.stdout.write(f"done {how}")
