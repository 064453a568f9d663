from django.core.management.base import BaseCommand

from crontabber import parse_instant
from webapp.demo.models import DemoRun


class Command(BaseCommand):
    help = "Demo backfill job: builds 'the report' for the hour it is given, and records that hour."

    def add_arguments(self, parser):
        parser.add_argument("--run-time", type=parse_instant, required=True, help="the hour to report on (ISO 8601)")

    def handle(self, *args, run_time, **options):
        # Idempotent: running the same hour twice leaves one row.
        DemoRun.objects.get_or_create(command="demo_hourly_report", run_time=run_time)
        self.stdout.write(f"report for the hour starting {run_time.isoformat()}")
