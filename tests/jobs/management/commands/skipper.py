from django.core.management.base import BaseCommand

from crontabber import SkipRun


class Command(BaseCommand):
    help = "Test job: has nothing to do."

    def handle(self, *args, **options):
        raise SkipRun("no new rows")
