import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Test job: prints the names of its environment variables, one line."

    def handle(self, *args, **options):
        self.stdout.write("env: " + " ".join(sorted(os.environ)))
