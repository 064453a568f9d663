"""crontabber: runs a Django site's periodic management commands reliably."""

import logging

from .schedules.base import format_instant, parse_instant  # for jobs: their --run-time and --last-success

__all__ = ["SkipRun", "format_instant", "parse_instant"]
__version__ = "0.1.0"

logger = logging.getLogger("crontabber")  # crontabber's own lines, and each job's output lines
# One line per failed attempt: its own logger, so that Sentry's logging integration can
# ignore it (crontabber.alerts captures the attempt itself, with its exception and tags).
failure_logger = logging.getLogger("crontabber.failures")


class SkipRun(Exception):
    """Raised by a job's command to say there was nothing to do: the slot is recorded
    as skipped, counts as handled, and is not an error."""
