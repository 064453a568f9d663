from django.core.management.base import CommandError
from django.db import DatabaseError

from crontabber.engine import repair

from ._common import RepairCommand, database_error, known_names, registry_or_error, select_names


class Command(RepairCommand):
    help = "Forget jobs' state: each runs on the next tick as if new (a backfill job starts over)."

    def handle(self, *args, names=(), all_jobs=False, **options):
        registry = registry_or_error()
        try:
            selected = select_names(names, all_jobs, known_names(registry))
            jobs = repair.reset(selected)
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        for name in selected:
            if name in jobs and name not in registry:
                self.stdout.write(f"{name}: reset; it is not in the registry, so it does not run")
            elif name in jobs:
                self.stdout.write(f"{name}: reset; it runs on the next tick as a new job")
            else:
                self.stdout.write(f"{name}: has no state yet; nothing to reset")
