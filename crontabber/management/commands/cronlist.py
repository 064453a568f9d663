import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from crontabber.models import Job

from ._common import database_error, registry_or_error


def iso(value):
    return value.isoformat() if value else None


def short(value):
    return value.strftime("%Y-%m-%d %H:%MZ") if value else "-"


class Command(BaseCommand):
    help = "Show what each job did and will do."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="only these jobs")
        parser.add_argument("--format", choices=["table", "json"], default="table")

    def handle(self, *args, names=(), format="table", **options):
        registry = registry_or_error()
        unknown = [name for name in names if name not in registry]
        if unknown:
            raise CommandError(f"unknown job {', '.join(repr(n) for n in unknown)}")
        specs = [registry[name] for name in names] if names else list(registry.values())
        try:
            rows = {job.name: job for job in Job.objects.filter(name__in=[spec.name for spec in specs])}
        except DatabaseError as error:
            raise database_error(error) from None
        entries = [self._entry(spec, rows.get(spec.name)) for spec in specs]
        if format == "json":
            self.stdout.write(json.dumps(entries, indent=2))
        else:
            self._table(entries)

    def _entry(self, spec, job):
        return {
            "name": spec.name,
            "cmd": " ".join([spec.cmd, *spec.cmd_args]),
            "schedule": spec.schedule.description,
            "enabled": spec.enabled,
            "backfill": spec.backfill,
            "next_run": iso(job and job.next_run),
            "next_slot": iso(job and job.next_slot),
            "last_run": iso(job and job.last_run),
            "last_success": iso(job and job.last_success),
            "first_run": iso(job and job.first_run),
            "error_count": job.error_count if job else 0,
            "last_error": (job.last_error or None) if job else None,
            "ongoing": iso(job and job.claimed_at) if job and job.claimed_by else None,
            "claimed_by": (job.claimed_by or None) if job else None,
        }

    def _table(self, entries):
        from datetime import datetime

        def when(value):
            return short(datetime.fromisoformat(value)) if value else "-"

        header = ("NAME", "SCHEDULE", "LAST RUN", "LAST SUCCESS", "NEXT RUN", "ERRORS", "RUNNING")
        lines = [header]
        for e in entries:
            next_run = when(e["next_run"]) if e["enabled"] else "disabled"
            if e["enabled"] and e["first_run"] is None:
                next_run = "next tick (new)"
            running = f"since {when(e['ongoing'])} by {e['claimed_by']}" if e["ongoing"] else "-"
            lines.append((e["name"], e["schedule"], when(e["last_run"]), when(e["last_success"]),
                          next_run, str(e["error_count"]), running))  # fmt: skip
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        for line in lines:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        for e in entries:
            if e["last_error"]:
                self.stdout.write(f"{e['name']}: last error: {e['last_error'].splitlines()[0]}")
