"""Jobs run on real django-tasks-db worker processes (`manage.py db_worker`), on PostgreSQL:
backfill order, a failing task, a worker SIGKILLed mid-attempt, two runners and two
workers (docs/tasks.md)."""

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from crontabber.engine.runner import Runner
from crontabber.models import Job, Log
from crontabber.registry import load_jobs
from tests.helpers import ROOT, child_env, wait_for
from tests.jobs.models import Execution

pytest.importorskip("django_tasks_db")
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def start(*args, registry=(), settings=None):
    env = child_env(json.dumps(list(registry)), TEST_SETTINGS=json.dumps(settings or {}))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "webapp" / "manage.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def start_worker(name):
    return start("db_worker", "--backend", "db", "--interval", "0.05", "--no-startup-delay", "--no-reload",
                 "--worker-id", name)  # fmt: skip


def stop(*processes):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def backlog(minutes):
    """Every registered job's grid starts ``minutes`` ago: that many slots and one are due."""
    now = timezone.now()
    for spec in load_jobs():
        Job.objects.create(name=spec.name, **Job.fresh_state(spec.schedule, now - timedelta(minutes=minutes)))


def ticks_until(done, seconds=90):
    """In-process ticks until ``done()``: the runner reads results and queues the next slots."""
    return wait_for(lambda: Runner().tick() and done(), seconds=seconds, every=0.05)


def finished(name, outcome="success"):
    return Log.objects.filter(job__name=name, outcome=outcome).count()


def test_a_backfill_job_on_a_worker_runs_its_slots_oldest_first_once_each(jobs):
    jobs([{"name": "work", "cmd": "work", "frequency": "1m", "backfill": True, "backend": "db"}])
    backlog(4)
    worker = start_worker("w1")
    try:
        assert ticks_until(lambda: finished("work") >= 5)
    finally:
        stop(worker)
    slots = list(Execution.objects.order_by("started").values_list("slot", flat=True))
    assert slots == sorted(slots) and len(set(slots)) == len(slots) >= 5
    outcomes = list(Log.objects.filter(job__name="work").order_by("slot").values_list("outcome", flat=True))
    # Every slot succeeded; a minute that began as the test ended may have queued one more
    # slot, the newest, when the worker stopped.
    assert set(outcomes[:-1]) == {"success"} and outcomes[-1] in ("success", "queued")
    assert Log.objects.filter(job__name="work").first().output.endswith("done")


def test_a_failing_task_on_a_worker_is_recorded_as_the_failure_it_was(jobs):
    jobs([{"name": "failing", "task": "tests.jobs.tasks.failing", "frequency": "1h", "backend": "db"}])
    worker = start_worker("w1")
    try:
        assert ticks_until(lambda: finished("failing", "failure") == 1)
    finally:
        stop(worker)
    log = Log.objects.get(job__name="failing")
    assert (log.error_type, log.backend) == ("ValueError", "db")
    assert "failing on purpose" in log.error_value
    assert Job.objects.get(name="failing").error_count == 1


@pytest.mark.slow
def test_a_worker_killed_mid_attempt_loses_nothing_the_slot_runs_again(jobs, settings):
    settings.CRONTABBER_LEASE_SECONDS = 3  # how long a started attempt may go without a result
    jobs([{"name": "slow", "cmd": "work", "cmd_args": ["--seconds", "2"], "frequency": "1h", "backend": "db"}])
    Runner().tick()
    worker, replacement = start_worker("doomed"), None
    try:
        assert wait_for(lambda: Execution.objects.exists(), seconds=30)
        os.kill(worker.pid, signal.SIGKILL)  # mid-attempt: its result stays RUNNING for ever
        worker.communicate()
        assert Log.objects.get(job__name="slow").outcome == "queued"
        replacement = start_worker("replacement")
        assert ticks_until(lambda: finished("slow") == 1)
    finally:
        stop(*filter(None, [worker, replacement]))
    first, second = Log.objects.filter(job__name="slow").order_by("id")
    assert (first.outcome, first.error_type, second.outcome, second.attempt) == ("interrupted", "Lost", "success", 2)
    assert first.slot == second.slot
    executions = list(Execution.objects.order_by("started"))
    assert [e.finished is not None for e in executions] == [False, True]  # killed, then run again in full


@pytest.mark.slow
def test_two_runners_and_two_workers_run_every_slot_exactly_once(jobs):
    registry = [
        {"name": f"job{i}", "cmd": "work", "cmd_args": ["--label", f"job{i}"], "frequency": "1m", "backfill": True,
         "backend": "db"}
        for i in range(4)
    ]  # fmt: skip
    registry.append({"name": "rollup", "task": "tests.jobs.tasks.rollup", "frequency": "1m", "backfill": True,
                     "backend": "db"})  # fmt: skip
    jobs(registry)
    backlog(5)
    expected = Job.objects.count() * 6
    processes = [start_worker("w1"), start_worker("w2")]
    polling = {"CRONTABBER_TASK_POLL_SECONDS": 0.1}  # while attempts are queued; else a tick a minute
    processes += [start("cronrun", "--loop", "--interval", "60", registry=registry, settings=polling) for _ in range(2)]
    try:
        assert wait_for(lambda: Log.objects.filter(outcome="success").count() >= expected, seconds=120, every=0.2)
    finally:
        stop(*processes)
    done = list(Execution.objects.values_list("label", "slot"))
    assert len(done) == len(set(done)) >= expected  # every slot once: none twice
    assert not Log.objects.exclude(outcome__in=["success", "queued"]).exists()
    for label in {label for label, _ in done}:
        started = [
            slot for _, slot in Execution.objects.filter(label=label).order_by("started").values_list("label", "slot")
        ]
        assert started == sorted(started)  # oldest first, one at a time


def test_a_folded_task_on_a_worker_runs_its_backlog_as_one_queued_attempt(jobs):
    jobs([{"name": "window", "task": "tests.jobs.tasks.window", "frequency": "1h", "backfill": True, "fold": True,
           "backend": "db"}])  # fmt: skip
    (spec,) = load_jobs()
    Job.objects.create(name="window", **Job.fresh_state(spec.schedule, timezone.now() - timedelta(hours=4)))
    worker = start_worker("w1")
    try:
        assert ticks_until(lambda: finished("window") >= 1)
    finally:
        stop(worker)
    (log,) = Log.objects.filter(job__name="window")  # hourly: no other slot falls due meanwhile
    assert (log.outcome, log.covers, log.backend) == ("success", 5, "db")
    (told,) = Execution.objects.all()
    assert (told.label, told.slot) == (log.since.isoformat(), log.slot.isoformat())
    assert json.loads(log.output) == {"since": told.label, "run_time": told.slot}


def retried(name):
    """Every slot of the job that failed has succeeded since."""
    failed = Log.objects.filter(job__name=name, outcome="failure").values_list("slot", flat=True)
    return set(failed) <= set(Log.objects.filter(job__name=name, outcome="success").values_list("slot", flat=True))


def recorded_in_order(receivers):
    """The slots of the attempts recorded, in the order the runner recorded them."""
    from crontabber import signals

    recorded = []
    receivers.connect(signals.attempt_finished, lambda log, attempt, **kw: recorded.append((log.slot, attempt.outcome)))
    return recorded


def test_a_backfill_job_with_slots_queued_at_once_runs_each_once_and_records_them_in_slot_order(jobs, receivers):
    jobs([{"name": "rollup", "task": "tests.jobs.tasks.rollup", "frequency": "1m", "backfill": True, "backend": "db",
           "queued_at_once": 4}])  # fmt: skip
    backlog(9)
    recorded = recorded_in_order(receivers)
    workers = [start_worker("w1"), start_worker("w2")]
    try:
        assert ticks_until(lambda: finished("rollup") >= 10)
    finally:
        stop(*workers)
    done = list(Execution.objects.values_list("slot", flat=True))
    assert len(done) == len(set(done)) >= 10  # every slot once
    assert [slot for slot, _ in recorded] == sorted(slot for slot, _ in recorded)
    assert {outcome for _, outcome in recorded} == {"success"}
    assert Job.objects.get(name="rollup").last_success == max(slot for slot, _ in recorded)


def test_a_failed_slot_among_those_queued_at_once_is_retried_before_later_results_are_recorded(
    jobs, receivers, settings
):
    settings.CRONTABBER_RETRY_DELAY_SECONDS = 0.1
    jobs([{"name": "flaky", "task": "tests.jobs.tasks.fails_once_at_odd_minutes", "frequency": "1m",
           "backfill": True, "backend": "db", "queued_at_once": 4}])  # fmt: skip
    backlog(5)
    recorded = recorded_in_order(receivers)
    workers = [start_worker("w1"), start_worker("w2")]
    try:
        # Until every failed slot's retry has succeeded: on a loaded machine the test may
        # run into later minutes, whose odd ones fail once too.
        assert ticks_until(lambda: finished("flaky") >= 6 and retried("flaky"))
    finally:
        stop(*workers)
    successes = [slot for slot, outcome in recorded if outcome == "success"]
    assert successes == sorted(set(successes)) and len(successes) >= 6  # in slot order, each once
    failed = [slot for slot, outcome in recorded if outcome == "failure"]
    assert failed and all(slot.minute % 2 for slot in failed)
    for slot in failed:  # nothing after a failed slot was recorded before its retry succeeded
        assert recorded.index((slot, "success")) == recorded.index((slot, "failure")) + 1
    runs = list(Execution.objects.values_list("slot", flat=True))
    assert len(runs) == len(set(runs)) + len(failed)  # each slot once, and once more where it failed
