"""Names and times at their limits: a name with a control character, names the database
takes for one, and times the parser reads but no schedule can hold get one line from
every command and a form error in the admin; never a traceback or a 500."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from crontabber.registry import check_registry, validate
from tests.helpers import at, child_env, job, manage, tick

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\x07", "zero\u200bwidth", "para\u2029graph"])
def test_a_control_character_in_a_name_is_a_check_error(jobs, name):
    jobs([{"name": name, "cmd": "noop", "frequency": "1h"}])
    (error,) = check_registry()
    assert error.id == "crontabber.E004" and "must not contain" in error.msg and "\n" not in error.msg
    with pytest.raises(CommandError, match="must not contain"):
        call_command("cronrun")


def test_names_the_database_takes_for_one_are_a_check_error_there(jobs):
    jobs([{"name": "report", "cmd": "noop", "frequency": "1h"}, {"name": "Report", "cmd": "noop", "frequency": "1h"}])
    problems = validate()[1]
    if connection.vendor == "mysql":  # its collations ignore case
        (problem,) = problems
        assert problem.job == "Report" and "the same name as 'report'" in problem.message
    else:  # PostgreSQL and SQLite tell the two apart: two jobs
        assert problems == []
        tick(at("2026-05-01 10:00"))
        assert {job("report").name, job("Report").name} == {"report", "Report"}


RANGE = "out of the range of times crontabber works with (1900 to 9000)"


@pytest.fixture
def hourly(jobs):
    registry = [{"name": "hourly", "cmd": "noop", "cron": "0 * * * *", "backfill": True}]
    jobs(registry)
    tick(at("2026-05-01 10:00"))
    return registry


@pytest.mark.parametrize("when", ["0001-01-01T00:00Z", "0001-01-01T00:30+05:00", "9999-12-31T23:59Z"])
def test_a_time_no_schedule_can_hold_is_one_line_from_every_command(hourly, when):
    env = child_env(__import__("json").dumps(hourly))
    for args in (
        ["cronrerun", "hourly", "--from", when, "--to", "2026-05-01T10:00Z"],
        ["cronmarksuccess", "hourly", "--time", when],
    ):
        result = manage(*args, env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert RANGE in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("action, field", [("rerun", "start"), ("mark_success", "mark_time")])
def test_the_admins_forms_say_so_too(hourly, action, field):
    client = Client()
    client.force_login(User.objects.create_superuser("op", password="pw"))
    data = {"action": action, "_selected_action": [job("hourly").pk], "apply": "yes", field: "0001-01-01T00:00Z"}
    data.setdefault("end", "2026-05-01T10:00Z")
    response = client.post(reverse("admin:crontabber_job_changelist"), data)
    assert response.status_code == 200 and RANGE in response.content.decode()
