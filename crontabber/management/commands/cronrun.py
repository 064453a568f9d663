import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from crontabber.runner import Runner
from crontabber.schedule import format_instant

from ._common import database_error, registry_or_error

logger = logging.getLogger("crontabber")


class Command(BaseCommand):
    help = "Run every due job once: one tick of the crontabber loop."
    # The registry is validated here, with a one-line error; a tick skips the other checks.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--job",
            action="append",
            dest="jobs",
            metavar="NAME",
            help="run only this job (repeatable); exit status 1 if it fails",
        )
        parser.add_argument("--force", action="store_true", help="with --job: run now whatever the schedule")
        parser.add_argument(
            "--job-arg",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="with --job: pass --NAME=VALUE to the command (repeatable)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print which jobs and slots would run; change nothing"
        )

    def handle(self, *args, jobs=None, force=False, job_arg=(), dry_run=False, **options):
        registry = registry_or_error()
        if (force or job_arg) and not jobs:
            raise CommandError("--force and --job-arg need --job NAME")
        unknown = [name for name in jobs or [] if name not in registry]
        if unknown:
            raise CommandError(f"unknown job {', '.join(repr(n) for n in unknown)}")
        extra = {}
        for item in job_arg:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--job-arg {item!r} is not NAME=VALUE")
            extra[key.strip().lstrip("-")] = value
        runner = Runner(out=self.stdout)
        previous = self._install_signal_handlers(runner) if not dry_run else {}
        try:
            report = runner.tick(only=jobs, force=force, extra=extra, dry_run=dry_run, specs=registry.values())
        except DatabaseError as error:
            raise database_error(error) from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if dry_run:
            self._print_plan(report)
        if runner.stop_requested:
            self.stderr.write("crontabber: stopped on a signal; unfinished slots run on the next tick")
        if jobs and report.failed:
            raise CommandError(
                f"{len(report.failed)} run(s) did not succeed: "
                + ", ".join(f"{r.job} {r.attempt.outcome}" for r in report.failed)
            )

    def _print_plan(self, report):
        if report.held_all:
            return
        if not report.planned:
            self.stdout.write("nothing is due")
        for name, (shown, last, more) in report.planned.items():
            for slot in shown:
                self.stdout.write(f"would run {name} for {format_instant(slot)}")
            if more:
                through = f" through {format_instant(last)}" if last else " (the rest on later ticks)"
                self.stdout.write(f"... and more slots of {name}{through}")

    def _install_signal_handlers(self, runner):
        """SIGTERM/SIGINT: start nothing new and let the running job finish for up to
        CRONTABBER_STOP_GRACE_SECONDS; then it is interrupted, recorded as interrupted and
        its claim released. A second signal, two seconds or more after the first,
        interrupts it at once (closer repeats are one stop seen twice: a service manager
        signalling the loop and this process together)."""
        grace = getattr(settings, "CRONTABBER_STOP_GRACE_SECONDS", 60)
        first_signal = []

        def on_stop(signum, frame):
            name = signal.Signals(signum).name
            now = time.monotonic()
            if first_signal and now - first_signal[0] >= 2:
                runner.request_stop(f"{name} received twice", 0)
                return
            if first_signal:
                return
            first_signal.append(now)
            logger.warning("%s received: letting the running job finish (at most %s s), then stopping", name, grace)
            runner.request_stop(f"{name} received and the job still ran {grace} s later", grace)

        previous = {}
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, on_stop)
        except ValueError:  # not the main thread (call_command from a thread): no handlers
            pass
        return previous
