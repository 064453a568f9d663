"""Jobs on RQ workers through django-tasks-rq, against the machine's Redis (docs/tasks.md):
real `manage.py rqworker --burst` processes run what the runner queued."""

import subprocess

import pytest

from tests.helpers import at, child_env, manage, outcomes, tick
from tests.jobs.models import Execution

pytest.importorskip("django_tasks_rq")
pytestmark = pytest.mark.django_db(transaction=True)

T0 = "2026-05-04 10:00"


@pytest.fixture(autouse=True)
def redis():
    import django_rq
    from redis.exceptions import ConnectionError

    connection = django_rq.get_connection("default")
    try:
        connection.flushdb()  # the tests' own Redis database (tests/settings.py)
    except ConnectionError as error:
        pytest.skip(f"no Redis for the RQ tests: {error}")
    yield
    connection.flushdb()


def rq_worker_runs_queued_jobs():
    # django-tasks-rq's job class: it runs the Task and records its result. A burst worker
    # exits once the queue is empty; one that does not fails the test with what it printed.
    args = ("rqworker", "default", "--burst", "--job-class", "django_tasks_rq.backend.Job")
    args += ("--worker-class", "tests.jobs.rq_worker.BurstWorker")
    try:
        result = manage(*args, env=child_env(), timeout=60)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the burst worker did not exit in 60 s:\n{hung.stdout}\n{hung.stderr}")
    assert result.returncode == 0, result.stderr


def test_a_backfill_task_on_rq_workers_runs_its_slots_oldest_first(jobs):
    jobs([{"name": "rollup", "task": "tests.jobs.tasks.rollup", "frequency": "1h", "backfill": True, "backend": "rq"}])
    tick(at(T0))
    tick(at("2026-05-04 12:00"))
    for minute in range(1, 4):
        rq_worker_runs_queued_jobs()
        tick(at(f"2026-05-04 12:0{minute}"))
    assert [outcome for _, outcome in outcomes("rollup")] == ["success"] * 3
    assert list(Execution.objects.order_by("started").values_list("slot", flat=True)) == [
        "2026-05-04T10:00:00+00:00",
        "2026-05-04T11:00:00+00:00",
        "2026-05-04T12:00:00+00:00",
    ]


def test_a_failing_command_on_an_rq_worker_is_recorded_as_its_failure(jobs):
    jobs([{"name": "boom", "cmd": "boom", "frequency": "1h", "backend": "rq"}])
    tick(at(T0))
    rq_worker_runs_queued_jobs()
    tick(at("2026-05-04 10:01"))
    from crontabber.models import Log

    log = Log.objects.get(job__name="boom")
    assert (log.outcome, log.backend) == ("failure", "rq")
    assert log.error_type and log.traceback
