"""Operators' pages: the jobs (status, latest slots, schedule, controls: jobs.py, with
their actions and forms), their attempts and the control row (logs.py, read-only), and
every time and slot shown one way (display.py, strip.py)."""

from . import jobs, logs  # noqa: F401  each registers its ModelAdmins
