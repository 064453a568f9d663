from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber import repair
from crontabber.schedule import ScheduleError, format_instant, parse_instant

from ._common import RepairCommand, database_error, registry_or_error, select_names


class Command(RepairCommand):
    help = "Record a success now (or at --time) without running, so the gap before it is not backfilled."
    all_help = "every job in the registry"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--time",
            metavar="ISO8601",
            help="the slot to mark (default now); a time without offset is read in TIME_ZONE",
        )

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
        try:
            done = repair.mark_success([registry[name] for name in selected], marked, now, by="cronmarksuccess")
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        for job in done:
            self.stdout.write(
                f"{job.name}: marked succeeded at {format_instant(job.last_success)}; "
                f"next run {format_instant(job.next_run)}"
            )
