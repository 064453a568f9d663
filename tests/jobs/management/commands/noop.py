from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing (benchmarks, tests)."

    def add_arguments(self, parser):
        parser.add_argument("--run-time")
        parser.add_argument("--last-success")

    def handle(self, *args, **options):
        pass
