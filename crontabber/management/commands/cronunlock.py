from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.utils import timezone

from crontabber.models import Job, Log

from ._common import database_error, known_names, registry_or_error, select_names


class Command(BaseCommand):
    help = (
        "Release jobs' claims by hand (a runner that died holding them). A claim that has "
        "not expired is refused unless --force: its runner may still be running the job."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--all", action="store_true", dest="all_jobs", help="every claimed job")
        parser.add_argument("--force", action="store_true", help="also release claims that have not expired")

    def handle(self, *args, names=(), all_jobs=False, force=False, **options):
        registry = registry_or_error()
        now = timezone.now()
        try:
            with transaction.atomic():
                selected = select_names(names, all_jobs, known_names(registry))
                jobs = list(Job.objects.select_for_update().filter(name__in=selected).exclude(claimed_by=""))
                live = [job for job in jobs if job.claim_expires and job.claim_expires > now]
                if live and not force:
                    raise CommandError(
                        "claim not expired, its runner may still be running: "
                        + ", ".join(f"{job.name} (held by {job.claimed_by} until {job.claim_expires:%H:%M:%S}Z)"
                                    for job in live)  # fmt: skip
                        + "; use --force to release anyway; nothing was changed"
                    )
                for job in jobs:
                    Log.objects.filter(job=job, outcome=Log.RUNNING).update(
                        outcome=Log.INTERRUPTED, error_type="Unlocked",
                        error_value=f"claim of {job.claimed_by} released by cronunlock",
                    )  # fmt: skip
                Job.objects.filter(pk__in=[job.pk for job in jobs]).update(
                    claimed_by="", claimed_at=None, claim_expires=None
                )
        except DatabaseError as error:
            raise database_error(error) from None
        unlocked = {job.name: job for job in jobs}
        if all_jobs and not jobs:
            self.stdout.write("no job is claimed; nothing to release")
        for name in selected:
            job = unlocked.get(name)
            if job:
                self.stdout.write(f"{name}: released the claim of {job.claimed_by}, held since "
                                  f"{job.claimed_at:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
            elif not all_jobs:
                self.stdout.write(f"{name}: not claimed; nothing to release")
