from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing (the backfill benchmark's job); accepts --run-time."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--run-time")

    def handle(self, *args, **options):
        return None
