import socket

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.utils import timezone

from crontabber.models import Job, Log
from crontabber.schedule import ScheduleError, format_instant, parse_instant, truncate_to_minute

from ._common import database_error, registry_or_error, select_names


class Command(BaseCommand):
    help = "Record a success now (or at --time) without running, so the gap before it is not backfilled."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--all", action="store_true", dest="all_jobs", help="every job in the registry")
        parser.add_argument("--time", metavar="ISO8601",
                            help="the slot to mark (default now); a time without offset is read in TIME_ZONE")  # fmt: skip

    def handle(self, *args, names=(), all_jobs=False, time=None, **options):
        registry = registry_or_error()
        now = timezone.now()
        try:
            marked = parse_instant(time, timezone.get_default_timezone()) if time else now.replace(microsecond=0)
        except ScheduleError as error:
            raise CommandError(f"--time: {error}") from None
        if marked > now:
            raise CommandError(f"--time {format_instant(marked)} is in the future")
        selected = select_names(names, all_jobs, set(registry))
        done = []
        try:
            with transaction.atomic():
                for name in selected:
                    spec = registry[name]
                    job, _ = Job.objects.select_for_update().get_or_create(
                        name=name, defaults={"first_run": truncate_to_minute(now), "schedule": spec.schedule.description}
                    )
                    if job.claimed_by and job.claim_expires > now:
                        raise CommandError(f"cannot mark {name}: it is running (claimed by {job.claimed_by}); "
                                           "nothing was changed")  # fmt: skip
                    job.first_run = job.first_run or truncate_to_minute(now)
                    job.schedule = spec.schedule.description
                    job.last_success = marked
                    job.next_slot = spec.schedule.next_after(marked, job.first_run)
                    job.next_run = job.next_slot
                    job.error_count = 0
                    job.last_error = ""
                    job.save()
                    Log.objects.create(
                        job=job, slot=marked, started_at=now, duration=0, outcome=Log.SUCCESS,
                        output="marked as succeeded by cronmarksuccess; the command did not run",
                        host=socket.gethostname()[:200],
                    )  # fmt: skip
                    done.append(job)
        except DatabaseError as error:
            raise database_error(error) from None
        for job in done:
            self.stdout.write(
                f"{job.name}: marked succeeded at {format_instant(job.last_success)}; "
                f"next run {format_instant(job.next_run)}"
            )
