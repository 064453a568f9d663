"""docs/troubleshooting.md quotes the messages as crontabber prints them today: each is
made here the way a user meets it, and its lines are looked for on the page (instants,
durations and runner ids aside), so that the page cannot go on quoting a message the code
no longer prints."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from freezegun import freeze_time

from crontabber.models import Job
from tests.helpers import ROOT, at, child_env, database_independent_tests_run_here, manage, tick, varying_aside

if not database_independent_tests_run_here():
    pytest.skip("the messages are the same on every database; checked on SQLite", allow_module_level=True)

PAGE = ROOT / "docs" / "troubleshooting.md"
SHOWN = set(varying_aside(PAGE.read_text()))


def assert_on_the_page(printed: str):
    missing = [line for line in varying_aside(printed) if line.strip() and line not in SHOWN]
    assert not missing, f"docs/troubleshooting.md does not show these lines as printed:\n{printed}"


def printed_by(*args) -> str:
    """What `manage.py ARGS` prints, and the status it would exit with."""
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=out)
    except SystemExit:
        pass
    return out.getvalue()


@pytest.mark.parametrize(
    "entry",
    [
        {"cmd": "clear_sessions", "frequency": "1d"},
        {"cmd": "clearsessions", "frequncy": "1d"},
        {"cmd": "clearsessions", "frequency": "1 day"},
        {"cmd": "clearsessions", "frequency": "1d", "time": "03:30", "timezone": "Europe/Berln"},
        {"cmd": "clearsessions", "frequency": "1d", "backfill": True},
    ],
)
def test_a_registry_mistake(jobs, entry):
    jobs([entry])
    with pytest.raises(CommandError) as refused:
        call_command("cronrun")
    assert_on_the_page(f"CommandError: {refused.value}")
    with pytest.raises(SystemCheckError) as checked:
        call_command("check")
    assert_on_the_page(next(line for line in str(checked.value).splitlines() if "crontabber.E" in line))


def test_no_migrations(tmp_path):
    env = child_env(DATABASE_URL=f"sqlite:///{tmp_path}/empty.sqlite3")
    result = manage("cronrun", env=env)
    assert result.returncode == 1
    assert_on_the_page(result.stderr)


def test_no_secret_key():
    env = child_env(DJANGO_SETTINGS_MODULE="webapp.settings")
    env.pop("DEBUG", None), env.pop("SECRET_KEY", None)
    result = manage("cronrun", env=env)
    assert result.returncode == 1
    assert_on_the_page(result.stderr)


@pytest.mark.django_db
def test_an_overdue_job_when_no_runner_ticks(jobs):
    jobs([{"name": "signups", "cmd": "noop", "frequency": "1h", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    with freeze_time(at("2026-05-01 12:00")):
        assert_on_the_page(printed_by("cronlist", "--check"))


@pytest.mark.django_db
def test_a_claim_held_by_a_runner_that_died(jobs):
    jobs([{"name": "nightly", "cmd": "noop", "frequency": "1d"}])
    tick(at("2026-05-01 10:00"))
    claim = {"claimed_by": "web-1:18355:43d6d06c", "claimed_at": at("2026-05-02 10:00")}
    Job.objects.filter(name="nightly").update(**claim, claim_expires=claim["claimed_at"] + timedelta(minutes=5))
    with freeze_time(at("2026-05-02 10:01")):
        assert_on_the_page(printed_by("cronrun", "--job", "nightly"))
        with pytest.raises(CommandError) as refused:
            call_command("cronunlock", "nightly")
        assert_on_the_page(f"CommandError: {refused.value}")
        assert_on_the_page(printed_by("cronunlock", "--force", "nightly"))


@pytest.mark.django_db
def test_a_tick_with_nothing_due(jobs):
    jobs([{"name": "signups", "cmd": "noop", "cron": "0 * * * *", "backfill": True}])
    with freeze_time(at("2026-05-01 10:20")):
        assert_on_the_page(printed_by("cronrun"))
        assert_on_the_page(printed_by("cronrun", "--dry-run"))
