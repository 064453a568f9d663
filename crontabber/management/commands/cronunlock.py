from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber.engine import repair
from crontabber.words import plural

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
        parser.add_argument(
            "--queued",
            action="store_true",
            help="also give up their attempts queued on task backends whose results will never come "
            "(the queue lost them, or the job is gone): their slots run again",
        )

    def handle(self, *args, names=(), all_jobs=False, force=False, queued=False, **options):
        registry = registry_or_error()
        now = timezone.now()
        try:
            selected = select_names(names, all_jobs, known_names(registry))
            released = repair.unlock(selected, force=force, now=now, by="cronunlock")
            given_up = repair.give_up_queued(selected) if queued else {}
        except repair.RepairError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise database_error(error) from None
        if all_jobs and not released:
            self.stdout.write("no job is claimed; nothing to release")
        unlocked = {claim.name: claim for claim in released}
        for name in selected:
            self._say(name, unlocked.get(name), given_up.get(name, 0), all_jobs)

    def _say(self, name, claim, given_up: int, all_jobs: bool) -> None:
        if claim:
            since = f"{claim.claimed_at:%Y-%m-%d %H:%M:%S}Z"
            self.stdout.write(f"{name}: released the claim of {claim.claimed_by}, held since {since}")
        elif not all_jobs:
            self.stdout.write(f"{name}: not claimed; nothing to release")
        if given_up:
            self.stdout.write(f"{name}: gave up {plural(given_up, 'attempt')} queued on a task backend")
