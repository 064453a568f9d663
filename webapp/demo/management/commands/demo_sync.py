from django.core.management.base import BaseCommand

from crontabber import parse_instant
from webapp.demo.models import DemoRun


class Command(BaseCommand):
    help = "Demo last-success job: syncs what changed since its last successful run."

    def add_arguments(self, parser):
        parser.add_argument(
            "--last-success",
            type=parse_instant,
            default=None,
            help="the last successful run (ISO 8601); absent on the first run",
        )

    def handle(self, *args, last_success, **options):
        DemoRun.objects.create(command="demo_sync", last_success=last_success)
        since = last_success.isoformat() if last_success else "the beginning"
        self.stdout.write(f"synced changes since {since}")
