"""A job cannot poison the scheduler: one that kills its runner (os._exit, as a segfault
or the OOM killer would) is recorded interrupted and counts as an error, the other jobs
still run, and after CRONTABBER_CRASHES_BEFORE_ISOLATION such attempts it runs in a child
process; a process a job forks never goes on as a second runner. Real runner processes."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from crontabber import conf
from crontabber.engine.runner import Runner
from crontabber.models import Job, Log
from crontabber.web import health
from tests.helpers import child_env, job, manage, outcomes
from tests.jobs.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)
KILLER = {"name": "killer", "cmd": "misbehave", "cmd_args": ["--how", "os-exit"], "frequency": "1h"}
AFTER = {"name": "after", "cmd": "record", "frequency": "1h"}


def cronrun(registry):
    return manage("cronrun", env=child_env(json.dumps(registry)))


def test_a_job_that_kills_its_runner_is_an_error_and_the_others_still_run(jobs):
    jobs([KILLER, AFTER])
    died = cronrun([KILLER, AFTER])
    assert died.returncode == 17, died.stderr
    (attempt,) = Log.objects.all()
    assert (attempt.job.name, attempt.outcome) == ("killer", "running")
    later = timezone.now() + conf.lease() + timedelta(seconds=1)
    with freeze_time(later):  # the dead runner's claim has expired: another runner takes it over
        tick = Runner().tick()
    attempt.refresh_from_db()
    assert (attempt.outcome, attempt.error_type) == ("interrupted", "Abandoned")
    killer = job("killer")
    assert (killer.error_count, killer.crash_count) == (1, 1) and killer.next_run > later, "it backs off"
    assert [outcome for _, outcome in outcomes("after")] == ["success"], "the job after it runs"
    assert tick.attempts["killer"] == {"interrupted": 1}


def test_once_it_has_crashed_its_next_crash_costs_the_jobs_around_it_nothing(jobs):
    """The first crash may repeat its batch's unwritten quick attempts (the crash rule);
    from then on the job is careful: what ran before it is on record, nothing after it is
    opened, so only its own attempt is abandoned and blamed."""
    innocents = [
        {"name": f"ok{n}", "cmd": "work", "cmd_args": ["--label", f"ok{n}"], "frequency": "1h"} for n in (0, 1)
    ]
    registry = [innocents[0], KILLER, innocents[1]]
    jobs(registry)
    Job.objects.create(name="killer", crash_count=1, error_count=1, last_error="Abandoned: its runner died")
    died = cronrun(registry)
    assert died.returncode == 17, died.stderr
    assert outcomes("ok0") and [outcome for _, outcome in outcomes("ok0")] == ["success"], "on record before it"
    assert not outcomes("ok1"), "nothing opened after it"
    with freeze_time(timezone.now() + conf.lease() + timedelta(seconds=1)):
        Runner().tick()
    assert [outcome for _, outcome in outcomes("ok1")] == ["success"]
    assert sorted(Execution.objects.values_list("label", flat=True)) == ["ok0", "ok1"], "each ran once"
    assert [(j.name, j.crash_count) for j in Job.objects.order_by("name")] == [("killer", 2), ("ok0", 0), ("ok1", 0)]


def test_after_three_such_attempts_it_runs_in_a_child_process_and_health_says_so(jobs, child_database):
    jobs([KILLER, AFTER])
    cronrun([AFTER])  # a tick recorded
    Job.objects.create(name="killer", crash_count=3, error_count=3, last_error="Abandoned: its runner died")
    with freeze_time(timezone.now() + timedelta(hours=2)):
        Runner().tick()  # the runner is this test's own process: it must survive the job
        verdict = health.report()
    failed = Log.objects.filter(job__name="killer").latest("id")
    assert (failed.outcome, failed.error_type, failed.error_value) == ("failure", "ExitStatus", "exit status 17: ")
    assert job("killer").crash_count == 3, "it stays in a child process until an operator clears it"
    (status,) = [j.status for j in verdict.jobs if j.name == "killer"]
    assert status == "isolated" and verdict.code == health.CRITICAL
    assert any("runs in a child process" in p or "run in a child process" in p for p in verdict.problems)


def test_a_child_a_job_forks_never_goes_on_as_a_second_runner(jobs):
    forker = {"name": "forker", "cmd": "misbehave", "cmd_args": ["--how", "fork-exit"], "frequency": "1h"}
    registry = [forker, {**AFTER, "cmd": "work", "cmd_args": ["--label", "after"]}]
    jobs(registry)
    result = cronrun(registry)
    assert result.returncode == 0, result.stderr
    assert [outcome for _, outcome in outcomes("forker")] == ["success"]
    assert list(Execution.objects.values_list("label", flat=True)) == ["after"], "the later job ran once"
    assert not Log.objects.filter(outcome="running").exists()
