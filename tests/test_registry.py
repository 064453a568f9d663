"""Every registry mistake is a system check error naming the job and the key, and
cronrun refuses to start with the same one-line message."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from crontabber.models import Job
from crontabber.registry import check_registry, load_jobs
from crontabber.registry.keys import NAME_MAX as NAME_MAX_LENGTH
from tests.helpers import at, child_env, manage, tick

MISTAKES = [
    ({"cmd": "no_such_command"}, "no_such_command", "cmd", "unknown management command"),
    ({"cmd": "record", "frequency": "5x"}, "record", "frequency", "not a frequency"),
    ({"cmd": "record", "frequency": "1d", "time": "3pm"}, "record", "time", "not a time"),
    ({"cmd": "record", "frequency": "5m", "time": "03:00"}, "record", "time", "whole days"),
    ({"cmd": "record", "cron": "0 3 * * *", "frequency": "1d"}, "record", "cron", "not both"),
    ({"cmd": "record", "cron": "0 25 * * *"}, "record", "cron", "not a valid cron"),
    ({"cmd": "record", "cron": "5-5/0 3 * * *"}, "record", "cron", "has a step of 0"),
    (
        {"cmd": "record", "cron": "0 22-2 * * *"},
        "record",
        "cron",
        "runs downward; ranges go up, so write a wrap-around as two ranges: '22-23,0-2'",
    ),
    ({"cmd": "record", "cron": "0\u00a03 * * *"}, "record", "cron", "contains NO-BREAK SPACE"),
    ({"cmd": "record", "timezone": "Europe/Atlantis"}, "record", "timezone", "not a known IANA"),
    ({"cmd": "record", "colour": "blue"}, "record", "colour", "unknown key"),
    ({"cmd": "record", "cmd_args": "--label x"}, "record", "cmd_args", "list of strings"),
    ({"cmd": "record", "backfill": "yes"}, "record", "backfill", "True or False"),
    ({"cmd": "record", "max_backfill": 0}, "record", "max_backfill", "positive number"),
    ({"cmd": "record", "queued_at_once": 1.5}, "record", "queued_at_once", "whole number"),
    ({"cmd": "record", "backfill": True, "queued_at_once": 8}, "record", "queued_at_once", "on a task backend"),
    ({"cmd": "boom", "backfill": True}, "boom", "backfill", "does not accept --run-time"),
    ({"cmd": "boom", "last_success": True}, "boom", "last_success", "does not accept --last-success"),
    ({"cmd": "record", "depends_on": ["ghost"]}, "record", "depends_on", "unknown job 'ghost'"),
    ({"frequency": "1h"}, "#0", "cmd", "required"),
    ({"cmd": "record", "cron": ["0", "3", "*", "*", "*"]}, "record", "cron", "must be a string"),
    ({"cmd": "record", "name": "n" * 201}, "n" * 201, "name", "at most 200 characters"),
]


@pytest.mark.parametrize("entry, job, key, message", MISTAKES)
def test_each_mistake_is_a_check_error_naming_job_and_key(jobs, entry, job, key, message):
    jobs([entry])
    errors = check_registry()
    assert len(errors) >= 1
    text = errors[0].msg
    assert f"job {job!r}" in text and f"key {key!r}" in text and message in text
    assert errors[0].id.startswith("crontabber.E")
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")
    with pytest.raises(CommandError, match=message) as refused:
        call_command("cronrun")
    assert "\n" not in str(refused.value)


def test_duplicate_names_and_dependency_cycles_are_errors(jobs):
    jobs(
        [
            {"cmd": "record"},
            {"cmd": "record", "frequency": "1h"},
            {"name": "a", "cmd": "noop", "depends_on": ["b"]},
            {"name": "b", "cmd": "noop", "depends_on": ["a"]},
        ]
    )
    messages = [error.msg for error in check_registry()]
    assert any("job 'record': key 'name': duplicate job name" in m for m in messages)
    assert any("key 'depends_on': cycle: a -> b -> a" in m for m in messages)


def test_the_registry_must_be_a_list(jobs):
    jobs({"cmd": "record"})
    assert "must be a list" in check_registry()[0].msg


def test_one_command_scheduled_twice_under_two_names(jobs):
    jobs(
        [
            {"name": "record-blue", "cmd": "record", "cmd_args": ["--colour", "blue"]},
            {"name": "record-red", "cmd": "record", "cmd_args": ["--colour", "red"], "frequency": "2h"},
        ]
    )
    assert check_registry() == []
    assert [spec.name for spec in load_jobs()] == ["record-blue", "record-red"]


def test_defaults(jobs, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    jobs([{"cmd": "record", "time": "02:00"}])
    (spec,) = load_jobs()
    assert (spec.name, spec.enabled, spec.backfill, spec.last_success, spec.cmd_args) == (
        "record",
        True,
        False,
        False,
        (),
    )
    assert spec.schedule.description == "every 1d at 02:00 Europe/Berlin"


@pytest.mark.django_db(transaction=True)
def test_cronrun_refuses_a_bad_registry_with_one_line_and_exit_status_1():
    registry = json.dumps([{"name": "nightly", "cmd": "record", "frequency": "every night"}])
    result = manage("cronrun", env=child_env(registry))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "CommandError: crontabber registry: job 'nightly': key 'frequency': "
        "'every night' is not a frequency like '5m', '2h' or '1d'"
    ]
    assert not Job.objects.exists()
    check = manage("check", env=child_env(registry))
    assert check.returncode == 1 and "job 'nightly': key 'frequency'" in check.stderr


@pytest.mark.django_db
def test_a_name_as_long_as_the_column_allows_runs_and_is_kept_whole(jobs):
    assert Job._meta.get_field("name").max_length == NAME_MAX_LENGTH
    name = "n" * NAME_MAX_LENGTH
    jobs([{"name": name, "cmd": "record", "frequency": "1h"}])
    assert check_registry() == []
    report = tick(at("2026-05-01 10:00"))
    assert report.attempts == {name: {"success": 1}}
    assert list(Job.objects.values_list("name", flat=True)) == [name]
