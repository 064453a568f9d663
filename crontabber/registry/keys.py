"""The registry's keys, as one table: each key's type, default, check and meaning.
Validation (registry.py), JobSpec's construction and the key table of
docs/configuration.md all come from it."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from ..schedules import ScheduleError, parse_frequency, parse_time, parse_zone
from ..words import did_you_mean


def _string(value) -> str:
    return "" if isinstance(value, str) else f"must be a string, not {value!r}"


CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # Unicode categories that are not text on a line
NAME_MAX = 200  # Job.name's column: a longer name could not be stored
TIMEOUT_MAX = 7 * 86400  # seconds: a week; longer would overflow the timers of some platforms
MAX_BACKFILL_MAX = 10_000_000  # slots: more than a year of every-minute slots, bounded


def _job_name(value) -> str:
    if not (isinstance(value, str) and value.strip()):
        return "must be a non-empty string"
    if len(value) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters, not {len(value)}"
    control = next((char for char in value if unicodedata.category(char) in CONTROL), None)
    if control is not None:  # it would split the lines of cronlist, Nagios and the logs
        return f"must not contain {unicodedata.name(control, 'a control character')} (U+{ord(control):04X})"
    return ""


def _command_name(value) -> str:
    if not (isinstance(value, str) and value):
        return "required: the name of a management command"
    return _job_name(value)  # it names the job when 'name' is not given


def _strings(what: str) -> Callable:
    def check(value) -> str:
        ok = isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)
        return "" if ok else f"must be a list of {what}"

    return check


def _flag(value) -> str:
    return "" if isinstance(value, bool) else f"must be True or False, not {value!r}"


def _positive(whole: bool, most: int) -> Callable:
    def check(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            return f"must be a positive number, not {value!r}"
        if whole and isinstance(value, float):
            return "must be a whole number"
        return f"must be at most {most}, not {value!r}" if value > most else ""

    return check


def _parsed_by(parse: Callable) -> Callable:
    def check(value) -> str:
        if not isinstance(value, str):
            return _string(value)
        try:
            parse(value)
        except ScheduleError as error:
            return str(error)
        return ""

    return check


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # as the docs show it
    meaning: str
    default: object = None
    shown_default: str = ""  # the default as the docs state it
    check: Callable[[object], str] = _string  # the problem with a value, '' when none
    code: str = "crontabber.E004"  # the system check id of a bad value


def flag(name: str, meaning: str, default: bool = False) -> Key:
    return Key(name, "bool", meaning, default, f"`{default}`", _flag)


SCHEDULE_ERROR = "crontabber.E005"
KEYS = {
    key.name: key
    for key in (
        Key(
            "cmd",
            "str",
            "the management command to run",
            shown_default="required, unless `task`",
            check=_command_name,
            code="crontabber.E003",
        ),
        Key(
            "task",
            "str",
            "instead of `cmd`: the dotted path of a Django Task (`@task`); `backfill` and `last_success` pass it "
            "`run_time` and `last_success` keyword arguments, ISO 8601 strings with offset "
            "([Scheduling Django Tasks](tasks.md))",
            shown_default="none",
            check=_job_name,
            code="crontabber.E009",
        ),
        Key(
            "backend",
            "str",
            "the alias of a `TASKS` backend whose workers run the job's attempts (a command through the task "
            'crontabber ships); `""`: in the runner',
            shown_default="`CRONTABBER_TASK_BACKEND`",
            code="crontabber.E009",
        ),
        Key(
            "name",
            "str",
            "the job's key in the database (at most 200 characters, no control characters; unique as the "
            "database compares names: on MySQL and MariaDB whatever the case); lets one command be scheduled twice "
            "with different `cmd_args`",
            shown_default="`cmd` or `task`",
            check=_job_name,
        ),
        Key(
            "formerly",
            "str",
            "the job's previous `name`: a job renamed keeps its state, its attempts and its schedule's history "
            "(the rename is recorded on the job's admin page); the old name must not be registered any more",
            shown_default="none",
            check=_job_name,
        ),
        Key("cmd_args", "list of str", "arguments put before crontabber's own", (), "`[]`", _strings("strings")),
        Key(
            "frequency",
            "str",
            '`"<n>m"` or `"<n>h"`: a grid of real elapsed time anchored at the job\'s first run (to the minute). '
            '`"<n>d"`: every n calendar days at one wall time (`time`, or the first run\'s), so a daily job runs '
            "once per calendar day through DST",
            shown_default='`"1d"`',
            check=_parsed_by(parse_frequency),
            code=SCHEDULE_ERROR,
        ),
        Key(
            "time",
            '`"HH:MM"`',
            'the wall time of a whole-day frequency; only with `"<n>d"`',
            check=_parsed_by(parse_time),
            code=SCHEDULE_ERROR,
        ),
        Key(
            "cron",
            "str",
            "five fields (minute hour day-of-month month day-of-week; names, lists, ranges, steps, `L`, `5#2`) or "
            "`@yearly`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. Not with `frequency`/`time`",
            code=SCHEDULE_ERROR,
        ),
        Key(
            "timezone",
            "str",
            "the IANA zone `time`, `cron` and whole-day frequencies are read in",
            shown_default="`TIME_ZONE`",
            check=_parsed_by(parse_zone),
            code=SCHEDULE_ERROR,
        ),
        flag(
            "enabled",
            "`False` keeps the job and its state but never runs it (`cronrun --job NAME --force` still can)",
            default=True,
        ),
        flag(
            "backfill",
            "run every due slot, oldest first, each with `--run-time=<slot>`; the command must accept `--run-time`",
        ),
        flag(
            "last_success",
            "pass `--last-success=<slot of the last success>` (left out before the first success); the command "
            "must accept it",
        ),
        Key(
            "max_backfill",
            "int > 0",
            "at most this many slots of this job in one tick; the rest run on the next",
            None,
            "no limit",
            _positive(whole=True, most=MAX_BACKFILL_MAX),
        ),
        flag(
            "process",
            "run the command as its own process (`python -m crontabber.engine.child`): a timeout or stop can then "
            "kill it "
            "even inside C code",
        ),
        Key(
            "timeout",
            "seconds > 0",
            "stop a run that takes longer; it is recorded as `timeout` and counts as an error",
            shown_default="none",
            check=_positive(whole=False, most=TIMEOUT_MAX),
        ),
        Key(
            "depends_on",
            "list of names",
            "hold each slot until every named job has succeeded for that slot or a later one",
            (),
            "`[]`",
            _strings("job names"),
        ),
        flag(
            "notify_on_success",
            "mail a success that printed something (failures and recoveries are mailed anyway; see "
            "[alerts](alerts.md))",
        ),
    )
}
SCHEDULE_KEYS = ("frequency", "time", "cron", "timezone")  # become JobSpec.schedule and .zone


def key_problems(entry: dict) -> list[tuple[str, str, str]]:
    """(key, message, id) for each unknown key and each value its key's check refuses."""
    found = [
        (key, f"unknown key{did_you_mean(key, KEYS)} (known keys: {', '.join(sorted(KEYS))})", "crontabber.E002")
        for key in sorted(set(entry) - set(KEYS), key=str)
    ]
    for key in KEYS.values():
        required = key.name == "cmd" and "task" not in entry
        message = key.check(entry.get(key.name)) if key.name in entry or required else ""
        if message:
            found.append((key.name, message, key.code))
    return found


def key_table() -> str:
    """The keys as the Markdown table of docs/configuration.md."""
    rows = ["| key | type | meaning | default |", "|---|---|---|---|"]
    rows += [f"| `{k.name}` | {k.type} | {k.meaning} | {k.shown_default} |" for k in KEYS.values()]
    return "\n".join(rows)
