from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber.engine import pause, repair

from ._common import RepairCommand, database_error, registry_or_error, select_names


class Command(RepairCommand):
    help = (
        "Enable paused jobs again (an operator's disabling is lifted): the slots that fell due while they were "
        "off are recorded as one paused span, then caught up (a backfill job's default) or skipped (the default "
        "of the others, which wait for their next slot)."
    )
    all_help = "every job in the registry"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        choice = parser.add_mutually_exclusive_group()
        choice.add_argument(
            "--catch-up",
            action="store_const",
            const=pause.CATCH_UP,
            dest="choice",
            help="run the paused slots (a backfill job each, another once, for the latest)",
        )
        choice.add_argument(
            "--skip", action="store_const", const=pause.SKIP, dest="choice", help="run none: wait for the next slot"
        )
        parser.add_argument("--yes", action="store_true", help="resume even when that runs paused slots")

    def handle(self, *args, names=(), all_jobs=False, choice=None, yes=False, **options):
        registry = registry_or_error()
        try:
            selected = select_names(names, all_jobs, set(registry))
            specs = [registry[name] for name in selected]
            done = pause.resume_named(specs, timezone.now(), choice, confirmed=yes)
        except repair.Unconfirmed as asked:
            raise CommandError(f"{asked}; add --yes to resume, or --skip to run none; nothing was changed") from None
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        for resumed in done:
            self.stdout.write(f"{resumed.name}: enabled; {resumed.said()}")
