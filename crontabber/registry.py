"""The job registry: settings.CRONTABBER_JOBS -> validated JobSpecs, and its system check.

Settings are read afresh on every call, so override_settings works in tests and a
deploy that changes the registry takes effect on the next tick.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core import checks
from django.core.management import get_commands, load_command_class

from .schedule import (
    Schedule,
    ScheduleError,
    build_override,
    build_schedule,
    parse_frequency,
    parse_time,
    parse_zone,
)

KNOWN_KEYS = {
    "name",
    "cmd",
    "cmd_args",
    "frequency",
    "time",
    "cron",
    "timezone",
    "enabled",
    "backfill",
    "last_success",
    "max_backfill",
    "timeout",
    "depends_on",
    "process",
    "notify_on_success",
}


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
    process: bool = False
    notify_on_success: bool = False
    depends_on: tuple[str, ...] = field(default=())
    zone: str = "UTC"

    def with_overrides(self, enabled: bool | None, schedule: str) -> JobSpec:
        """This job as an operator changed it (admin): enabled or not, another schedule.
        A schedule override that no longer parses is ignored (and logged by the caller)."""
        changes = {}
        if enabled is not None and enabled != self.enabled:
            changes["enabled"] = enabled
        if schedule:
            changes["schedule"] = build_override(schedule, self.zone)
        return replace(self, **changes) if changes else self


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


# Command name -> option strings its parser accepts; commands do not change in a process.
_command_options: dict[str, frozenset[str]] = {}


def _options_of(cmd: str, app: str) -> frozenset[str]:
    if cmd not in _command_options:
        parser = load_command_class(app, cmd).create_parser("manage.py", cmd)
        _command_options[cmd] = frozenset(parser._option_string_actions)
    return _command_options[cmd]


@functools.lru_cache(maxsize=4096)
def _schedule(frequency, at, cron, zone) -> Schedule:
    """Schedules are immutable: parse each distinct one once per process, not per tick."""
    return build_schedule(frequency, at, cron, zone)


NAME_MAX_LENGTH = 200  # Job.name's max_length


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def _validate_entry(index: int, entry, commands: dict) -> tuple[JobSpec | None, list[RegistryProblem]]:
    if not isinstance(entry, dict):
        return None, [RegistryProblem("", "", f"entry {index} is not a dict", "crontabber.E001")]
    name = entry.get("name", entry.get("cmd"))
    label = name if isinstance(name, str) and name else f"#{index}"
    problems: list[RegistryProblem] = []

    def problem(key: str, message: str, code: str) -> None:
        problems.append(RegistryProblem(label, key, message, code))

    for key in sorted(set(entry) - KNOWN_KEYS):
        problem(key, f"unknown key (known keys: {', '.join(sorted(KNOWN_KEYS))})", "crontabber.E002")
    cmd = entry.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        problem("cmd", "required: the name of a management command", "crontabber.E003")
    elif cmd not in commands:
        problem("cmd", f"unknown management command {cmd!r}", "crontabber.E003")
    if "name" in entry and (not isinstance(entry["name"], str) or not entry["name"].strip()):
        problem("name", "must be a non-empty string", "crontabber.E004")
    # The Job row's name column: PostgreSQL would refuse a longer name at every tick, and
    # MariaDB/MySQL (INSERT IGNORE) would cut it, so that the job silently never ran.
    if isinstance(name, str) and len(name) > NAME_MAX_LENGTH:
        problem("name", f"at most {NAME_MAX_LENGTH} characters (the database column)", "crontabber.E004")
    cmd_args = entry.get("cmd_args", [])
    if not isinstance(cmd_args, (list, tuple)) or not all(isinstance(a, str) for a in cmd_args):
        problem("cmd_args", "must be a list of strings", "crontabber.E004")
    for key in ("enabled", "backfill", "last_success", "process", "notify_on_success"):
        if key in entry and not _is_bool(entry[key]):
            problem(key, f"must be True or False, not {entry[key]!r}", "crontabber.E004")
    for key in ("max_backfill", "timeout"):
        value = entry.get(key)
        if value is not None and (_is_bool(value) or not isinstance(value, (int, float)) or value <= 0):
            problem(key, f"must be a positive number, not {value!r}", "crontabber.E004")
    if isinstance(entry.get("max_backfill"), float):
        problem("max_backfill", "must be a whole number", "crontabber.E004")
    depends_on = entry.get("depends_on", [])
    if not isinstance(depends_on, (list, tuple)) or not all(isinstance(d, str) for d in depends_on):
        problem("depends_on", "must be a list of job names", "crontabber.E004")
        depends_on = []

    # Each schedule key on its own first, so the error names the key at fault.
    zone = entry.get("timezone", settings.TIME_ZONE or "UTC")
    for key, parse in (("frequency", parse_frequency), ("time", parse_time), ("timezone", parse_zone)):
        if key in entry:
            try:
                parse(entry[key])
            except ScheduleError as error:
                problem(key, str(error), "crontabber.E005")
    if "cron" in entry and ("frequency" in entry or "time" in entry):
        problem("cron", "give either 'cron' or 'frequency'/'time', not both", "crontabber.E005")
    for key in ("frequency", "time", "cron", "timezone"):
        if key in entry and not isinstance(entry[key], str):
            problem(key, f"must be a string, not {entry[key]!r}", "crontabber.E005")
    schedule = None
    if not any(p.key in ("frequency", "time", "timezone", "cron") for p in problems):
        try:
            schedule = _schedule(entry.get("frequency"), entry.get("time"), entry.get("cron"), zone)
        except ScheduleError as error:
            problem("cron" if "cron" in entry else "time", str(error), "crontabber.E005")

    if isinstance(cmd, str) and cmd in commands:
        options = _options_of(cmd, commands[cmd])
        for key, option in (("backfill", "--run-time"), ("last_success", "--last-success")):
            if entry.get(key) is True and option not in options:
                problem(key, f"command {cmd!r} does not accept {option}", "crontabber.E006")

    if problems:
        return None, problems
    spec = JobSpec(
        name=name,
        cmd=cmd,
        schedule=schedule,
        cmd_args=tuple(cmd_args),
        enabled=entry.get("enabled", True),
        backfill=entry.get("backfill", False),
        last_success=entry.get("last_success", False),
        max_backfill=entry.get("max_backfill"),
        timeout=entry.get("timeout"),
        process=entry.get("process", False),
        notify_on_success=entry.get("notify_on_success", False),
        zone=zone,
        depends_on=tuple(depends_on),
    )
    return spec, []


def _dependency_problems(specs: list[JobSpec]) -> list[RegistryProblem]:
    names = {spec.name for spec in specs}
    problems = [
        RegistryProblem(spec.name, "depends_on", f"unknown job {dep!r}", "crontabber.E008")
        for spec in specs
        for dep in spec.depends_on
        if dep not in names
    ]
    graph = {spec.name: [d for d in spec.depends_on if d in names] for spec in specs}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in graph[name]:
            if state.get(dep) == 1:
                cycle = " -> ".join(path[path.index(dep) :] + [dep])
                problems.append(RegistryProblem(name, "depends_on", f"cycle: {cycle}", "crontabber.E008"))
            elif dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for spec in specs:
        if spec.name not in state:
            visit(spec.name, [spec.name])
    return problems


def validate(raw=None) -> tuple[list[JobSpec], list[RegistryProblem]]:
    """Every job spec, and every problem found in the registry."""
    raw = getattr(settings, "CRONTABBER_JOBS", []) if raw is None else raw
    if not isinstance(raw, (list, tuple)):
        return [], [RegistryProblem("", "", "must be a list of dicts", "crontabber.E001")]
    commands = get_commands()
    specs, problems, seen = [], [], set()
    for index, entry in enumerate(raw):
        spec, found = _validate_entry(index, entry, commands)
        problems += found
        if spec is None:
            continue
        if spec.name in seen:
            problems.append(
                RegistryProblem(spec.name, "name", "duplicate job name; give one of them a 'name'", "crontabber.E007")
            )
            continue
        seen.add(spec.name)
        specs.append(spec)
    problems += _dependency_problems(specs)
    return specs, problems


def load_jobs() -> list[JobSpec]:
    """The registry's jobs in registry order; RegistryError on any mistake."""
    specs, problems = validate()
    if problems:
        raise RegistryError(problems)
    return specs


@checks.register("crontabber")
def check_registry(app_configs=None, **kwargs):
    return [
        checks.Error(str(p), obj=f"CRONTABBER_JOBS[{p.job!r}]" if p.job else "CRONTABBER_JOBS", id=p.id)
        for p in validate()[1]
    ]
