import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Test job: writes many lines through self.stdout, print() and stderr."

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=3)

    def handle(self, *args, lines=3, **options):
        for number in range(lines):
            self.stdout.write(f"line {number}")
        print("from print")
        sys.stderr.write("from stderr\n")
        self.stdout.write("no newline at the end", ending="")
