"""The state crontabber keeps: a Job row per registered job (jobs.py, with the claim
protocol), a Log row per attempt (logs.py), a ScheduleChange row per change of a job's
schedule (changes.py) and one Control row (control.py). State changes are methods of
the models."""

from .changes import ScheduleChange
from .control import Control
from .jobs import TICK_FIELDS, Job, JobQuerySet, retry_delay
from .logs import Log, LogQuerySet

__all__ = ["TICK_FIELDS", "Control", "Job", "JobQuerySet", "Log", "LogQuerySet", "ScheduleChange", "retry_delay"]
