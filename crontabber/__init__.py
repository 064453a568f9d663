"""crontabber: runs a Django site's periodic management commands reliably."""

__version__ = "0.1.0"


class SkipRun(Exception):
    """Raised by a job's command to say there was nothing to do: the slot is recorded
    as skipped, counts as handled, and is not an error."""
