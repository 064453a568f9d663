import os
import signal
import time

from django.core.management.base import BaseCommand

from tests.jobs.models import Execution


class Command(BaseCommand):
    help = "Test job: records its start, works for --seconds, records its end."

    def add_arguments(self, parser):
        parser.add_argument("--run-time", default="")
        parser.add_argument("--last-success", default="")
        parser.add_argument("--label", default="work")
        parser.add_argument("--seconds", type=float, default=0.0)
        parser.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (a hung job)")
        parser.add_argument("--kill-at", default="", help="SIGKILL its own process at this run time (a crash)")

    def handle(self, *args, run_time="", label="work", seconds=0.0, ignore_term=False, kill_at="", **options):
        if ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        execution = Execution.objects.create(label=label, slot=run_time, pid=os.getpid(), started=time.time())
        if run_time and run_time == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # in process: the runner dies mid-attempt
        self.stdout.write(f"working {seconds} s")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
        Execution.objects.filter(pk=execution.pk).update(finished=time.time())
        self.stdout.write("done")
