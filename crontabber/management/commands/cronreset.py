from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.utils import timezone

from crontabber.models import Job

from ._common import database_error, known_names, registry_or_error, select_names

FORGOTTEN = dict(
    schedule="", first_run=None, last_run=None, last_success=None, next_slot=None, next_run=None,
    error_count=0, last_error="",
)  # fmt: skip


class Command(BaseCommand):
    help = "Forget jobs' state: each runs on the next tick as if new (a backfill job starts over)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--all", action="store_true", dest="all_jobs", help="every job")

    def handle(self, *args, names=(), all_jobs=False, **options):
        registry = registry_or_error()
        try:
            with transaction.atomic():
                selected = select_names(names, all_jobs, known_names(registry))
                jobs = {job.name: job for job in Job.objects.select_for_update().filter(name__in=selected)}
                now = timezone.now()
                running = [job for job in jobs.values() if job.claimed_by and job.claim_expires > now]
                if running:
                    raise CommandError("cannot reset a running job: " + ", ".join(
                        f"{job.name} (claimed by {job.claimed_by} since {job.claimed_at:%Y-%m-%d %H:%M:%S}Z)"
                        for job in running) + "; nothing was changed")  # fmt: skip
                Job.objects.filter(name__in=jobs).update(**FORGOTTEN)
        except DatabaseError as error:
            raise database_error(error) from None
        for name in selected:
            if name in jobs:
                self.stdout.write(f"{name}: reset; it runs on the next tick as a new job")
            else:
                self.stdout.write(f"{name}: has no state yet; nothing to reset")
