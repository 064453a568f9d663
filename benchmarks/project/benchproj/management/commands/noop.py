from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing (the backfill and fold benchmarks' job); accepts --run-time and --since."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--run-time")
        parser.add_argument("--since")

    def handle(self, *args, **options):
        return None
