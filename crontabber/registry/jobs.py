"""The job registry: settings.CRONTABBER_JOBS -> validated JobSpecs, and its system check.

Each key's type, default and check come from the table in keys.py. The registry is read
afresh on every call, so override_settings works in tests and a deploy that changes it
takes effect on the next tick.
"""

from __future__ import annotations

import functools
import graphlib
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import NamedTuple

from django.core import checks
from django.core.management import get_commands, load_command_class
from django.db import connection

from .. import conf, logger
from ..schedules import Schedule, ScheduleError, build_override, build_schedule
from ..schedules.clocks import clock_warnings
from ..words import did_you_mean
from . import tasks
from .keys import KEYS, SCHEDULE_ERROR, SCHEDULE_KEYS, key_problems


@dataclass(frozen=True)
class JobSpec:
    name: str
    cmd: str
    schedule: Schedule
    cmd_args: tuple[str, ...] = ()
    enabled: bool = True
    backfill: bool = False
    last_success: bool = False
    max_backfill: int | None = None
    timeout: float | None = None
    task: str = ""  # a Django Task's dotted path, run instead of a command
    backend: str = ""  # the task backend that runs the attempts; "": the runner
    process: bool = False
    notify_on_success: bool = False
    depends_on: tuple[str, ...] = field(default=())
    zone: str = "UTC"
    formerly: str = ""  # the job's previous name: its row is renamed, its state kept

    @property
    def command_line(self) -> str:
        """What the job runs, as people read it."""
        return f"task {self.task}" if self.task else " ".join([self.cmd, *self.cmd_args])


def effective_spec(spec: JobSpec, overrides) -> JobSpec:
    """The job as operators changed it in the admin: enabled or not, another schedule.
    ``overrides``: its Job (or tick row), or None. A schedule override that no longer
    parses is ignored, and logged."""
    if overrides is None:
        return spec
    enabled_override, schedule_override = overrides.enabled_override, overrides.schedule_override
    changes = {}
    if enabled_override is not None and enabled_override != spec.enabled:
        changes["enabled"] = enabled_override
    if schedule_override:
        try:
            changes["schedule"] = _override(schedule_override, spec.zone)
        except ScheduleError as error:
            logger.error("%s: ignoring the schedule override %r: %s", spec.name, schedule_override, error)
    return replace(spec, **changes) if changes else spec


# --- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryProblem:
    job: str  # the job's name, or "" for the registry as a whole
    key: str
    message: str
    id: str

    def __str__(self) -> str:
        where = f"job {self.job!r}" if self.job else "CRONTABBER_JOBS"
        return f"{where}: key {self.key!r}: {self.message}" if self.key else f"{where}: {self.message}"


class RegistryError(Exception):
    """The registry has mistakes; str() is one line naming the first."""

    def __init__(self, problems: list[RegistryProblem]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more; run 'manage.py check')" if len(problems) > 1 else ""
        super().__init__(f"crontabber registry: {problems[0]}{more}")


@functools.cache
def _options_of(cmd: str, app: str) -> frozenset[str]:
    """The option strings a command accepts; commands do not change in a process."""
    return frozenset(load_command_class(app, cmd).create_parser("manage.py", cmd)._option_string_actions)


_override = functools.lru_cache(maxsize=1024)(build_override)  # parsed once per process, as below


@functools.lru_cache(maxsize=4096)
def _schedule(frequency, at, cron, zone) -> Schedule:
    """Schedules are immutable: parse each distinct one once per process, not per tick."""
    return build_schedule(frequency, at, cron, zone)


def _schedule_of(entry: dict, zone: str) -> tuple[Schedule | None, list[tuple[str, str, str]]]:
    """The entry's schedule, once each schedule key is fine on its own."""
    if "cron" in entry and ("frequency" in entry or "time" in entry):
        return None, [("cron", "give either 'cron' or 'frequency'/'time', not both", SCHEDULE_ERROR)]
    try:
        return _schedule(entry.get("frequency"), entry.get("time"), entry.get("cron"), entry.get("timezone", zone)), []
    except ScheduleError as error:
        return None, [("cron" if "cron" in entry else "time", str(error), SCHEDULE_ERROR)]


def _command_problems(entry: dict, commands: dict) -> list[tuple[str, str, str]]:
    cmd = entry["cmd"]
    if cmd not in commands:
        return [("cmd", f"unknown management command {cmd!r}{did_you_mean(cmd, commands)}", "crontabber.E003")]
    options = _options_of(cmd, commands[cmd])
    return [
        (key, f"command {cmd!r} does not accept {option}", "crontabber.E006")
        for key, option in (("backfill", "--run-time"), ("last_success", "--last-success"))
        if entry.get(key) is True and option not in options
    ]


class _Context(NamedTuple):
    """What every entry is checked against, read once per validation."""

    commands: dict  # management command name -> its app
    zone: str  # TIME_ZONE: the zone of jobs that name none
    backend: str  # CRONTABBER_TASK_BACKEND: the backend of jobs that name none


def _entry_problems(entry: dict, context: _Context) -> list[tuple[str, str, str]]:
    """(key, message, id) of each mistake: each key on its own, then the schedule they
    make, the command and its options, the task and its backend."""
    found = key_problems(entry)
    bad = {key for key, _, _ in found}
    if not bad & set(SCHEDULE_KEYS):
        found += _schedule_of(entry, context.zone)[1]
    if "cmd" in entry and "cmd" not in bad:
        found += _command_problems(entry, context.commands)
    if not bad & {"task", "backend"} and ("task" in entry or entry.get("backend", context.backend)):
        found += tasks.problems(entry, entry.get("backend", context.backend))
    return found


def _spec(entry: dict, context: _Context) -> JobSpec:
    """The JobSpec of an entry without mistakes: each key's value, or its default."""
    values = {key.name: entry.get(key.name, key.default) for key in KEYS.values() if key.name not in SCHEDULE_KEYS}
    values.update(
        name=entry.get("name", entry.get("cmd", entry.get("task"))),
        cmd=values["cmd"] or "",
        task=values["task"] or "",
        cmd_args=tuple(values["cmd_args"]),
        depends_on=tuple(values["depends_on"]),
        backend=entry.get("backend", context.backend),
        formerly=values["formerly"] or "",
    )
    schedule = _schedule_of(entry, context.zone)[0]
    return JobSpec(**values, schedule=schedule, zone=entry.get("timezone", context.zone))


def _validate_entry(index: int, entry, context: _Context) -> tuple[JobSpec | None, list[RegistryProblem]]:
    if not isinstance(entry, dict):
        return None, [RegistryProblem("", "", f"entry {index} is not a dict", "crontabber.E001")]
    found = _entry_problems(entry, context)
    if found:
        name = entry.get("name", entry.get("cmd", entry.get("task")))
        label = name if isinstance(name, str) and name else f"#{index}"
        return None, [RegistryProblem(label, key, message, code) for key, message, code in found]
    return _spec(entry, context), []


def _as_stored(name: str) -> str:
    """The name as the database compares it: MySQL's and MariaDB's usual collations ignore
    case, accents and trailing spaces; the others compare names as they are."""
    if connection.vendor != "mysql":
        return name
    bare = unicodedata.normalize("NFKD", name.casefold())
    return "".join(char for char in bare if not unicodedata.combining(char)).rstrip(" ")


def _duplicate(name: str, same: str) -> RegistryProblem:
    if name == same:
        return RegistryProblem(name, "name", "duplicate job name; give one of them a 'name'", "crontabber.E007")
    why = f"the database takes it for the same name as {same!r} (its collation ignores case and accents)"
    return RegistryProblem(name, "name", f"{why}; rename one", "crontabber.E007")


def _former_names(specs: list[JobSpec]) -> list[RegistryProblem]:
    """A job renamed from a name that is still registered: which one keeps the state?"""
    names = {spec.name for spec in specs}
    return [
        RegistryProblem(spec.name, "formerly", f"{spec.formerly!r} is still a registered job", "crontabber.E004")
        for spec in specs
        if spec.formerly in names
    ]


def _dependency_problems(specs: list[JobSpec]) -> list[RegistryProblem]:
    names = {spec.name for spec in specs}
    problems = [
        RegistryProblem(spec.name, "depends_on", f"unknown job {dep!r}", "crontabber.E008")
        for spec in specs
        for dep in spec.depends_on
        if dep not in names
    ]
    graph = graphlib.TopologicalSorter({spec.name: [d for d in spec.depends_on if d in names] for spec in specs})
    try:
        graph.prepare()
    except graphlib.CycleError as error:
        cycle = list(reversed(error.args[1]))  # graphlib lists it against the arrows
        problems.append(RegistryProblem(cycle[0], "depends_on", f"cycle: {' -> '.join(cycle)}", "crontabber.E008"))
    return problems


def validate(raw=None) -> tuple[list[JobSpec], list[RegistryProblem]]:
    """Every job spec, and every problem found in the registry."""
    raw = conf.get("CRONTABBER_JOBS") if raw is None else raw
    if not isinstance(raw, (list, tuple)):
        return [], [RegistryProblem("", "", "must be a list of dicts", "crontabber.E001")]
    context = _Context(get_commands(), conf.default_zone(), conf.get("CRONTABBER_TASK_BACKEND") or "")
    specs, problems, seen = [], [], {}
    for index, entry in enumerate(raw):
        spec, found = _validate_entry(index, entry, context)
        problems += found
        if spec is None:
            continue
        same = seen.get(_as_stored(spec.name))
        if same is not None:
            problems.append(_duplicate(spec.name, same))
            continue
        seen[_as_stored(spec.name)] = spec.name
        specs.append(spec)
    problems += _former_names(specs) + _dependency_problems(specs)
    return specs, problems


def load_jobs(names=None) -> list[JobSpec]:
    """The registry's jobs (only the ``names`` given, if any) in registry order;
    RegistryError on any mistake."""
    specs, problems = validate()
    if problems:
        raise RegistryError(problems)
    return [spec for spec in specs if spec.name in names] if names else specs


def jobs_or_none() -> dict[str, JobSpec] | None:
    """The registry's jobs by name, or None when it has a mistake (pages show what they can)."""
    try:
        return {spec.name: spec for spec in load_jobs()}
    except RegistryError:
        return None


CLOCK_CHANGE_WARNING = "crontabber.W001"


@checks.register("crontabber")
def check_registry(app_configs=None, **kwargs):
    """Every mistake in the registry as an error; without any, a warning for each clock
    change (within a year) that moves or merges a fixed-time job's slot."""
    specs, problems = validate()
    if problems:
        return [
            checks.Error(str(p), obj=f"CRONTABBER_JOBS[{p.job!r}]" if p.job else "CRONTABBER_JOBS", id=p.id)
            for p in problems
        ]
    return clock_change_warnings(specs, datetime.now(UTC))


def clock_change_warnings(specs: list[JobSpec], now: datetime) -> list[checks.Warning]:
    """Not errors: the job runs, once; the warning says what will happen and when."""
    return [
        checks.Warning(f"{spec.name}: {note}", obj=f"CRONTABBER_JOBS[{spec.name!r}]", id=CLOCK_CHANGE_WARNING)
        for spec in specs
        if spec.enabled
        for note in clock_warnings(spec.schedule, now)
    ]
