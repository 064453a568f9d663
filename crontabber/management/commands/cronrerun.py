from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from crontabber.engine import rerun
from crontabber.engine.runner import Runner
from crontabber.schedules import format_instant
from crontabber.words import plural

from ._common import database_error, registry_or_error, require_known


class Command(BaseCommand):
    help = (
        "Run a job's past slots from --from to --to again, oldest first, whatever their outcome; "
        "first says how many of them are missing, failed, done or paused."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--from", dest="start", required=True, metavar="ISO8601", help="the first slot")
        parser.add_argument(
            "--to",
            dest="end",
            required=True,
            metavar="ISO8601",
            help="the last slot (a time without offset: TIME_ZONE)",
        )
        parser.add_argument(
            "--failed-and-missing",
            action="store_true",
            help="only the slots that failed or were never attempted (not those done or paused)",
        )
        parser.add_argument("--newest-first", action="store_true", help="the newest slot first")
        parser.add_argument("--dry-run", action="store_true", help="list the slots that would run; run nothing")
        parser.add_argument("--yes", action="store_true", help=f"re-run even more than {rerun.MOST_UNASKED:,} slots")

    def handle(self, *args, name, start, end, dry_run=False, yes=False, **options):
        registry = registry_or_error()
        require_known([name], registry, "; nothing was re-run")
        choice = rerun.Choice(options.get("failed_and_missing", False), options.get("newest_first", False))
        try:
            self._rerun(registry[name], start, end, dry_run, yes, choice)
        except rerun.RerunRefused as refused:
            raise CommandError(f"{name}: {refused}") from None
        except DatabaseError as error:
            raise database_error(error) from None

    def _rerun(self, spec, start, end, dry_run, yes, choice):
        now = timezone.now()
        first, last = rerun.parse_range(start, end, timezone.get_default_timezone(), now)
        self.stdout.write(f"{spec.name}: {rerun.preview(spec, first, last, now)}")
        count = rerun.accepted(spec, first, last, now, confirmed=yes, choice=choice)
        if spec.fold:
            self.stdout.write(f"{spec.name} folds its slots: one run for the {plural(count, 'slot')}, told the window")
        elif not spec.backfill:
            self.stdout.write(f"{spec.name} is not a backfill job (it is not told its slot): one run, for the latest")
        runner = Runner(out=self.stdout)
        with runner.stopping_on_signals():  # SIGTERM: as cronrun, the running slot may finish
            report = runner.rerun(spec, first, last, dry_run=dry_run, choice=choice)
        if dry_run:
            for slot in report.planned.get(spec.name, ([], None, False))[0]:
                self.stdout.write(f"would re-run {spec.name} for {format_instant(slot)}")
            return
        if runner.stop_requested:
            raise rerun.RerunRefused("stopped on a signal; the rest of the range did not run")
        if report.failed or report.waiting:
            stopped = (
                report.waiting[0].why
                if report.waiting
                else f"{report.failed[0].attempt.outcome} for {format_instant(report.failed[0].slot)}"
            )
            raise rerun.RerunRefused(f"the re-run stopped: {stopped}")
