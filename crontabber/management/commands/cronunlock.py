from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber.engine import repair

from ._common import RepairCommand, database_error, known_names, registry_or_error, select_names


class Command(RepairCommand):
    help = (
        "Release jobs' claims by hand (a runner that died holding them). A claim that has "
        "not expired is refused unless --force: its runner may still be running the job."
    )
    all_help = "every claimed job"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--force", action="store_true", help="also release claims that have not expired")

    def handle(self, *args, names=(), all_jobs=False, force=False, **options):
        registry = registry_or_error()
        now = timezone.now()
        try:
            selected = select_names(names, all_jobs, known_names(registry))
            released = repair.unlock(selected, force=force, now=now, by="cronunlock")
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        unlocked = {claim.name: claim for claim in released}
        if all_jobs and not released:
            self.stdout.write("no job is claimed; nothing to release")
        for name in selected:
            claim = unlocked.get(name)
            if claim:
                self.stdout.write(
                    f"{name}: released the claim of {claim.claimed_by}, held since "
                    f"{claim.claimed_at:%Y-%m-%d %H:%M:%S}Z"
                )
            elif not all_jobs:
                self.stdout.write(f"{name}: not claimed; nothing to release")
