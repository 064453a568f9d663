"""The state crontabber keeps: a Job row per registered job (jobs.py; queries.py: the
claim protocol), a Log row per attempt (logs.py), a ScheduleChange row per change of a job's
schedule (changes.py) and one Control row (control.py). State changes are methods of
the models."""

from .changes import ScheduleChange
from .control import Control
from .jobs import Job, retry_delay
from .logs import Log, LogQuerySet
from .queries import TICK_FIELDS, JobQuerySet

__all__ = ["TICK_FIELDS", "Control", "Job", "JobQuerySet", "Log", "LogQuerySet", "ScheduleChange", "retry_delay"]
