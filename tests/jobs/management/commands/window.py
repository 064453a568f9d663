from django.core.management.base import BaseCommand

from tests.jobs.models import Execution


class Command(BaseCommand):
    help = "Test job for `fold`: records the window it was told (--since to --run-time)."

    def add_arguments(self, parser):
        parser.add_argument("--run-time", default="")
        parser.add_argument("--since", default="")
        parser.add_argument("--fail", action="store_true", help="fail after recording the window")

    def handle(self, *args, run_time="", since="", fail=False, **options):
        Execution.objects.create(label=since, slot=run_time, pid=0, started=0)
        if fail:
            raise RuntimeError(f"failing on purpose for {since} to {run_time}")
        self.stdout.write(f"rolled up {since} to {run_time}")
