"""Prometheus metrics: GET /crontabber/metrics and cronlist --format=prometheus, read back
with prometheus_client's own parser."""

import io
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families

from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from crontabber.web import metrics
from tests.helpers import BEARER, ROOT, at, child_env, tick

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("health_token")]

REGISTRY = [
    {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True},
    {"name": "often", "cmd": "noop", "frequency": "5m"},
    {"name": "fails", "cmd": "boom", "frequency": "1h"},
]


def samples(text):
    """{(sample name, labels as a sorted tuple): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed, name, **labels):
    return parsed[(name, tuple(sorted(labels.items())))]


def scrape(client, when=at("2026-05-01 11:05"), headers=BEARER):
    with freeze_time(when):
        return client.get("/crontabber/metrics", headers=headers)


def test_each_job_shows_its_times_errors_and_backlog(registry, client):
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    parsed = samples(response.content.decode())
    eleven, noon = at("2026-05-01 11:00").timestamp(), at("2026-05-01 12:00").timestamp()
    assert value(parsed, "crontabber_job_last_success_timestamp_seconds", job="hourly") == eleven
    assert value(parsed, "crontabber_job_last_attempt_timestamp_seconds", job="hourly") == eleven
    assert value(parsed, "crontabber_job_next_run_timestamp_seconds", job="hourly") == noon
    assert value(parsed, "crontabber_job_consecutive_errors", job="hourly") == 0
    assert value(parsed, "crontabber_job_consecutive_errors", job="fails") == 2
    assert ("crontabber_job_last_success_timestamp_seconds", (("job", "fails"),)) not in parsed  # never succeeded
    assert value(parsed, "crontabber_job_running", job="hourly") == 0
    assert value(parsed, "crontabber_job_enabled", job="often") == 1
    assert value(parsed, "crontabber_job_backlog_slots", job="often") == 1  # 11:05 is due, not yet run
    assert value(parsed, "crontabber_job_backlog_slots", job="hourly") == 0
    assert value(parsed, "crontabber_last_tick_timestamp_seconds") == at("2026-05-01 11:00").timestamp()
    assert value(parsed, "crontabber_last_tick_failed") == 0
    assert value(parsed, "crontabber_hold_all") == 0


def test_the_last_tick_says_how_long_it_took(jobs, client):
    jobs(REGISTRY)
    with freeze_time(at("2026-05-01 10:00"), auto_tick_seconds=0.25):  # each reading of the clock: +0.25 s
        Runner().tick()
    took = Control.load().last_tick_seconds
    assert took > 0
    parsed = samples(scrape(client).content.decode())
    assert value(parsed, "crontabber_last_tick_duration_seconds") == took


def test_attempts_are_counted_by_outcome(registry, client):
    parsed = samples(scrape(client).content.decode())
    assert value(parsed, "crontabber_job_attempts_total", job="hourly", outcome="success") == 2
    assert value(parsed, "crontabber_job_attempts_total", job="fails", outcome="failure") == 2
    assert value(parsed, "crontabber_job_attempts_total", job="fails", outcome="success") == 0
    assert value(parsed, "crontabber_job_attempts_total", job="often", outcome="timeout") == 0


def test_the_duration_histogram_counts_recent_attempts_in_fixed_buckets(registry, client):
    Log.objects.filter(job__name="hourly").update(duration=10.0)
    hourly = Job.objects.get(name="hourly")
    Log.objects.create(job=hourly, slot=at("2026-04-01 00:00"), started_at=at("2026-04-01 00:00"), duration=2.0)
    parsed = samples(scrape(client).content.decode())
    bucket = lambda le: value(parsed, "crontabber_job_duration_seconds_bucket", job="hourly", le=le)  # noqa: E731
    assert (bucket("5.0"), bucket("15.0"), bucket("+Inf")) == (0, 2, 2)  # the April attempt is outside the window
    assert value(parsed, "crontabber_job_duration_seconds_count", job="hourly") == 2
    assert value(parsed, "crontabber_job_duration_seconds_sum", job="hourly") == 20.0
    assert value(parsed, "crontabber_job_duration_seconds_count", job="often") == 2


def test_a_backfill_backlog_is_counted_from_the_schedule_and_capped(registry, client):
    Job.objects.filter(name="hourly").update(next_slot=at("2026-05-01 02:00"))
    parsed = samples(scrape(client).content.decode())
    assert value(parsed, "crontabber_job_backlog_slots", job="hourly") == 10  # 02:00 .. 11:00
    Job.objects.filter(name="hourly").update(next_slot=at("2000-01-01 00:00"), first_run=at("2000-01-01 00:00"))
    parsed = samples(scrape(client).content.decode())
    assert value(parsed, "crontabber_job_backlog_slots", job="hourly") == metrics.BACKLOG_CAP


def test_a_running_job_a_failed_tick_and_the_hold_switch_show(registry, client):
    Job.objects.filter(name="often").update(
        claimed_by="host:1:x", claimed_at=at("2026-05-01 11:04"), claim_expires=at("2026-05-01 11:09")
    )
    Control.objects.filter(pk=1).update(last_tick_error="OperationalError: gone", hold_all=True)
    parsed = samples(scrape(client).content.decode())
    assert value(parsed, "crontabber_job_running", job="often") == 1
    assert value(parsed, "crontabber_last_tick_failed") == 1
    assert value(parsed, "crontabber_hold_all") == 1


def test_before_any_tick_there_is_no_tick_time_and_nothing_is_written(jobs, client):
    jobs(REGISTRY)
    parsed = samples(scrape(client).content.decode())
    assert not any(
        name.startswith("crontabber_last_tick_") and name != "crontabber_last_tick_failed" for name, _ in parsed
    )
    assert value(parsed, "crontabber_job_backlog_slots", job="hourly") == 0
    assert not Control.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("count", [1, 50])
def test_the_queries_do_not_grow_with_the_number_of_jobs(jobs, client, count):
    jobs([{"name": f"job{i}", "cmd": "noop", "frequency": "1h", "backfill": True} for i in range(count)])
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 11:00"))
    with CaptureQueriesContext(connection) as queries:
        response = scrape(client)
    assert response.status_code == 200
    assert len(samples(response.content.decode())) > count * 10
    assert len(queries) == 4  # jobs, control, attempts by outcome, recent durations


# --- who may see them ----------------------------------------------------------------------


def test_strangers_and_wrong_tokens_get_401(registry, client):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = scrape(client, headers=headers)
        assert response.status_code == 401 and b"crontabber_" not in response.content
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_staff_session_sees_them_and_other_users_do_not(registry, client):
    user = User.objects.create_user("op", password="pw")
    client.force_login(user)
    assert scrape(client, headers={}).status_code == 401
    User.objects.filter(pk=user.pk).update(is_staff=True)
    assert scrape(client, headers={}).status_code == 401, "staff without crontabber's permission: a stranger"
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    assert scrape(client, headers={}).status_code == 200


def test_without_prometheus_client_the_endpoint_answers_501_in_one_line(registry, client, monkeypatch):
    monkeypatch.setattr(metrics, "prometheus_client", None)
    response = scrape(client)
    assert response.status_code == 501
    assert response.content.decode().strip().splitlines() == [metrics.MISSING]
    assert "crontabber[metrics]" in metrics.MISSING
    with pytest.raises(CommandError, match=re.escape("crontabber[metrics]")):
        call_command("cronlist", "--format=prometheus")


def test_a_registry_mistake_answers_503(jobs, client):
    jobs([{"cmd": "noop", "frequency": "often"}])
    response = scrape(client)
    assert response.status_code == 503 and len(response.content.decode().strip().splitlines()) == 1


# --- cronlist --format=prometheus ----------------------------------------------------------


def cronlist(*args):
    out = io.StringIO()
    call_command("cronlist", "--format=prometheus", *args, stdout=out)
    return out.getvalue()


def test_cronlist_prints_the_same_metrics_without_a_web_request(registry, client):
    with freeze_time(at("2026-05-01 11:05")):
        text = cronlist()
    assert samples(text) == samples(scrape(client).content.decode())
    assert text.endswith("\n")


def test_cronlist_can_limit_the_metrics_to_named_jobs(registry):
    with freeze_time(at("2026-05-01 11:05")):
        parsed = samples(cronlist("often"))
    assert {dict(labels).get("job") for _, labels in parsed} == {"often", None}
    with pytest.raises(CommandError, match="unknown job 'nope'"):
        cronlist("nope")


def test_cronlist_check_has_no_prometheus_format(registry):
    with pytest.raises(CommandError, match="--check"):
        cronlist("--check")


# --- packaging and docs --------------------------------------------------------------------


def test_the_metrics_extra_and_the_test_extra_pin_the_same_prometheus_client():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["metrics"] == ["prometheus-client==0.26.0"]
    assert "prometheus-client==0.26.0" in extras["test"]


def test_the_example_alert_rules_parse_and_use_only_metrics_that_exist(registry, client):
    text = (ROOT / "docs" / "alerts.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text.split("## Prometheus")[1], re.S)
    documents = [yaml.safe_load(block) for block in blocks]  # the scrape config, then the rules
    rules = [rule for doc in documents for group in doc.get("groups", []) for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {"CrontabberJobFailing", "CrontabberJobOverdue", "CrontabberNoTick"}
    exposed = {name for name, _ in samples(scrape(client).content.decode())}
    used = {name for rule in rules for name in re.findall(r"\bcrontabber_\w+", rule["expr"])}
    assert used and used <= exposed


def test_the_app_imports_and_answers_501_without_prometheus_client():
    """A site without the extra: crontabber.metrics imports, the endpoint says what to install."""
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "from crontabber import urls\nfrom crontabber.web import metrics\n"
        "response = Client().get('/crontabber/metrics', headers={'Authorization': 'Bearer t'})\n"
        "print(metrics.available(), response.status_code, response.content.decode().strip())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(CRONTABBER_HEALTH_TOKEN="t"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stdout.strip() == f"False 501 {metrics.MISSING}", result.stderr
