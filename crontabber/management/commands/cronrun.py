import argparse
import gc
import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils import timezone

from crontabber import conf, logger
from crontabber.engine.plan import why_not_run
from crontabber.engine.runner import Runner
from crontabber.models import Job
from crontabber.registry import effective_spec
from crontabber.schedules import format_instant
from crontabber.words import plural

from ._common import database_error, registry_or_error, require_known


def interval_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0.1 to 86400")
    return value


# (applies, message): options that do not go together
CLASHES = (
    (lambda o: (o["force"] or o["job_arg"]) and not o["jobs"], "--force and --job-arg need --job NAME"),
    (lambda o: o["loop"] and (o["jobs"] or o["dry_run"]), "--loop runs every due job: not with --job or --dry-run"),
    (
        lambda o: not o["loop"] and (o["interval"] is not None or o["max_ticks"]),
        "--interval and --max-ticks need --loop",
    ),
    (lambda o: o["max_ticks"] < 0, "--max-ticks must be 0 or more"),
)


@contextmanager
def job_lines(out, verbosity: int):
    """With -v 2, each job's own output lines on ``out`` as they come, and with -v 3 all of
    crontabber's log lines, whatever the project's LOGGING says."""
    if verbosity < 2:
        yield
        return
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if verbosity == 2:
        handler.addFilter(lambda record: hasattr(record, "crontabber_job"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def check_options(options: dict) -> None:
    """Options that go together, or not; CommandError naming the first clash."""
    for applies, message in CLASHES:
        if applies(options):
            raise CommandError(message)


RESERVED_OPTIONS = {"run-time", "run_time", "last-success", "last_success"}  # crontabber passes these itself


def job_arguments(items) -> dict[str, str]:
    """--job-arg NAME=VALUE... as {NAME: VALUE}."""
    extra = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise CommandError(f"--job-arg {item!r} is not NAME=VALUE")
        if key in RESERVED_OPTIONS:
            raise CommandError(f"--job-arg {key}: crontabber passes --{key} itself; give another option")
        extra[key] = value
    return extra


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
        parser.add_argument(
            "--loop",
            action="store_true",
            help="stay running: tick now, then when a job falls due, at least every --interval seconds",
        )
        parser.add_argument(
            "--interval",
            type=interval_seconds,
            default=None,
            metavar="SECONDS",
            help="with --loop: the longest sleep between ticks (on its multiples of the clock), 0.1 to 86400 "
            "seconds (default CRONTABBER_INTERVAL, 300)",
        )
        parser.add_argument(
            "--max-ticks",
            type=int,
            default=0,
            metavar="N",
            help="with --loop: exit after N ticks (0, the default: never), e.g. to recycle the process",
        )

    def run_from_argv(self, argv):
        """A process of its own (not call_command): what Django's start-up made lives as
        long as the process, so it is moved out of the garbage collector's way; else each
        full collection scans it again (at 10,000 jobs the ones a tick's allocations set
        off cost more than the tick itself)."""
        gc.freeze()
        super().run_from_argv(argv)

    def handle(self, *args, jobs=None, force=False, job_arg=(), dry_run=False, loop=False, verbosity=1, **options):
        registry = registry_or_error()
        check_options(dict(options, jobs=jobs, force=force, job_arg=job_arg, dry_run=dry_run, loop=loop))
        if jobs:
            require_known(jobs, registry)
        extra = job_arguments(job_arg)
        runner = Runner(out=self.stdout, err=self.stderr, verbosity=verbosity)
        with job_lines(self.stdout, verbosity):
            if loop:
                return self._loop(runner, registry, options["interval"], options["max_ticks"])
            options = dict(only=jobs, force=force, extra=extra, dry_run=dry_run, specs=registry.values())
            report = self._tick(runner, options)
        if dry_run:
            return self._print_plan(report)
        if jobs:
            self._explain(report, jobs, registry, extra)
        if verbosity >= 1 and not report.held_all:
            self.stdout.write(report.summary(timezone.now()))
        if runner.stop_requested:
            self.stderr.write("crontabber: stopped on a signal; unfinished slots run on the next tick")
        if report.errors:  # a supervisor (systemd, a Kubernetes CronJob, cron's mail) sees it
            failed = ", ".join(f"{result.job} {result.attempt.outcome}" for result in report.errors)
            raise CommandError(f"{plural(len(report.errors), 'attempt')} did not succeed: {failed}")

    def _tick(self, runner, options):
        """One tick, stopped by SIGTERM/SIGINT as docs/operations.md says."""
        try:
            with runner.stopping_on_signals():
                return runner.tick(**options)
        except DatabaseError as error:
            raise database_error(error) from None

    def _explain(self, report, names, registry, extra) -> None:
        """Say why a job named with --job ran nothing, and that a --job-arg went unused."""
        ran = set(report.attempts) | {waiting.job for waiting in report.waiting} | set(report.queued)
        idle = [name for name in dict.fromkeys(names) if name not in ran]
        jobs = {job.name: job for job in Job.objects.filter(name__in=idle)}
        now = timezone.now()
        for name in idle:
            spec = effective_spec(registry[name], jobs.get(name))
            self.stdout.write(f"{name}: nothing ran: {why_not_run(spec, jobs.get(name), now, report.held_all)}")
        if extra and not report.attempts:
            self.stdout.write(f"--job-arg {', '.join(extra)}: not used, since nothing ran")

    def _loop(self, runner, registry, interval, max_ticks: int) -> None:
        """Ticks until a signal or ``max_ticks`` (Runner.loop); the exit status is 1 if the
        last tick failed on the database, else 0."""
        interval = interval or float(conf.get("CRONTABBER_INTERVAL"))
        if runner.verbosity >= 1:
            where = f"{connection.vendor} {connection.settings_dict['NAME']}"
            self.stdout.write(
                f"crontabber: {plural(len(registry), 'job')}, a tick at each slot and at least every {interval:g} s, "
                f"on {where}; "
                "SIGTERM or Ctrl-C stops it after the running job"
            )
        failed = runner.loop(registry.values(), interval, max_ticks)
        if runner.stop_requested:
            self.stderr.write("crontabber: stopped on a signal")
        if failed:
            raise CommandError("the last tick failed on the database")

    def _print_plan(self, report):
        if report.held_all:
            return
        for name, missed in report.missed.items():
            self.stdout.write(
                f"would not run {name} for {format_instant(missed.since)} to {format_instant(missed.until)}: "
                f"{plural(missed.covers, 'slot')} past its starting deadline, recorded missed"
            )
        if not report.planned and not report.missed:
            self.stdout.write("nothing is due")
        for name, (shown, last, more) in report.planned.items():
            for slot in shown:
                self.stdout.write(f"would run {name} for {format_instant(slot)}")
            if more:
                through = f" through {format_instant(last)}" if last else " (the rest on later ticks)"
                self.stdout.write(f"... and more slots of {name}{through}")
