"""The job registry: settings.CRONTABBER_JOBS read as validated JobSpecs (jobs.py), the
table of its keys (keys.py), and Django's Tasks as the registry sees them (tasks.py).
Every mistake is a Django system check error naming the job and the key."""

from .jobs import (
    JobSpec,
    RegistryError,
    RegistryProblem,
    check_registry,
    effective_spec,
    jobs_or_none,
    load_jobs,
    validate,
)

__all__ = [
    "JobSpec",
    "RegistryError",
    "RegistryProblem",
    "check_registry",
    "effective_spec",
    "jobs_or_none",
    "load_jobs",
    "validate",
]
