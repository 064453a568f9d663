"""Jobs on real Celery workers (`celery worker`) through crontabber's backend
(crontabber.backends.celery), RabbitMQ as the broker and Redis for results, on PostgreSQL:
backfill order, a failing task, a worker SIGKILLed mid-attempt, two runners and two
workers (docs/tasks.md). The queues are this checkout's, the Redis database this run's
(tests/settings.py); the workers start once for the module."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from crontabber.models import Job, Log
from tests.helpers import ROOT, child_env, wait_for
from tests.jobs.models import Execution
from tests.test_task_workers import backlog, finished, recorded_in_order, start, stop, ticks_until

pytest.importorskip("celery")
pytest.importorskip("django_tasks_db")
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Workers:
    """`celery worker` processes on this checkout's queue, by name; each runs one task at a
    time in a child process (the prefork pool, Celery's default), which dies with it."""

    def __init__(self, logs: Path):
        self.logs, self.running = logs, {}

    def start(self, *names: str) -> None:
        """Started, and ready: their queue consumed."""
        queue = f"{django_settings.CHECKOUT_QUEUE_PREFIX}default"
        for name in names:
            log = self.logs / f"{name}.log"
            log.write_text("")
            argv = [sys.executable, "-m", "celery", "-A", "crontabber.backends.celery", "worker", "--concurrency", "1",
                    "-Q", queue, "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "--prefetch-multiplier", "1", "-l", "info", "-f", str(log)]  # fmt: skip
            self.running[name] = subprocess.Popen(argv, env=child_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        for name in names:
            self._wait_ready(self.logs / f"{name}.log", self.running[name])

    @staticmethod
    def _wait_ready(log: Path, process: subprocess.Popen) -> None:
        if not wait_for(lambda: " ready." in log.read_text() or process.poll() is not None, seconds=90):
            pytest.fail(f"celery worker not ready after 90 s:\n{log.read_text()}")
        assert process.poll() is None, process.communicate()[1]

    def kill_running(self, child: int) -> None:
        """SIGKILL the worker whose pool process ``child`` runs a task; both are gone when
        this returns."""
        worker = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
        name = next(name for name, process in self.running.items() if process.pid == worker)
        process = self.running.pop(name)
        os.kill(worker, signal.SIGKILL)
        process.communicate()
        assert wait_for(lambda: not Path(f"/proc/{child}").exists(), seconds=30)

    def stop(self) -> None:
        """A cold shutdown (SIGQUIT): the tests are over, nothing is left running."""
        for process in self.running.values():
            process.send_signal(signal.SIGQUIT)
        stop(*self.running.values())


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two workers, started once for the module (a test that kills one starts another)."""
    from crontabber.backends.celery import app

    with app.connection_for_write() as connection:  # what an earlier run left on the queue goes
        try:
            connection.default_channel.queue_purge(f"{django_settings.CHECKOUT_QUEUE_PREFIX}default")
        except connection.channel_errors:
            pass  # no queue yet: the first worker declares it
    running = Workers(tmp_path_factory.mktemp("celery"))
    try:
        with django_db_blocker.unblock():
            running.start("w1", "w2")
        yield running
    finally:
        running.stop()


def test_a_backfill_job_on_celery_workers_runs_its_slots_oldest_first_once_each(jobs, workers):
    jobs([{"name": "work", "cmd": "work", "frequency": "1m", "backfill": True, "backend": "celery"}])
    backlog(4)
    assert ticks_until(lambda: finished("work") >= 5)
    slots = list(Execution.objects.order_by("started").values_list("slot", flat=True))
    assert slots == sorted(slots) and len(set(slots)) == len(slots) >= 5
    logs = Log.objects.filter(job__name="work")
    outcomes = list(logs.order_by("slot").values_list("outcome", flat=True))
    # A minute that began as the test ended may have queued one more slot, the newest.
    assert set(outcomes[:-1]) == {"success"} and outcomes[-1] in ("success", "queued")
    assert set(logs.values_list("backend", flat=True)) == {"celery"}
    assert logs.first().output.endswith("done")


def test_a_failing_task_on_a_celery_worker_is_recorded_as_the_failure_it_was(jobs, workers):
    jobs([{"name": "failing", "task": "tests.jobs.tasks.failing", "frequency": "1h", "backend": "celery"}])
    assert ticks_until(lambda: finished("failing", "failure") == 1)
    log = Log.objects.get(job__name="failing")
    assert (log.error_type, log.backend) == ("ValueError", "celery")
    assert "failing on purpose" in log.error_value and "Traceback" in log.traceback
    assert Job.objects.get(name="failing").error_count == 1


@pytest.mark.slow
def test_two_runners_and_two_celery_workers_run_every_slot_exactly_once(jobs, workers, receivers):
    registry = [
        {"name": f"job{i}", "cmd": "work", "cmd_args": ["--label", f"job{i}"], "frequency": "1m", "backfill": True,
         "backend": "celery"}
        for i in range(2)
    ]  # fmt: skip
    registry.append({"name": "rollup", "task": "tests.jobs.tasks.rollup", "frequency": "1m", "backfill": True,
                     "backend": "celery", "queued_at_once": 4})  # fmt: skip
    jobs(registry)
    backlog(5)
    expected = Job.objects.count() * 6
    runners = [start("cronrun", "--loop", "--interval", "60", registry=registry) for _ in range(2)]
    try:
        assert wait_for(lambda: Log.objects.filter(outcome="success").count() >= expected, seconds=120, every=0.2)
    finally:
        stop(*runners)
    done = list(Execution.objects.values_list("label", "slot"))
    assert len(done) == len(set(done)) >= expected  # every slot once: none twice
    assert not Log.objects.exclude(outcome__in=["success", "queued"]).exists()
    for label in ("job0", "job1"):  # one slot at a time: oldest first
        started = list(Execution.objects.filter(label=label).order_by("started").values_list("slot", flat=True))
        assert started == sorted(started)


@pytest.mark.slow
def test_a_celery_worker_killed_mid_attempt_loses_nothing_and_the_slot_runs_again_once(jobs, workers, settings):
    settings.CRONTABBER_LEASE_SECONDS = 8  # how long a started attempt may go without a result: > its 3 s
    jobs([{"name": "slow", "cmd": "work", "cmd_args": ["--seconds", "3"], "frequency": "1h", "backend": "celery"}])
    ticks_until(lambda: Log.objects.filter(job__name="slow", outcome="queued").exists())
    assert wait_for(lambda: Execution.objects.exists(), seconds=60)
    killed_at = time.time()
    workers.kill_running(Execution.objects.get().pid)  # mid-attempt: its result stays STARTED for ever
    try:
        assert ticks_until(lambda: finished("slow") == 1)
    finally:
        workers.start("w3")  # the module's two workers again
    # Lost, then run again as attempt 2; or, where the broker had not yet had the worker's
    # acknowledgement, redelivered by it within attempt 1. Either way once, after the first died.
    *lost, done = Log.objects.filter(job__name="slow").order_by("id")
    assert [(log.outcome, log.error_type) for log in lost] in ([], [("interrupted", "Lost")])
    assert done.outcome == "success" and {log.slot for log in lost} <= {done.slot}
    killed, again = Execution.objects.order_by("started")
    assert killed.finished is None and again.finished is not None
    assert again.started > killed_at  # never two at once: the second began after the first was killed


def test_a_slot_recorded_in_order_when_queued_several_at_once(jobs, workers, receivers):
    jobs([{"name": "rollup", "task": "tests.jobs.tasks.rollup", "frequency": "1m", "backfill": True,
           "backend": "celery", "queued_at_once": 4}])  # fmt: skip
    backlog(7)
    recorded = recorded_in_order(receivers)
    assert ticks_until(lambda: finished("rollup") >= 8)
    assert [slot for slot, _ in recorded] == sorted(slot for slot, _ in recorded)
    runs = list(Execution.objects.values_list("slot", flat=True))
    assert len(runs) == len(set(runs)) >= 8
