import argparse
import json
import os

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import color_style
from django.db import DatabaseError
from django.utils import termcolors, timezone

from crontabber.models import Job
from crontabber.registry import RegistryError, load_jobs
from crontabber.web import health, listing, metrics

from ._common import database_error, one_line, registry_or_error, require_known


def colours(stdout, no_color=False, force_color=False) -> dict:
    """Each health status's colour for the table: only on a terminal, never with NO_COLOR
    set (https://no-color.org) or --no-color; --force-color colours anyway."""
    if not force_color and (no_color or os.environ.get("NO_COLOR") or not stdout.isatty()):
        return {}
    style = color_style(force_color=True)  # Django's roles, and its DJANGO_COLORS palette
    return {
        "failing": style.ERROR,
        "overdue": style.WARNING,
        "running": termcolors.make_style(fg="blue"),
        "ok": style.SUCCESS,
    }


MOST_NEXT = 1000  # slots cronlist --next lists


def slot_count(text: str) -> int:
    """--next's N: a whole number from 1 to MOST_NEXT."""
    if not text.strip().isdigit() or not 1 <= int(text) <= MOST_NEXT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of slots from 1 to {MOST_NEXT}")
    return int(text)


class Command(BaseCommand):
    help = "Show what each job did and will do."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="only these jobs")
        parser.add_argument(
            "--format",
            choices=["table", "json", "prometheus"],
            default="table",
            help="prometheus: the metrics in the text format, for node_exporter's textfile collector",
        )
        parser.add_argument(
            "--next",
            type=slot_count,
            metavar="N",
            help="the named jobs' next N slots, in their zone and UTC, marking those a clock change moves or merges",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="the health verdict for Nagios: a summary line first, exit status 0 OK, 1 WARNING, 2 CRITICAL",
        )

    def handle(self, *args, names=(), format="table", check=False, next=None, **options):
        if next is not None:
            return self._next(names, next, format, check)
        if check:
            if format == "prometheus":
                raise CommandError("--check answers as a table or JSON, not prometheus")
            return self._check(names, format)
        if format == "prometheus":
            return self._prometheus(names)
        registry = registry_or_error()
        try:
            rows = Job.objects.in_bulk(field_name="name")
            require_known(names, [*registry, *rows])
            entries = listing.entries(registry, rows, names)
        except DatabaseError as error:
            raise database_error(error) from None
        if format == "json":
            self.stdout.write(json.dumps(entries, indent=2))
            return
        self._table(entries, listing.statuses(entries, registry, rows, timezone.now()), options)

    def _next(self, names, count, format, check):
        if check or format == "prometheus" or not names:
            raise CommandError("--next N lists the slots of the jobs named, as a table or JSON")
        registry = registry_or_error()
        require_known(names, registry)
        try:
            rows = Job.objects.in_bulk(names, field_name="name")
        except DatabaseError as error:
            raise database_error(error) from None
        now = timezone.now()
        jobs = [listing.coming_slots(registry[name], rows.get(name), now, count) for name in names]
        if format == "json":
            self.stdout.write(json.dumps(jobs, indent=2))
        else:
            self._coming(jobs)

    def _coming(self, jobs):
        for job in jobs:
            self.stdout.write(f"{job['name']}: {job['schedule']}")
            for slot in job["slots"]:
                note = f"  ! {slot['clock_change']}" if slot["clock_change"] else ""
                self.stdout.write(f"  {slot['local']:<22}  {listing.short(slot['slot'])}{note}")

    def _table(self, entries, statuses, options):
        palette = colours(self.stdout, options.get("no_color"), options.get("force_color"))
        lines = [listing.HEADER, *(listing.row(entry) for entry in entries)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(listing.HEADER))]
        for line, status in zip(lines, ["", *statuses]):
            text = "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            self.stdout.write(palette[status](text) if status in palette else text)
        for entry in entries:
            if entry["last_error"]:
                line = f"{entry['name']}: last error: {health.first_line(entry['last_error'])}"
                self.stdout.write(palette["failing"](line) if palette else line)

    def _prometheus(self, names):
        """The metrics of GET /crontabber/metrics, without a web request."""
        if not metrics.available():
            raise CommandError(metrics.MISSING)
        registry = registry_or_error()
        require_known(names, registry)
        try:
            text = metrics.exposition(timezone.now(), names or None).decode()
        except DatabaseError as error:
            raise database_error(error) from None
        self.stdout.write(text, ending="")

    def _check(self, names, format):
        """Like the original crontabber's Nagios check: one summary line, then a line per
        job; the exit status is the verdict. A broken registry or an unreachable database
        is CRITICAL: no job runs."""
        try:
            known = {spec.name for spec in load_jobs()}
        except RegistryError as error:
            return self._broken(str(error), format)
        require_known(names, known)
        try:
            report = health.report(names=names or None)
        except DatabaseError as error:
            return self._broken(f"database error: {one_line(error)}", format)
        if format == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return self._exit(report.code)
        return self._verdict(report.code, listing.nagios_summary(report), listing.nagios_details(report))

    def _broken(self, problem, format):
        """No verdict can be reached (registry, database): CRITICAL, since no job runs either."""
        if format == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "status": "critical",
                        "last_tick": None,
                        "hold_all": None,
                        "problems": [problem],
                        "jobs": [],
                    },
                    indent=2,
                )
            )
            return self._exit(health.CRITICAL)
        return self._verdict(health.CRITICAL, problem, [])

    def _verdict(self, code, summary, details):
        self.stdout.write(f"CRONTABBER {listing.VERDICTS[code]} - {summary}")
        for line in details:
            self.stdout.write(line)
        return self._exit(code)

    def _exit(self, code):
        if code:
            self.stdout.flush()
            raise SystemExit(code)  # not CommandError (always 1): Nagios reads the status
