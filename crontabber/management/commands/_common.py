"""Helpers shared by the crontabber commands (the leading _ hides this from Django)."""

import logging
import signal
import time

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from crontabber import conf, scrub
from crontabber.health import first_line
from crontabber.models import Job
from crontabber.registry import RegistryError, load_jobs

logger = logging.getLogger("crontabber")


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
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CommandError(f"unknown job {', '.join(repr(n) for n in unknown)}; nothing was changed")
    return list(dict.fromkeys(names))


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


def install_stop_handlers(runner, wake=None):
    """SIGTERM/SIGINT: start nothing new and let the running job finish for up to
    CRONTABBER_STOP_GRACE_SECONDS; then it is interrupted, recorded as interrupted and
    its claim released. A second signal, two seconds or more after the first,
    interrupts it at once (closer repeats are one stop seen twice: a service manager
    signalling the loop and this process together)."""
    grace = conf.get("CRONTABBER_STOP_GRACE_SECONDS")
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
        if wake is not None:
            wake.set()  # a loop sleeping between ticks stops at once

    previous = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_stop)
    except ValueError:  # not the main thread (call_command from a thread): no handlers
        pass
    return previous
