"""One job's failure stays that job's; a tick that fails anyway is seen; no false success."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crontabber import signals
from crontabber.models import Control, Job, Log
from crontabber.schedules.cron import CronSchedule
from tests.helpers import at, job, outcomes, tick
from tests.jobs.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def misbehaving(how, name=None, **keys):
    return {"name": name or how, "cmd": "misbehave", "cmd_args": ["--how", how], "frequency": "1h", **keys}


def test_a_slot_computation_that_raises_fails_that_job_only(jobs, monkeypatch):
    bad = {"name": "bad", "cmd": "misbehave", "cron": "0 * * * *"}
    jobs([bad, misbehaving("", "good")])
    tick(at("2026-05-01 10:00"))
    real = CronSchedule.next_after

    def overflow(self, instant, anchor=None):
        if instant.hour == 11:
            raise OverflowError("date value out of range")
        return real(self, instant, anchor)

    monkeypatch.setattr(CronSchedule, "next_after", overflow)
    report = tick(at("2026-05-01 11:00"))
    assert outcomes("good")[-1] == (at("2026-05-01 11:00"), "success")
    assert outcomes("bad")[-1] == (at("2026-05-01 11:00"), "failure")
    failed = Log.objects.filter(job__name="bad").first()
    assert failed.error_type == "OverflowError" and "out of range" in failed.error_value and failed.traceback
    assert job("bad").claimed_by == "" and job("bad").error_count == 1
    assert not Log.objects.filter(outcome="running").exists()
    assert [r.job for r in report.failed] == ["bad"]


def test_a_value_the_database_refuses_fails_that_job_only(jobs):
    jobs([misbehaving("nul"), misbehaving("", "good")])
    tick(at("2026-05-01 10:00"))
    assert outcomes("nul") == [(at("2026-05-01 10:00"), "success")]
    assert "\x00" not in Log.objects.get(job__name="nul").output
    assert outcomes("good") == [(at("2026-05-01 10:00"), "success")]


def test_a_receiver_that_calls_sys_exit_does_not_stop_the_tick(jobs, receivers):
    def leave(sender, **kwargs):
        raise SystemExit(2)

    receivers.connect(signals.attempt_finished, leave)
    jobs([misbehaving("", "a"), misbehaving("", "b")])
    tick(at("2026-05-01 10:00"))
    assert outcomes("a") == outcomes("b") == [(at("2026-05-01 10:00"), "success")]


RAW_BEGIN_UNSEEN = "mysqlclient does not expose the server's transaction status: a raw BEGIN is not detected"


@pytest.mark.parametrize(
    "how",
    [
        "autocommit-off",
        pytest.param("begin", marks=pytest.mark.skipif(connection.vendor == "mysql", reason=RAW_BEGIN_UNSEEN)),
    ],
)
def test_a_job_that_leaves_a_transaction_open_has_failed_and_the_runner_recovers(jobs, how):
    jobs([misbehaving(how), misbehaving("", "after")])
    tick(at("2026-05-01 10:00"))
    log = Log.objects.get(job__name=how)
    assert log.outcome == "failure" and log.error_type == "DatabaseConnection"
    assert "nothing it wrote in that transaction was kept" in log.error_value
    assert not Execution.objects.filter(label="uncommitted").exists()
    assert outcomes("after") == [(at("2026-05-01 10:00"), "success")]
    assert job(how).error_count == 1 and connection.get_autocommit()


def test_a_job_that_swallows_its_timeout_is_recorded_as_timed_out(jobs):
    jobs(
        [
            {
                **misbehaving("swallow-timeout"),
                "cmd_args": ["--how", "swallow-timeout", "--seconds", "1.5"],
                "timeout": 0.2,
            }
        ]
    )
    tick(at("2026-05-01 10:00"))
    log = Log.objects.get(job__name="swallow-timeout")
    assert log.outcome == "timeout" and "caught the exception that stopped it" in log.error_value


def test_the_output_tail_is_the_last_characters_even_of_one_long_line(jobs, settings):
    settings.CRONTABBER_OUTPUT_TAIL_CHARS = 100
    jobs([misbehaving("flood")])
    tick(at("2026-05-01 10:00"))
    output = Log.objects.get(job__name="flood").output
    assert len(output) == 100 and output.endswith("xdone flood")


def test_the_control_row_says_how_the_last_tick_ended(jobs, monkeypatch):
    jobs([misbehaving("", "a")])
    tick(at("2026-05-01 10:00"))
    control = Control.load()
    assert control.last_tick == at("2026-05-01 10:00") and control.last_tick_error == ""
    monkeypatch.setattr(Job.objects.__class__, "tick_rows", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tick(at("2026-05-01 11:00"))
    assert Control.load().last_tick_error == "ZeroDivisionError: division by zero"


def test_an_idle_tick_is_still_three_queries(jobs):
    jobs([misbehaving("", "a")])
    tick(at("2026-05-01 10:00"))
    with CaptureQueriesContext(connection) as queries:
        tick(at("2026-05-01 10:30"))
    assert len(queries) == 3
