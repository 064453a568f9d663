"""On time: `cronrun --loop` wakes for the next slot (or an operator's request), and each
attempt's start lag is recorded and shown (cronlist, admin, metrics, health)."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families

from crontabber.engine.plan import sleep_seconds
from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from crontabber.registry import load_jobs
from crontabber.web import health, metrics
from tests.helpers import ROOT, at, child_env, job, tick, wait_for

pytestmark = pytest.mark.django_db


# --- how long the loop sleeps ------------------------------------------------------------


def test_the_loop_sleeps_to_the_next_slot_when_it_comes_before_the_interval():
    now = at("2026-05-01 10:00:00.2")
    assert sleep_seconds(now, 300, at("2026-05-01 10:01"), None) == pytest.approx(59.8)


def test_the_interval_is_only_the_longest_sleep_on_the_clock():
    now = at("2026-05-01 10:02:00")
    assert sleep_seconds(now, 300, at("2026-05-01 11:00"), None) == pytest.approx(180)  # 10:05, a multiple of 300 s
    assert sleep_seconds(now, 300, None, None) == pytest.approx(180)


def test_attempts_queued_on_workers_wake_the_loop_at_their_poll():
    assert sleep_seconds(at("2026-05-01 10:02"), 300, at("2026-05-01 10:03"), 1.0) == pytest.approx(1.0)


def test_a_slot_that_fell_due_during_the_tick_is_run_at_once():
    assert sleep_seconds(at("2026-05-01 10:01:00.5"), 300, at("2026-05-01 10:01"), None) == 0


def test_a_tick_knows_when_the_next_job_falls_due_and_not_a_job_another_runner_holds(jobs):
    jobs(
        [
            {"name": "minutely", "cmd": "noop", "cron": "* * * * *"},
            {"name": "hourly", "cmd": "noop", "cron": "0 * * * *"},
            {"name": "held", "cmd": "noop", "cron": "*/5 * * * *"},
        ]
    )
    tick(at("2026-05-01 10:00:00.1"))
    Job.objects.filter(name="held").update(
        next_run=at("2026-05-01 10:00"), claimed_by="elsewhere", claim_expires=at("2026-05-01 11:00")
    )
    report = tick(at("2026-05-01 10:00:30"))
    assert report.wake == at("2026-05-01 10:01")  # not "held", still due but another runner's


# --- the loop, a real process ------------------------------------------------------------


def start_loop(registry, settings=None):
    env = child_env(json.dumps(registry), TEST_SETTINGS=json.dumps(settings or {}))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "webapp" / "manage.py"), "cronrun", "--loop", "--interval", "600"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def stop(loop):
    loop.terminate()
    try:
        return loop.communicate(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()


def a_job_due_in(seconds: float, name="n") -> Job:
    """A job of every minute whose next slot is ``seconds`` from now (its grid anchored there)."""
    with_spec = {"name": name, "cmd": "noop", "frequency": "1m"}
    from django.test import override_settings

    with override_settings(CRONTABBER_JOBS=[with_spec]):
        spec = load_jobs()[0]
    slot = timezone.now() + timedelta(seconds=seconds)
    return Job.objects.create(
        name=name,
        schedule=spec.schedule.description,
        first_run=slot - timedelta(minutes=1),
        next_slot=slot,
        next_run=slot,
        last_success=slot - timedelta(minutes=1),
    )


@pytest.mark.django_db(transaction=True)
def test_the_loop_wakes_for_a_slot_long_before_its_interval():
    row = a_job_due_in(3)
    loop = start_loop([{"name": "n", "cmd": "noop", "frequency": "1m"}])
    try:
        assert wait_for(lambda: Log.objects.filter(job__name="n", outcome="success").exists(), seconds=60, every=0.05)
    finally:
        stop(loop)
    log = Log.objects.get(job__name="n")
    assert log.slot == row.next_slot
    assert log.start_lag is not None and log.start_lag < 30  # the interval was 600 s


@pytest.mark.django_db(transaction=True)
def test_a_sleeping_loop_sees_an_operators_run_now_at_its_next_look():
    a_job_due_in(3600)
    loop = start_loop([{"name": "n", "cmd": "noop", "frequency": "1m"}], {"CRONTABBER_REQUEST_POLL_SECONDS": 0.2})
    try:
        assert wait_for(lambda: Control.load().last_tick is not None, seconds=60, every=0.05)
        Job.objects.filter(name="n").update(run_requested=timezone.now())
        Control.ask(timezone.now())  # what the admin's actions do
        assert wait_for(lambda: Log.objects.filter(job__name="n", outcome="success").exists(), seconds=60, every=0.05)
    finally:
        stop(loop)


# --- the start lag of each attempt -------------------------------------------------------


def test_an_on_time_slot_records_how_late_it_started(jobs):
    jobs([{"name": "j", "cmd": "noop", "cron": "* * * * *"}])
    tick(at("2026-05-01 10:00:30"))  # a new job's first slot, 10:00, fell due before it was seen
    tick(at("2026-05-01 10:01:00.25"))
    tick(at("2026-05-01 10:02:02"))
    lags = [log.start_lag for log in Log.objects.order_by("slot")]
    assert lags == [None, pytest.approx(0.25), pytest.approx(2)]
    assert job("j").start_lag == pytest.approx(2)


def test_a_new_jobs_first_slot_in_the_minute_it_was_seen_is_not_late(jobs, settings):
    settings.CRONTABBER_LATE_START_SECONDS = 30
    jobs([{"name": "j", "cmd": "noop", "cron": "* * * * *"}])
    tick(at("2026-05-01 10:00:45"))  # runs the 10:00 slot at once
    assert [log.start_lag for log in Log.objects.all()] == [None]
    assert health.report(now=at("2026-05-01 10:00:50")).code == health.OK


def test_a_backlogs_older_slots_a_retry_and_a_rerun_have_no_start_lag(jobs):
    jobs([{"name": "b", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 00:00:01"))
    tick(at("2026-05-01 03:00:05"))  # down for three hours: 01:00 and 02:00 are a backlog, 03:00 is on time
    lags = {log.slot.hour: log.start_lag for log in Log.objects.all()}
    assert lags == {0: None, 1: None, 2: None, 3: pytest.approx(5)}  # 00:00: the new job's first slot
    with freeze_time(at("2026-05-01 03:30")):
        Runner().rerun(load_jobs()[0], at("2026-05-01 01:00"), at("2026-05-01 01:00"))
    assert Log.objects.get(rerun=True).start_lag is None
    assert job("b").start_lag == pytest.approx(5)  # the latest on-time slot's


def test_a_failed_slots_retry_has_no_start_lag(jobs, settings):
    from tests.jobs import control

    jobs([{"name": "f", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 09:30"))
    control.FAILING.add(at("2026-05-01 10:00").isoformat())
    tick(at("2026-05-01 10:00:03"))
    control.FAILING.clear()
    tick(job("f").next_run + timedelta(seconds=1))
    first, retry = Log.objects.order_by("id")
    assert (first.attempt, first.start_lag) == (1, pytest.approx(3))
    assert (retry.attempt, retry.start_lag) == (2, None)


def test_a_forced_extra_run_has_no_start_lag(jobs):
    jobs([{"name": "j", "cmd": "noop", "cron": "0 * * * *"}])
    tick(at("2026-05-01 09:30"))
    tick(at("2026-05-01 10:00:01"))
    tick(at("2026-05-01 10:20"), only=["j"], force=True)  # runs the 10:00 slot again, off the schedule
    assert [log.start_lag for log in Log.objects.order_by("id")] == [pytest.approx(1), None]


def test_max_backfill_stopping_short_of_the_latest_slot_is_no_on_time_slot(jobs):
    jobs([{"name": "b", "cmd": "record", "cron": "0 * * * *", "backfill": True, "max_backfill": 2}])
    tick(at("2026-05-01 00:00"))
    tick(at("2026-05-01 05:00:01"))
    assert [log.start_lag for log in Log.objects.order_by("slot")] == [None, None, None]


# --- where operators see it --------------------------------------------------------------


def test_cronlist_shows_the_latest_start_lag_in_its_table_and_json(jobs, capsys):
    jobs([{"name": "j", "cmd": "noop", "cron": "* * * * *"}])
    tick(at("2026-05-01 09:59:30"))
    tick(at("2026-05-01 10:00:01.5"))
    call_command("cronlist", "--format=json")
    assert json.loads(capsys.readouterr().out)[0]["start_lag"] == pytest.approx(1.5)
    call_command("cronlist")
    header, line = capsys.readouterr().out.splitlines()[:2]
    assert "LAG" in header.split() and "1.50 s" in line


def test_the_metrics_have_a_start_lag_histogram_of_on_time_slots(jobs, health_token, client):
    from tests.helpers import BEARER

    jobs([{"name": "j", "cmd": "noop", "cron": "* * * * *"}])
    tick(at("2026-05-01 09:59:30"))
    tick(at("2026-05-01 10:00:00.05"))
    tick(at("2026-05-01 10:01:03"))
    with freeze_time(at("2026-05-01 10:02")):
        text = client.get("/crontabber/metrics", headers=BEARER).content.decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "crontabber_start_lag_seconds"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.1"] == 1 and buckets["2.5"] == 1 and buckets["5.0"] == 2 and buckets["+Inf"] == 2
    assert metrics.LAG_BUCKETS[0] <= 0.1


def test_health_warns_when_an_on_time_slot_started_later_than_the_setting(jobs, settings):
    settings.CRONTABBER_LATE_START_SECONDS = 30
    jobs([{"name": "j", "cmd": "noop", "cron": "* * * * *"}])
    tick(at("2026-05-01 09:59:30"))
    tick(at("2026-05-01 10:00:10"))
    assert health.report(now=at("2026-05-01 10:00:30")).code == health.OK
    tick(at("2026-05-01 10:01:45"))  # the 10:01 slot, 45 s late
    report = health.report(now=at("2026-05-01 10:02"))
    assert report.code == health.WARNING
    assert report.problems == ["j: its latest slot started 45.00 s late (more than 30 s)"]
    assert report.as_dict()["jobs"][0]["start_lag"] == pytest.approx(45)


def test_the_job_page_shows_the_start_lag(jobs, admin_client):
    jobs([{"name": "j", "cmd": "noop", "cron": "* * * * *"}])
    tick(at("2026-05-01 09:59:30"))
    tick(at("2026-05-01 10:00:00.5"))
    page = admin_client.get(f"/admin/crontabber/job/{job('j').pk}/change/").content.decode()
    assert "0.50 s after its latest on-time slot" in page
