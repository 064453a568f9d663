"""Timeouts: a hung job is stopped, recorded as timed out, and the tick goes on."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from crontabber.models import Job, Log

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_in_process_job_past_its_timeout_is_stopped_and_the_tick_goes_on(jobs):
    jobs(
        [
            {
                "name": "hung",
                "cmd": "work",
                "cmd_args": ["--seconds", "30"],
                "frequency": "1h",
                "timeout": 0.5,
            },
            {"name": "next", "cmd": "record", "frequency": "1h"},
        ]
    )
    with pytest.raises(CommandError, match="did not succeed"):  # a one-shot tick with a failure exits 1
        call_command("cronrun")
    hung = Log.objects.get(job__name="hung")
    assert hung.outcome == "timeout" and 0.4 < hung.duration < 5
    assert "timeout 0.5 s" in hung.error_value and "working 30.0 s" in hung.output
    state = Job.objects.get(name="hung")
    assert state.error_count == 1 and state.last_success is None and state.claimed_by == ""
    assert Log.objects.get(job__name="next").outcome == "success"


@pytest.mark.slow
@pytest.mark.parametrize("ignore_term", [False, True])
def test_a_child_process_job_past_its_timeout_is_terminated_then_killed(jobs, settings, child_database, ignore_term):
    settings.CRONTABBER_KILL_GRACE_SECONDS = 1
    args = ["--seconds", "30"] + (["--ignore-term"] if ignore_term else [])
    # The timeout counts from the child's start, Django's set-up included: 8 s leaves a
    # loaded machine the time to get to the job's first line.
    jobs([{"name": "hung", "cmd": "work", "cmd_args": args, "frequency": "1h", "timeout": 8, "process": True}])
    with pytest.raises(CommandError, match="did not succeed"):  # a one-shot tick with a failure exits 1
        call_command("cronrun")
    hung = Log.objects.get(job__name="hung")
    assert hung.outcome == "timeout", hung.output
    assert 7.9 < hung.duration < (14 if ignore_term else 12), "terminated (then killed), not left to run 30 s"
    assert "working 30.0 s" in hung.output


def test_a_child_process_job_reports_success_skip_and_failure(jobs, child_database):
    jobs(
        [
            {"name": "ok", "cmd": "chatty", "frequency": "1h", "process": True},
            {"name": "skip", "cmd": "skipper", "frequency": "1h", "process": True},
            {"name": "bad", "cmd": "boom", "frequency": "1h", "process": True},
        ]
    )
    with pytest.raises(CommandError, match="did not succeed"):  # a one-shot tick with a failure exits 1
        call_command("cronrun")
    logs = {log.job.name: log for log in Log.objects.select_related("job")}
    assert logs["ok"].outcome == "success" and "line 2" in logs["ok"].output
    assert (logs["skip"].outcome, logs["skip"].error_value) == ("skipped", "no new rows")
    assert logs["bad"].outcome == "failure"
    assert logs["bad"].error_value.startswith("exit status 1: RuntimeError: boom")
    assert "about to fail" in logs["bad"].output


def test_the_registry_accepts_process_and_timeout(jobs):
    from crontabber.registry import check_registry

    jobs([{"cmd": "record", "timeout": 10, "process": True}])
    assert check_registry() == []
    jobs([{"cmd": "record", "timeout": -1, "process": "yes"}])
    assert {e.msg.split(":")[1].strip() for e in check_registry()} == {"key 'timeout'", "key 'process'"}
