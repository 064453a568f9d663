"""Issue 12's edges of the commands: bounds checked before anything runs, repairs that do
what the docs promise, jobs that left the registry, Log rows that tell the truth."""

import math
import subprocess

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from crontabber.admin.forms import clean_override
from crontabber.models import Control, Job, Log
from crontabber.registry import check_registry
from tests.helpers import ROOT, at, child_env, job, manage, outcomes, tick
from tests.jobs import control

pytestmark = pytest.mark.django_db

HOURLY = {"name": "hourly", "cmd": "record", "frequency": "1h", "backfill": True}


def run(*args, when=at("2026-05-01 12:00")):
    with freeze_time(when):
        call_command(*args)


@pytest.mark.parametrize(
    "entry, key, message",
    [
        ({"frequency": "999999999d"}, "frequency", "longer than the longest frequency"),
        ({"frequency": "99999999999d"}, "frequency", "longer than the longest frequency"),
        ({"frequency": "٣m"}, "frequency", "not a frequency"),
        ({"timeout": math.nan}, "timeout", "positive number"),
        ({"timeout": math.inf}, "timeout", "positive number"),
        ({"timeout": 1e300}, "timeout", "at most 604800"),
        ({"max_backfill": 10**30}, "max_backfill", "at most 10000000"),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
    ],
)
def test_values_that_would_overflow_are_check_errors(jobs, entry, key, message):
    jobs([{"cmd": "record", **entry}])
    errors = [error.msg for error in check_registry()]
    assert any(f"key {key!r}" in error and message in error for error in errors), errors


@pytest.mark.parametrize("text", ["999999999999m", "٣m", "3661d", "25:00"])
def test_the_admin_override_refuses_what_would_overflow_with_a_form_error(text):
    from django import forms

    with pytest.raises(forms.ValidationError):
        clean_override(text, "UTC")


def test_marking_a_new_hourly_backfill_job_three_hours_back_runs_every_slot_since(jobs):
    jobs([HOURLY])
    run("cronmarksuccess", "hourly", "--time", "2026-05-01T09:00:00+00:00")
    tick(at("2026-05-01 12:00"))
    assert [slot for slot, outcome in outcomes("hourly") if outcome == "success"][1:] == [
        at("2026-05-01 10:00"),
        at("2026-05-01 11:00"),
        at("2026-05-01 12:00"),
    ]


@pytest.mark.parametrize(
    "time, message",
    [
        ("", "not an ISO 8601 time"),
        ("0001-01-01T00:00:00+05:00", "out of the range"),
        ("2027-01-01T00:00:00+00:00", "in the future"),
    ],
)
def test_cronmarksuccess_refuses_bad_times(jobs, time, message):
    jobs([HOURLY])
    with pytest.raises(CommandError, match=message):
        run("cronmarksuccess", "hourly", "--time", time)
    assert not Job.objects.exists()


def test_a_mark_that_leaves_a_huge_backlog_needs_yes(jobs, capsys):
    jobs([{**HOURLY, "frequency": "5m"}])
    with pytest.raises(CommandError, match="more than 10,000 slots to backfill; add --yes"):
        run("cronmarksuccess", "hourly", "--time", "2025-01-01T00:00:00+00:00")
    assert not Job.objects.exists()
    run("cronmarksuccess", "hourly", "--time", "2025-01-01T00:00:00+00:00", "--yes")
    assert job("hourly").last_success == at("2025-01-01 00:00")


@pytest.mark.parametrize("arg", ["--job-arg=run-time=2026", "--job-arg=--last_success=x", "--job-arg=last-success=1"])
def test_job_args_that_clash_with_crontabbers_own_options_are_refused(jobs, arg):
    jobs([HOURLY])
    with pytest.raises(CommandError, match="crontabber passes"):
        run("cronrun", "--job", "hourly", "--force", arg)
    assert not Log.objects.exists()


def test_cronrun_job_says_why_it_ran_nothing(jobs, capsys):
    jobs([HOURLY, {"name": "off", "cmd": "record", "enabled": False}])
    tick(at("2026-05-01 12:00"))
    capsys.readouterr()
    run("cronrun", "--job", "hourly", "--job", "off", when=at("2026-05-01 12:30"))
    out = capsys.readouterr().out
    assert "hourly: nothing ran: it is not due: its next run is 2026-05-01T13:00:00+00:00" in out
    assert "off: nothing ran: it is disabled" in out
    Control.objects.filter(pk=1).update(hold_all=True, held_by="alice")
    run("cronrun", "--job", "hourly", when=at("2026-05-01 13:30"))
    assert "hourly: nothing ran: all jobs are held by alice" in capsys.readouterr().out


def test_cronrun_force_runs_a_job_whose_dependency_has_not_succeeded_and_says_so(jobs, capsys):
    jobs([{"name": "load", "cmd": "boom", "frequency": "1h"}, {**HOURLY, "depends_on": ["load"]}])
    tick(at("2026-05-01 12:00"))
    assert outcomes("hourly") == []
    run("cronrun", "--job", "hourly", "--force", when=at("2026-05-01 12:10"))
    assert "forced, although waiting for load to succeed" in capsys.readouterr().out
    assert outcomes("hourly") == [(at("2026-05-01 12:00"), "success")]


def test_an_unused_job_arg_is_reported(jobs, capsys):
    jobs([HOURLY])
    tick(at("2026-05-01 12:00"))
    run("cronrun", "--job", "hourly", "--job-arg", "colour=red", when=at("2026-05-01 12:30"))
    assert "--job-arg colour: not used, since nothing ran" in capsys.readouterr().out


def test_a_job_that_left_the_registry_is_listed_and_repairs_say_so(jobs, capsys):
    jobs([HOURLY, {"name": "old", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 12:00"))
    jobs([HOURLY])
    run("cronlist")
    old = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("old"))
    assert "not in registry" in old and "never (not in the registry)" in old
    run("cronreset", "old")
    assert "old: reset; it is not in the registry, so it does not run" in capsys.readouterr().out
    with pytest.raises(CommandError, match="old: not in the registry"):
        run("cronmarksuccess", "old")


def test_log_attempt_is_the_try_number_of_its_slot(jobs):
    control.FAILING.add("2026-05-01T12:00:00+00:00")
    jobs([HOURLY])
    tick(at("2026-05-01 12:00"))
    control.FAILING.clear()
    tick(at("2026-05-01 13:30"))
    rows = list(Log.objects.order_by("started_at", "id").values_list("slot", "outcome", "attempt"))
    assert rows == [
        (at("2026-05-01 12:00"), "failure", 1),
        (at("2026-05-01 12:00"), "success", 2),
        (at("2026-05-01 13:00"), "success", 1),
    ]


def test_a_database_that_is_not_migrated_gets_a_hint(tmp_path):
    result = manage("cronrun", env=child_env(DATABASE_URL=f"sqlite:///{tmp_path}/empty.sqlite3"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "run 'manage.py migrate' first" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("interval", ["0", "00"])
def test_the_shell_loop_refuses_an_interval_of_zero(interval):
    result = subprocess.run(
        [str(ROOT / "bin" / "run_crontabber.sh")],
        env={"CRONTABBER_INTERVAL": interval, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "1 or more" in result.stderr


def test_health_is_critical_when_the_last_tick_failed_and_warns_of_clock_skew(jobs):
    from crontabber.web import health

    jobs([HOURLY])
    tick(at("2026-05-01 12:00"))
    Control.objects.filter(pk=1).update(last_tick_error="OperationalError: server closed the connection")
    verdict = health.report(now=at("2026-05-01 12:01"))
    assert verdict.code == health.CRITICAL and "the last tick failed: OperationalError" in verdict.problems[0]
    Control.objects.filter(pk=1).update(last_tick_error="", last_tick=at("2026-05-01 12:30"))
    verdict = health.report(now=at("2026-05-01 12:01"))
    assert verdict.code == health.WARNING and "clock skew" in verdict.problems[0]
    Job.objects.update(claimed_by="h:1:x", claimed_at=at("2026-05-01 13:00"), claim_expires=at("2026-05-01 13:05"))
    Control.objects.filter(pk=1).update(last_tick=at("2026-05-01 12:00"))
    assert "clock skew: hourly was claimed at" in health.report(now=at("2026-05-01 12:01")).problems[-1]
