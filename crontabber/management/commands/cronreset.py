from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber.engine import repair

from ._common import RepairCommand, database_error, known_names, registry_or_error, select_names


class Command(RepairCommand):
    help = "Forget jobs' state: each runs as if new, at its first slot (a backfill job starts over)."

    def handle(self, *args, names=(), all_jobs=False, **options):
        registry, now = registry_or_error(), timezone.now()
        try:
            selected = select_names(names, all_jobs, known_names(registry))
            jobs = repair.reset(selected, now)
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        for name in selected:
            if name not in jobs:
                self.stdout.write(f"{name}: has no state yet; nothing to reset")
            elif name not in registry:
                self.stdout.write(f"{name}: reset; it is not in the registry, so it does not run")
            else:
                self.stdout.write(f"{name}: reset; {repair.runs_next_after_reset(registry[name], jobs[name], now)}")
