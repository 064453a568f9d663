"""Helpers shared by the crontabber commands (the leading _ hides this from Django)."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from crontabber import scrub
from crontabber.models import Job
from crontabber.registry import RegistryError, load_jobs
from crontabber.words import did_you_mean, first_line


def registry_or_error():
    """The registry's jobs by name; a registry mistake becomes a one-line CommandError."""
    try:
        scrub.patterns()  # a bad CRONTABBER_SCRUB_PATTERNS stops here, not in the middle of a run
        return {spec.name: spec for spec in load_jobs()}
    except (RegistryError, ImproperlyConfigured) as error:
        raise CommandError(str(error)) from None


def select_names(names, all_jobs, known, what="job"):
    """The names a repair command acts on: all known ones, or the given ones if every
    one is known. Nothing is changed before this returns."""
    if all_jobs and names:
        raise CommandError("give job names or --all, not both")
    if all_jobs:
        return sorted(known)
    if not names:
        raise CommandError(f"name at least one {what}, or --all")
    require_known(names, known, "; nothing was changed")
    return list(dict.fromkeys(names))


def require_known(names, known, consequence: str = "") -> None:
    """CommandError naming every unknown job, with the known name each may be a typo of."""
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CommandError(f"unknown job {', '.join(_with_guess(name, known) for name in unknown)}{consequence}")


def _with_guess(name: str, known) -> str:
    return f"{name!r}{did_you_mean(name, known)}"


def one_line(error: BaseException) -> str:
    return first_line(error) or type(error).__name__


def database_error(error: DatabaseError) -> CommandError:
    message = one_line(error)
    if "crontabber_" in message and any(
        words in message for words in ("no such table", "does not exist", "doesn't exist")
    ):
        message += " (run 'manage.py migrate' first)"
    return CommandError(f"database error: {message}")


def known_names(registry):
    return set(registry) | set(Job.objects.values_list("name", flat=True))


class RepairCommand(BaseCommand):
    """A command that repairs jobs named on the command line, or --all of them."""

    requires_system_checks = []  # the registry is checked by registry_or_error, in one line
    all_help = "every job"

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--all", action="store_true", dest="all_jobs", help=self.all_help)
