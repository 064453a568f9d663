import json
import os

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import color_style
from django.db import DatabaseError
from django.utils import termcolors, timezone

from crontabber.models import Job
from crontabber.registry import RegistryError, effective_spec, load_jobs
from crontabber.web import health, metrics

from ._common import database_error, one_line, registry_or_error, require_known

NOT_IN_REGISTRY = "not in registry"
VERDICTS = ("OK", "WARNING", "CRITICAL")  # health.OK, WARNING, CRITICAL: Nagios exit statuses


def iso(value):
    return value.isoformat() if value else None


def short(value):
    return value.strftime("%Y-%m-%d %H:%MZ") if value else "-"


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


def nagios_summary(report) -> str:
    if report.problems:
        return "; ".join(health.first_line(problem) for problem in report.problems)
    return f"{len(report.jobs)} job{'' if len(report.jobs) == 1 else 's'}"


def nagios_details(report) -> list[str]:
    details = [f"last tick: {report.last_tick.isoformat() if report.last_tick else 'never'}"]
    for job in report.jobs:
        line = f"{job.name}: {job.status}"
        if job.error_count:
            line += f", {job.error_count} error(s) in a row: {health.first_line(job.last_error)}"
        details.append(line)
    return details


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
            "--check",
            action="store_true",
            help="the health verdict for Nagios: a summary line first, exit status 0 OK, 1 WARNING, 2 CRITICAL",
        )

    def handle(self, *args, names=(), format="table", check=False, **options):
        if check:
            if format == "prometheus":
                raise CommandError("--check answers as a table or JSON, not prometheus")
            return self._check(names, format)
        if format == "prometheus":
            return self._prometheus(names)
        registry = registry_or_error()
        try:
            rows = {job.name: job for job in Job.objects.all()}
        except DatabaseError as error:
            raise database_error(error) from None
        # Jobs with state that left the registry (removed or renamed) are listed, not hidden.
        known = [*registry, *(name for name in rows if name not in registry)]
        require_known(names, known)
        queued = health.queued_of(registry.values(), rows.values())
        entries = [self._entry(registry.get(name), rows.get(name), name, queued.get(name)) for name in names or known]
        if format == "json":
            self.stdout.write(json.dumps(entries, indent=2))
            return
        statuses = self._statuses(entries, registry, rows, timezone.now())
        self._table(entries, statuses, colours(self.stdout, options.get("no_color"), options.get("force_color")))

    @staticmethod
    def _statuses(entries, registry, rows, now):
        """Each entry's health status for the table's colours; "gone": not in the registry."""
        return [
            health.job_status(effective_spec(registry[e["name"]], rows.get(e["name"])), rows.get(e["name"]), now)
            if e["in_registry"]
            else "gone"
            for e in entries
        ]

    def _entry(self, spec, job, name, queued=None):
        if spec is not None:
            spec = effective_spec(spec, job)
        return {
            "name": name,
            "in_registry": spec is not None,
            "cmd": spec.command_line if spec else None,
            "schedule": spec.schedule.description if spec else NOT_IN_REGISTRY,
            "enabled": spec.enabled if spec else False,
            "backfill": spec.backfill if spec else False,
            **self._state(job),
            # its attempt on a task backend whose result is not read yet (docs/tasks.md)
            "queued": {
                "slot": iso(queued.slot),
                "backend": queued.backend,
                "result_id": queued.result_id,
                "since": iso(queued.started_at),
            }
            if queued
            else None,  # fmt: skip
        }

    @staticmethod
    def _state(job):
        return {
            "next_run": iso(job and job.next_run),
            "next_slot": iso(job and job.next_slot),
            "last_run": iso(job and job.last_run),
            "last_success": iso(job and job.last_success),
            "last_skipped": iso(job and job.last_skipped),
            "first_run": iso(job and job.first_run),
            "error_count": job.error_count if job else 0,
            "last_error": (job.last_error or None) if job else None,
            "ongoing": iso(job and job.claimed_at) if job and job.claimed_by else None,
            "claimed_by": (job.claimed_by or None) if job else None,
        }

    def _table(self, entries, statuses, palette):
        from datetime import datetime

        def when(value):
            return short(datetime.fromisoformat(value)) if value else "-"

        header = (
            "NAME",
            "SCHEDULE",
            "LAST RUN",
            "LAST SUCCESS",
            "LAST SKIPPED",
            "NEXT RUN",
            "ERRORS",
            "RUNNING",
        )
        lines = [header]
        for e in entries:
            next_run = when(e["next_run"]) if e["enabled"] else "disabled"
            if not e["in_registry"]:
                next_run = "never (not in the registry)"
            if e["enabled"] and e["first_run"] is None:
                next_run = "next tick (new)"
            running = f"since {when(e['ongoing'])} by {e['claimed_by']}" if e["ongoing"] else "-"
            if e["queued"] and not e["ongoing"]:
                queued = e["queued"]
                running = f"queued on {queued['backend']} ({queued['result_id']}) since {when(queued['since'])}"
            lines.append(
                (
                    e["name"],
                    e["schedule"],
                    when(e["last_run"]),
                    when(e["last_success"]),
                    when(e["last_skipped"]),
                    next_run,
                    str(e["error_count"]),
                    running,
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        plain = lambda text: text  # noqa: E731
        for line, status in zip(lines, ["", *statuses]):
            self.stdout.write(palette.get(status, plain)("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()))
        for e in entries:
            if e["last_error"]:
                line = f"{e['name']}: last error: {health.first_line(e['last_error'])}"
                self.stdout.write(palette.get("failing", plain)(line))

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
        return self._verdict(report.code, nagios_summary(report), nagios_details(report))

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
        self.stdout.write(f"CRONTABBER {VERDICTS[code]} - {summary}")
        for line in details:
            self.stdout.write(line)
        return self._exit(code)

    def _exit(self, code):
        if code:
            self.stdout.flush()
            raise SystemExit(code)  # not CommandError (always 1): Nagios reads the status
