from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber.engine import repair
from crontabber.schedules import ScheduleError, format_instant, parse_instant

from ._common import RepairCommand, database_error, known_names, registry_or_error, select_names


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
        parser.add_argument(
            "--yes",
            action="store_true",
            help="mark even when it moves a last success back (its slots since run again) "
            f"or leaves more than {repair.MARK_BACKLOG_ASKED:,} slots to backfill",
        )

    def handle(self, *args, names=(), all_jobs=False, time=None, yes=False, **options):
        registry = registry_or_error()
        now = timezone.now()
        marked = marked_slot(time, now)
        try:
            selected = select_names(names, all_jobs, set(registry) if all_jobs else known_names(registry))
            outside = [name for name in selected if name not in registry]
            if outside:
                raise CommandError(
                    f"{', '.join(outside)}: not in the registry, so there is no schedule to mark; "
                    "register it first; nothing was changed"
                )
            specs = [registry[name] for name in selected]
            done = repair.mark_success(specs, marked, now, by="cronmarksuccess", confirmed=yes)
        except repair.Unconfirmed as asked:
            raise CommandError(f"{asked}; add --yes to mark anyway; nothing was changed") from None
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        for marked_job in done:
            self.stdout.write(f"{marked_job.job.name}: {marked_job.said()}")


def marked_slot(text, now):
    """--time as an instant (default now); refused when empty, unreadable or in the future."""
    if text is None:
        return now.replace(microsecond=0)
    try:
        marked = parse_instant(text, timezone.get_default_timezone())
    except ScheduleError as error:
        raise CommandError(f"--time: {error}") from None
    if marked > now:
        raise CommandError(f"--time {format_instant(marked)} is in the future")
    return marked
