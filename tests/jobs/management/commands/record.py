import time

from django.core.management.base import BaseCommand, CommandError

from crontabber import parse_instant
from tests.jobs import control


class Command(BaseCommand):
    help = "Test job: records its arguments; fails for the run times in control.FAILING, is slow for those in SLOW."

    def add_arguments(self, parser):
        parser.add_argument("--run-time", type=parse_instant)
        parser.add_argument("--last-success", type=parse_instant)
        parser.add_argument("--since", type=parse_instant, help="a folded job's oldest slot")
        parser.add_argument("--label", default="")
        parser.add_argument("--colour", default="")

    def handle(self, *args, run_time=None, last_success=None, since=None, label="", colour="", **options):
        call = {"label": label, "run_time": run_time, "last_success": last_success, "colour": colour}
        control.CALLS.append({**call, "since": since} if since else call)
        key = run_time.isoformat() if run_time else "*"
        if key in control.SLOW:
            time.sleep(control.SLOW[key])
        if key in control.FAILING or "*" in control.FAILING:
            raise CommandError(f"failing on purpose for {key}")
        self.stdout.write(f"recorded {label} {key}")
