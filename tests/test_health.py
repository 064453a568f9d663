"""The health verdict: GET /crontabber/health/, and cronlist --check for Nagios (with
cronlist's last-skipped column)."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from freezegun import freeze_time

from crontabber.models import Control, Job
from tests.helpers import BEARER, HEALTH_TOKEN, at, child_env, manage, tick
from tests.jobs import control

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("health_token")]

REGISTRY = [
    {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True},
    {"name": "skip", "cmd": "skipper", "frequency": "1h"},
    {"name": "off", "cmd": "noop", "frequency": "1d", "enabled": False},
]


def get_health(client, when=at("2026-05-01 11:05"), headers=BEARER):
    """(status, JSON) of the endpoint; the full report (the bearer token) unless headers say otherwise."""
    with freeze_time(when):
        response = client.get("/crontabber/health/", headers=headers)
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


# --- the endpoint --------------------------------------------------------------------------


def test_the_url_is_included_by_the_webapp():
    assert reverse("crontabber:health") == "/crontabber/health/"


def test_healthy_jobs_answer_200_with_each_jobs_status(registry, client):
    status, body = get_health(client)
    assert status == 200
    assert body["status"] == "ok" and body["problems"] == [] and body["hold_all"] is False
    assert body["last_tick"] == "2026-05-01T11:00:00+00:00" and body["checked_at"] == "2026-05-01T11:05:00+00:00"
    assert {job["name"]: job["status"] for job in body["jobs"]} == {
        "hourly": "ok",
        "skip": "ok",
        "off": "disabled",
    }
    hourly = body["jobs"][0]
    assert hourly == {
        "name": "hourly",
        "status": "ok",
        "schedule": "cron 0 * * * * UTC",
        "next_run": "2026-05-01T12:00:00+00:00",
        "last_success": "2026-05-01T11:00:00+00:00",
        "error_count": 0,
        "last_error": None,
        "start_lag": 0.0,  # its 11:00 slot started at 11:00
    }


def test_a_running_job_is_running(registry, client):
    Job.objects.filter(name="hourly").update(
        claimed_by="host:1:ab", claimed_at=at("2026-05-01 11:04"), claim_expires=at("2026-05-01 11:09")
    )
    status, body = get_health(client)
    assert status == 200 and body["jobs"][0]["status"] == "running"


def test_a_failing_job_is_a_warning_then_critical_and_503(registry, client):
    control.FAILING.add("*")
    tick(at("2026-05-01 12:00"))
    status, body = get_health(client, at("2026-05-01 12:01"))
    assert status == 503 and body["status"] == "warning"
    assert body["jobs"][0]["status"] == "failing" and body["jobs"][0]["error_count"] == 1
    assert body["jobs"][0]["last_error"] == "CommandError: failing on purpose for 2026-05-01T12:00:00+00:00"
    assert body["problems"] == [
        "hourly failed 1 time(s) in a row: CommandError: failing on purpose for 2026-05-01T12:00:00+00:00"
    ]
    Job.objects.filter(name="hourly").update(error_count=3)
    status, body = get_health(client, at("2026-05-01 12:01"))
    assert status == 503 and body["status"] == "critical"


def test_an_overdue_job_and_a_stopped_runner_are_critical(registry, client):
    status, body = get_health(client, at("2026-05-01 12:30"))  # no tick for 90 minutes
    assert status == 503 and body["status"] == "critical"
    assert body["jobs"][0]["status"] == "overdue"
    assert body["problems"][0] == "no runner has ticked since 2026-05-01T11:00:00+00:00"
    assert "hourly is overdue (next run 2026-05-01T12:00:00+00:00)" in body["problems"]


def test_holding_all_jobs_is_a_warning(registry, client):
    Control.objects.filter(pk=1).update(hold_all=True, held_by="alice")
    status, body = get_health(client)
    assert status == 503 and body["status"] == "warning" and body["hold_all"] is True
    assert body["problems"] == ["all jobs are held by alice"]


def test_no_traceback_leaks_only_one_line_of_the_last_error(jobs, client):
    jobs([{"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 11:00"))
    Job.objects.filter(name="bad").update(
        last_error='ValueError: no good\nTraceback (most recent call last):\n  File "/srv/secret.py", line 1'
    )
    status, body = get_health(client, at("2026-05-01 11:01"))
    text = json.dumps(body)
    assert status == 503 and "Traceback" not in text and "secret.py" not in text
    assert body["jobs"][0]["last_error"] == "ValueError: no good"
    assert body["problems"] == ["bad failed 1 time(s) in a row: ValueError: no good"]


def test_a_broken_registry_is_critical_in_one_line(jobs, client):
    jobs([{"name": "x", "cmd": "no-such-command"}])
    status, body = get_health(client)
    assert status == 503 and body["status"] == "critical" and body["jobs"] == []
    assert body["problems"] == ["crontabber registry: job 'x': key 'cmd': unknown management command 'no-such-command'"]


def test_no_jobs_and_no_ticks_is_healthy(jobs, client):
    jobs([])
    status, body = get_health(client)
    assert status == 200 and body["jobs"] == [] and body["last_tick"] is None


def test_only_get_and_head_and_never_cached(registry, client):
    with freeze_time(at("2026-05-01 11:05")):
        assert client.post("/crontabber/health/").status_code == 405
        head = client.head("/crontabber/health/")
    assert head.status_code == 200 and "no-cache" in head["Cache-Control"]


@pytest.mark.parametrize("count", [3, 30, 300])
def test_the_endpoint_costs_two_queries_whatever_the_number_of_jobs(jobs, client, count):
    jobs([{"name": f"j{n}", "cmd": "noop", "frequency": "1h"} for n in range(count)])
    tick(at("2026-05-01 10:00"))
    with freeze_time(at("2026-05-01 10:01")), CaptureQueriesContext(connection) as queries:
        response = client.get("/crontabber/health/", headers=BEARER)
    assert response.status_code == 200 and len(response.json()["jobs"]) == count
    assert len(queries) == 2, [q["sql"] for q in queries]  # the jobs, the control row


# --- who sees what ------------------------------------------------------------------------


@pytest.fixture
def failing_and_held(registry):
    control.FAILING.add("*")
    tick(at("2026-05-01 12:00"))
    Control.objects.filter(pk=1).update(hold_all=True, held_by="alice")


def test_strangers_get_the_verdict_and_each_jobs_status_only(failing_and_held, client):
    status, body = get_health(client, at("2026-05-01 12:01"), headers={})
    assert status == 503
    assert body == {
        "status": "warning",
        "checked_at": "2026-05-01T12:01:00+00:00",
        "jobs": [
            {"name": "hourly", "status": "failing"},
            {"name": "skip", "status": "ok"},
            {"name": "off", "status": "disabled"},
        ],
    }
    full_status, full = get_health(client, at("2026-05-01 12:01"))
    assert full_status == 503 and "alice" in json.dumps(full) and "failing on purpose" in json.dumps(full)


def test_a_staff_session_gets_the_full_report_and_other_users_do_not(failing_and_held, client, django_user_model):
    user = django_user_model.objects.create_user("bob", password="x")
    client.force_login(user)
    assert "problems" not in get_health(client, at("2026-05-01 12:01"), headers={})[1]
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    status, body = get_health(client, at("2026-05-01 12:01"), headers={})
    assert status == 503 and body["problems"][-1] == "all jobs are held by alice"


ROLES = {  # (is_staff, is_superuser, is_active, may view the jobs): whether it gets the full report
    "a user": ((False, False, True, True), False),
    "staff without crontabber's permission": ((True, False, True, False), False),
    "staff who may view the jobs": ((True, False, True, True), True),
    "a superuser": ((True, True, True, False), True),
    "an inactive superuser": ((True, True, False, False), False),
}


@pytest.mark.parametrize("role", ROLES)
def test_who_sees_the_full_health_and_the_metrics(role, failing_and_held, client, django_user_model):
    (staff, superuser, active, may_view), full = ROLES[role]
    user = django_user_model.objects.create_user("u", password="x", is_staff=staff, is_superuser=superuser)
    if may_view:
        user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(user)
    django_user_model.objects.filter(pk=user.pk).update(is_active=active)
    stranger = get_health(Client(), at("2026-05-01 12:01"), headers={})[1]
    body = get_health(client, at("2026-05-01 12:01"), headers={})[1]
    assert ("problems" in body) is full and (full or body == stranger), body
    metrics = client.get("/crontabber/metrics")
    assert metrics.status_code == (200 if full else 401)


@pytest.mark.parametrize(
    "token, header", [(HEALTH_TOKEN, f"Bearer {HEALTH_TOKEN}x"), (HEALTH_TOKEN, "Bearer "), ("", "Bearer anything")]
)
def test_a_wrong_token_or_none_configured_is_401_and_tells_nothing(failing_and_held, client, settings, token, header):
    settings.CRONTABBER_HEALTH_TOKEN = token
    with freeze_time(at("2026-05-01 12:01")):
        response = client.get("/crontabber/health/", headers={"Authorization": header})
    assert response.status_code == 401 and response.json() == {"error": "invalid token"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_token_is_compared_in_constant_time(registry, client, monkeypatch):
    import hmac

    compared = []
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or a == b)
    assert get_health(client)[0] == 200
    assert compared == [(HEALTH_TOKEN.encode(), HEALTH_TOKEN.encode())]


# --- cronlist --check, and the last skip -------------------------------------------------------


def check(*args, when=at("2026-05-01 11:05")):
    """cronlist --check: (exit status, output lines)."""
    import io

    out = io.StringIO()
    with freeze_time(when):
        try:
            call_command("cronlist", "--check", *args, stdout=out)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue().splitlines()


def test_check_ok(registry):
    code, lines = check()
    assert code == 0
    assert lines == [
        "CRONTABBER OK - 3 jobs",
        "last tick: 2026-05-01T11:00:00+00:00",
        "hourly: ok",
        "skip: ok",
        "off: disabled",
    ]


def test_check_warning_then_critical(registry):
    control.FAILING.add("*")
    tick(at("2026-05-01 12:00"))
    code, lines = check(when=at("2026-05-01 12:01"))
    assert code == 1
    assert lines[0] == (
        "CRONTABBER WARNING - hourly failed 1 time(s) in a row: CommandError: failing on purpose "
        "for 2026-05-01T12:00:00+00:00"
    )
    assert "hourly: failing, 1 error(s) in a row: CommandError: failing on purpose" in lines[2]
    code, lines = check(when=at("2026-05-01 13:30"))
    assert code == 2
    assert lines[0].startswith("CRONTABBER CRITICAL - no runner has ticked since 2026-05-01T12:00:00+00:00; hourly")


def test_check_names_limit_it_and_json(registry):
    control.FAILING.add("*")
    tick(at("2026-05-01 12:00"))
    assert check("skip", when=at("2026-05-01 12:01")) == (
        0,
        ["CRONTABBER OK - 1 job", "last tick: 2026-05-01T12:00:00+00:00", "skip: ok"],
    )
    code, lines = check("--format=json", when=at("2026-05-01 12:01"))
    body = json.loads("\n".join(lines))
    assert code == 1 and body["status"] == "warning" and [j["status"] for j in body["jobs"]][0] == "failing"


def test_check_of_a_broken_registry_is_critical(jobs):
    jobs([{"name": "x", "cmd": "no-such-command"}])
    code, lines = check()
    assert code == 2 and lines == [
        "CRONTABBER CRITICAL - crontabber registry: job 'x': key 'cmd': unknown management command 'no-such-command'"
    ]
    code, lines = check("--format=json")
    assert code == 2 and json.loads("\n".join(lines))["problems"] == [
        "crontabber registry: job 'x': key 'cmd': unknown management command 'no-such-command'"
    ]


@pytest.mark.django_db(transaction=True)
def test_check_exit_statuses_of_the_real_command():
    registry = json.dumps([{"name": "j", "cmd": "noop", "frequency": "1h"}])
    result = manage("cronlist", "--check", env=child_env(registry))
    assert result.returncode == 2, result.stderr
    assert result.stdout.splitlines()[0] == "CRONTABBER CRITICAL - no runner has ticked since ever"
    assert result.stderr == ""
    result = manage("cronlist", "--check", env=child_env("[]"))
    assert (result.returncode, result.stdout.splitlines()[0]) == (0, "CRONTABBER OK - 0 jobs")


def test_cronlist_shows_the_last_skip(registry, capsys):
    with freeze_time(at("2026-05-01 11:05")):
        call_command("cronlist")
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    column = header.index("LAST SKIPPED")
    assert header.index("LAST SUCCESS") < column < header.index("NEXT RUN")
    skip = next(line for line in lines if line.startswith("skip "))
    hourly = next(line for line in lines if line.startswith("hourly "))
    assert skip[column:].startswith("2026-05-01 11:00Z") and hourly[column:].startswith("- ")
    with freeze_time(at("2026-05-01 11:05")):
        call_command("cronlist", "--format=json")
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries["skip"]["last_skipped"] == "2026-05-01T11:00:00+00:00"
    assert entries["hourly"]["last_skipped"] is None and entries["off"]["last_skipped"] is None


def test_a_database_error_is_critical_without_its_details_on_the_web(registry, client, monkeypatch, caplog):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError('connection to server at "10.0.0.5", port 5432 failed: timeout\nDETAIL: more')

    monkeypatch.setattr("crontabber.web.health.report", down)
    status, body = get_health(client)
    assert status == 503 and body["status"] == "critical" and body["problems"] == ["database unavailable"]
    assert "10.0.0.5" not in json.dumps(body) and "10.0.0.5" in caplog.text  # logged for the operators
    code, lines = check()
    assert code == 2
    assert lines == [
        'CRONTABBER CRITICAL - database error: connection to server at "10.0.0.5", port 5432 failed: timeout'
    ]
